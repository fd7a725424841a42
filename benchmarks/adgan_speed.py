"""CPU speed of the ADGAN generator: forward, and forward + backward of an L1 loss.

  .venv/bin/python benchmarks/adgan_speed.py [--iters 3] [--batch 1] [--height 256] [--width 176] \
      [--cpu_convolutions default] [--malloc_as_is]

Builds ADGANGenerator at the official defaults, jits it, warms up (compilation
excluded), then prints seconds per iteration next to the official PyTorch
figures measured on this kind of machine with 2 CPU threads (shared/reference/
adgan.md section 6: forward ~4.2 s, forward + backward 6.6-7.3 s, batch 1,
256x176). Weights are random (speed does not depend on them); they are drawn
with numpy from the model's abstract shapes, which avoids compiling the random
initialisers. The CPU runtime is set up as `jaxpose.main` does
(`jaxpose.cpu_runtime`: malloc keeps freed memory unless --malloc_as_is;
--cpu_convolutions picks XLA:CPU's convolution library, Eigen as the configs). Not a test.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxpose import cpu_runtime
from jaxpose.models import adgan

OFFICIAL = {"forward": "about 4.2 s", "forward+backward": "6.6-7.3 s"}


def random_variables(model, inputs, seed=0):
  abstract = jax.eval_shape(model.init, jax.random.key(0), *inputs)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda a: jnp.asarray(rng.normal(0, 0.02, a.shape).astype(np.float32)), abstract)


def time_it(fn, args, iters):
  jax.block_until_ready(fn(*args))  # compile
  jax.block_until_ready(fn(*args))  # warm-up
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return times


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--iters", type=int, default=3)
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--height", type=int, default=256)
  parser.add_argument("--width", type=int, default=176)
  parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
  parser.add_argument("--cpu_convolutions", default="eigen", choices=cpu_runtime.CONVOLUTION_LIBRARIES)
  parser.add_argument("--malloc_as_is", action="store_true", help="leave glibc malloc's settings alone")
  args = parser.parse_args()
  runtime = [cpu_runtime.use_convolution_library(args.cpu_convolutions)]
  if not args.malloc_as_is:
    runtime.append(cpu_runtime.keep_freed_memory())

  model = adgan.ADGANGenerator(dtype=jnp.dtype(args.dtype))
  rng = np.random.default_rng(1)
  shape = (args.batch, args.height, args.width)
  target_pose = jnp.asarray(rng.uniform(0, 1, shape + (18,)).astype(np.float32))
  source_image = jnp.asarray(rng.uniform(-1, 1, shape + (3,)).astype(np.float32))
  source_parsing = jnp.asarray(np.eye(8, dtype=np.float32)[rng.integers(0, 8, shape)])
  target_image = jnp.asarray(rng.uniform(-1, 1, shape + (3,)).astype(np.float32))
  inputs = (target_pose, source_image, source_parsing)
  variables = random_variables(model, inputs)

  forward = jax.jit(model.apply)

  @jax.jit
  def forward_backward(params, frozen, pose, image, parsing, target):
    def l1(p):
      return jnp.mean(jnp.abs(model.apply({"params": p, "frozen": frozen}, pose, image, parsing) - target))
    return jax.value_and_grad(l1)(params)

  print(f"ADGAN generator, batch {args.batch}, {args.height}x{args.width}, {args.dtype}, "
        f"JAX {jax.__version__} on {jax.default_backend()} ({os.cpu_count()} CPUs visible), "
        f"{args.iters} timed iterations after compile + 1 warm-up; {'; '.join(runtime)}")
  start = time.perf_counter()
  fwd = time_it(forward, (variables, *inputs), args.iters)
  fwd_bwd = time_it(forward_backward, (variables["params"], variables["frozen"], *inputs, target_image),
                    args.iters)
  total = time.perf_counter() - start
  for name, times in (("forward", fwd), ("forward+backward", fwd_bwd)):
    print(f"  {name:17s} {np.mean(times):6.2f} s/iter (min {min(times):.2f}, max {max(times):.2f})   "
          f"official PyTorch, 2 threads: {OFFICIAL[name]}")
  print(f"  (whole script incl. compilation: {total:.0f} s)")


if __name__ == "__main__":
  main()
