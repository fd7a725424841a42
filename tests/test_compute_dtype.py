"""config.compute_dtype='bfloat16' end to end: ADGAN and PATN train in bfloat16 with float32
parameters and optimizer states, finite losses close to the recorded float32 trajectory.

The float32 reference is the first steps of tests/data/reference_trajectories.json
(synthetic_<name>:tiny, pinned bit for bit by test_systems.py); the bfloat16 run
draws the same batches (the same loader, seed and order as `train_and_evaluate`).
"""

import importlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import sharding
from jaxpose import train
from jaxpose.data import pipeline

REFERENCE = os.path.join(os.path.dirname(__file__), "data", "reference_trajectories.json")
STEPS = 3
LOSSES = {"adgan": ("g_l1", "g_perceptual", "g_cx", "g_gan", "g_total", "d_pb", "d_pp"),
          "patn": ("g_l1", "g_perceptual", "g_gan", "g_total", "d_pb", "d_pp")}


@pytest.mark.parametrize("name", ["adgan", "patn"])
def test_bfloat16_compute_trains_close_to_float32(name, tiny_data_dir):
  with open(REFERENCE) as f:
    reference = json.load(f)[f"synthetic_{name}:tiny"][:STEPS]
  config = importlib.import_module(f"configs.synthetic_{name}").get_config("tiny")
  config.data.data_dir = tiny_data_dir
  config.update_from_flattened_dict({"optim.constant_steps": 20, "optim.decay_steps": 0,
                                     "compute_dtype": "bfloat16"})
  mesh = sharding.make_mesh()
  data = train.open_data(config)
  engine = train.build(config, mesh, data)
  loader = pipeline.train_loader(data.train, per_process_batch_size=sharding.per_process_batch_size(
      config.batch_size, mesh), seed=config.seed, transform=data.transform, worker_count=0)
  iterator = iter(loader)
  state = engine.create()
  batch = sharding.to_global_arrays({k: v for k, v in next(iterator).items() if k in engine.batch_keys}, mesh)

  # The switch reaches the networks: the step's convolutions and matmuls run in bfloat16.
  hlo = engine.step.lower(state, batch).as_text()
  assert hlo.count("bf16") > 50, "compute_dtype='bfloat16' left the step in float32"
  rows = []
  for step in range(STEPS):
    if step:
      batch = sharding.to_global_arrays({k: v for k, v in next(iterator).items() if k in engine.batch_keys}, mesh)
    state, metrics = engine.step(state, batch)
    rows.append(jax.device_get(metrics))

  # Parameters and optimizer states stay float32.
  for tree in (state.nets, state.opt):
    dtypes = {x.dtype for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)}
    assert dtypes == {jnp.dtype(jnp.float32)}, dtypes
  assert int(state.nonfinite_step) == -1
  for row, expected in zip(rows, reference):
    for key in LOSSES[name]:
      assert np.isfinite(row[key]), (key, row[key])
      # bfloat16 keeps 8 bits of mantissa: the losses agree to about 1%.
      assert float(row[key]) == pytest.approx(expected[key], rel=2e-2, abs=2e-3), (expected["step"], key)
