"""jaxpose.cpu_runtime: malloc keeps freed memory; XLA:CPU convolutions on Eigen when asked, same sums."""

import json
import os
import resource
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxpose import cpu_runtime

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

# A conv layer's value and gradients as JSON, and how many convolutions XLA gave to YNNPACK fusions.
_CONV_PROGRAM = """
import json, re, sys
from jaxpose import cpu_runtime
line = cpu_runtime.use_convolution_library(sys.argv[1])
import jax, jax.numpy as jnp, numpy as np
from jaxpose.models import layers
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(2, 16, 12, 64)), jnp.float32)
kernel = jnp.asarray(rng.normal(size=(3, 3, 64, 64)) * 0.05, jnp.float32)
def loss(x, kernel):
  return jnp.sum(jnp.tanh(layers._conv(layers.pad2d(x, 1, "reflect"), kernel, 1, "VALID", jnp.float32)))
fn = jax.jit(jax.value_and_grad(loss, (0, 1)))
hlo = fn.lower(x, kernel).compile().as_text()
bodies = {m.group(1): m.group(2) for m in re.finditer(r"^%?([\\w.\\-]+) [^\\n]*\\{\\n(.*?)^\\}", hlo, re.M | re.S)}
ynn_calls = re.findall(r'calls=%?([\\w.\\-]+)[^\\n]*"kind":"__ynn_fusion"', hlo)
value, (dx, dk) = fn(x, kernel)
print(json.dumps({"line": line, "ynn_convolutions": sum("convolution(" in bodies[c] for c in ynn_calls),
                  "convolutions": hlo.count(" convolution("),
                  "value": float(value), "dx": np.asarray(dx).tolist(), "dk": np.asarray(dk).tolist()}))
"""


def _run_conv(library):
  env = {**os.environ, "PYTHONPATH": ROOT, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu"}
  out = subprocess.run([sys.executable, "-c", _CONV_PROGRAM, library], capture_output=True, text=True, env=env,
                       check=True, cwd=ROOT)
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_eigen_convolutions_leave_ynnpack_and_compute_the_same_sums():
  default, eigen = _run_conv("default"), _run_conv("eigen")
  assert default["ynn_convolutions"] >= 2 and eigen["ynn_convolutions"] == 0
  assert eigen["convolutions"] == 3  # forward, input and kernel gradients
  assert "Eigen" in eigen["line"]
  # The same sums in another order: equal to float32 rounding, not bit for bit.
  assert eigen["value"] == pytest.approx(default["value"], rel=1e-5)
  np.testing.assert_allclose(eigen["dx"], default["dx"], rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(eigen["dk"], default["dk"], rtol=1e-4, atol=1e-4)


def test_convolution_library_is_checked_and_cannot_change_after_start(monkeypatch):
  with pytest.raises(ValueError, match="cpu_convolutions must be one of"):
    cpu_runtime.use_convolution_library("mkl")
  jax.devices()  # the backend has started
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
  assert cpu_runtime.convolution_library() == "default"
  assert "XLA" in cpu_runtime.use_convolution_library("default")
  with pytest.raises(RuntimeError, match="already started"):
    cpu_runtime.use_convolution_library("eigen")
  assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"
  # A flag set in the environment by hand is respected.
  monkeypatch.setenv("XLA_FLAGS", cpu_runtime.EIGEN_CONVOLUTIONS_FLAG)
  assert "Eigen" in cpu_runtime.use_convolution_library("default")
  assert os.environ["XLA_FLAGS"] == cpu_runtime.EIGEN_CONVOLUTIONS_FLAG


def test_freed_memory_is_reused_without_page_faults():
  line = cpu_runtime.keep_freed_memory()
  assert line == cpu_runtime.keep_freed_memory()  # applied once
  assert "keeps freed memory" in line
  size = 64 << 20  # far above glibc's mmap threshold
  np.ones(size // 8)  # grown once, then freed
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  np.ones(size // 8)
  faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
  # mmap'd and unmapped again, the second array would fault in all of its
  # pages (16384 at 4 KiB, 32 as huge pages); reused, none.
  assert faults < 16, faults
