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


def test_configure_after_start_says_the_library_was_not_applied(monkeypatch):
  import ml_collections  # pylint: disable=g-import-not-at-top
  jax.devices()  # the backend has started, with XLA's own library
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
  config = ml_collections.ConfigDict({"cpu_convolutions": "eigen", "keep_freed_host_memory": False})
  lines = cpu_runtime.configure(config)
  assert len(lines) == 1 and "'eigen' not applied" in lines[0] and "YNNPACK" in lines[0]
  assert os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=2"
  config.cpu_convolutions = "mkl"
  with pytest.raises(ValueError, match="cpu_convolutions must be one of"):
    cpu_runtime.configure(config)


# Three logged steps of synthetic_adgan:tiny, trained in a fresh process as jaxpose.main does
# (configure before XLA starts), under the test-wide XLA flags the trajectories were recorded with.
_TRAINING_PROGRAM = """
import json, os, sys
from configs import synthetic_adgan
from jaxpose import cpu_runtime
config = synthetic_adgan.get_config("tiny")
config.data.data_dir = sys.argv[1]
config.cpu_convolutions = sys.argv[2]
config.update_from_flattened_dict({"num_train_steps": 3, "log_every": 1, "checkpoint_every": 3,
                                   "sample_every": 3, "optim.constant_steps": 20, "optim.decay_steps": 0,
                                   "eval.num_pairs": 2})
line = cpu_runtime.configure(config)[0]
from jaxpose import train
train.train_and_evaluate(config, sys.argv[3])
with open(os.path.join(sys.argv[3], "metrics_history.jsonl")) as f:
  print(json.dumps({"line": line, "rows": [json.loads(l) for l in f]}))
"""


def test_eigen_training_follows_the_recorded_trajectory(tiny_data_dir, tmp_path):
  """The configs' default library trains as XLA's own did, to float32 rounding: the first
  logged steps of the recorded synthetic_adgan:tiny trajectory (tests/data)."""
  with open(os.path.join(ROOT, "tests", "data", "reference_trajectories.json")) as f:
    expected = json.load(f)["synthetic_adgan:tiny"][:2]
  env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}  # XLA_FLAGS: conftest's
  out = subprocess.run([sys.executable, "-c", _TRAINING_PROGRAM, tiny_data_dir, "eigen", str(tmp_path / "run")],
                       capture_output=True, text=True, env=env, check=False, cwd=ROOT)
  assert out.returncode == 0, out.stderr[-3000:]
  result = json.loads(out.stdout.strip().splitlines()[-1])
  assert "Eigen" in result["line"]
  assert [r["step"] for r in result["rows"]] == [1, 2, 3]
  # The first two steps, as tests/test_systems.py checks another CPU's run against the
  # recording (from the third, the tiny GAN amplifies rounding differences).
  for row, reference in zip(result["rows"], expected):
    for key, value in reference.items():
      assert row[key] == pytest.approx(value, rel=1e-4, abs=1e-6), (row["step"], key, row[key], value)


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
