"""Process-wide settings of the CPU runtime, applied once, before the XLA backend starts.

Two settings make XLA:CPU training several times faster (measured in README,
Benchmarks; `benchmarks/train_throughput.py` reproduces the numbers):

`keep_freed_memory()`: glibc malloc keeps freed memory for reuse. XLA:CPU
allocates a step's temporary and output buffers with `malloc` and frees them
when the step ends; glibc serves large blocks with `mmap`, returns them with
`munmap` and trims its per-thread arenas, so every step faulted all of its
memory in again, page by page (at ADGAN's official size half of a step went to
the kernel). With M_MMAP_MAX = 0 (large blocks from the heap), M_TRIM_THRESHOLD
= max (the heap is never trimmed) and M_ARENA_MAX = 1 (XLA's worker threads
share one arena instead of growing and shrinking their own) the next step
reuses the same memory. Nothing computed changes; the process keeps its
high-water mark of memory until it exits, as with tcmalloc or jemalloc.
`config.keep_freed_host_memory` (default on). Non-glibc systems are left alone.

`use_convolution_library(name)`: which library runs XLA:CPU's convolutions
(`config.cpu_convolutions`). 'eigen' (the default) routes convolutions to
XLA's Eigen kernels; 'default' leaves XLA's choice (YNNPACK in jaxlib 0.10).
On this project's 2-core CPUs YNNPACK computes ADGAN's convolutions 2-4x more
slowly forward and up to 15x more slowly for kernel gradients (a 3x3 128->128
layer at 128x88, batch 2: forward 0.43 s against 0.10 s, kernel gradient 2.0 s
against 0.14 s), so the official-width ADGAN step at 128x88 takes 16.9 s on
it and 9.1 s on Eigen (README, Benchmarks). The numbers are the same sums in
another order: results differ in float32 rounding only, and Eigen's kernel
gradients lie closer to a float64 reference. The test suite keeps XLA's own
choice, under which its recorded trajectories (tests/data) were computed, and
checks that Eigen follows them. XLA reads its flags once, when the backend
starts: the choice takes effect only when made before the first computation,
as `jaxpose.main` does (or by setting XLA_FLAGS in the environment); later,
`configure` says in the log that it was not applied.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

from jax._src import xla_bridge

# mallopt parameters (glibc malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

CONVOLUTION_LIBRARIES = ("default", "eigen")
# XLA:CPU hands convolutions to YNNPACK unless this fusion type is removed.
EIGEN_CONVOLUTIONS_FLAG = "--xla_cpu_experimental_ynn_fusion_type=-individual_convolution"

_malloc_settings: str | None = None


def keep_freed_memory() -> str:
  """Applies the malloc settings once per process; returns a sentence for the log saying what was done."""
  global _malloc_settings
  if _malloc_settings is not None:
    return _malloc_settings
  if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
    _malloc_settings = f"malloc left as is ({platform.system()}, {platform.libc_ver()[0] or 'unknown libc'})"
    return _malloc_settings
  try:
    mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
  except (OSError, AttributeError) as e:
    _malloc_settings = f"malloc left as is (no mallopt: {e})"
    return _malloc_settings
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  results = [mallopt(_M_MMAP_MAX, 0), mallopt(_M_TRIM_THRESHOLD, 2**31 - 1), mallopt(_M_ARENA_MAX, 1)]
  if all(r == 1 for r in results):
    _malloc_settings = "glibc malloc keeps freed memory for reuse (no mmap, no trimming, one arena)"
  else:
    _malloc_settings = f"glibc mallopt refused some settings (results {results}); malloc partly as is"
  return _malloc_settings


def convolution_library() -> str:
  """The library XLA:CPU runs convolutions with in this process, as XLA_FLAGS say."""
  return "eigen" if EIGEN_CONVOLUTIONS_FLAG in os.environ.get("XLA_FLAGS", "").split() else "default"


def use_convolution_library(name: str) -> str:
  """Makes XLA:CPU run convolutions with `name`; -> a sentence for the log.

  'default' changes nothing (XLA_FLAGS stay as the environment set them);
  'eigen' adds `EIGEN_CONVOLUTIONS_FLAG` to XLA_FLAGS. Raises ValueError for an
  unknown name, and RuntimeError when 'eigen' is asked for after the backend
  started without it (XLA reads its flags only then).
  """
  if name not in CONVOLUTION_LIBRARIES:
    raise ValueError(f"config.cpu_convolutions must be one of {CONVOLUTION_LIBRARIES}, got {name!r}")
  if name == "eigen" and convolution_library() != "eigen":
    if xla_bridge.backends_are_initialized():
      raise RuntimeError(
          "config.cpu_convolutions='eigen' but XLA already started without it (XLA reads its flags once): "
          "choose before the first JAX computation, as python -m jaxpose.main does, or add "
          f"{EIGEN_CONVOLUTIONS_FLAG} to XLA_FLAGS")
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {EIGEN_CONVOLUTIONS_FLAG}".strip()
  if convolution_library() == "eigen":
    return "XLA:CPU convolutions run on Eigen"
  return "XLA:CPU convolutions as XLA chooses (YNNPACK in jaxlib 0.10)"


def configure(config) -> list[str]:
  """Both settings from a config (`keep_freed_host_memory`, `cpu_convolutions`); -> log lines.

  Both are about speed only. A library asked for after XLA started (training
  from a notebook or a test that computed something first) cannot take effect;
  the run goes on with the library XLA started with, and the first line says so.
  """
  name = config.get("cpu_convolutions", "eigen")
  try:
    lines = [use_convolution_library(name)]
  except RuntimeError:
    lines = [f"config.cpu_convolutions={name!r} not applied: XLA started before it was set (XLA reads its "
             f"flags once); {use_convolution_library('default')}. Run through python -m jaxpose.main, or set "
             f"XLA_FLAGS={EIGEN_CONVOLUTIONS_FLAG} before the first JAX computation"]
  if config.get("keep_freed_host_memory", True):
    lines.append(keep_freed_memory())
  return lines
