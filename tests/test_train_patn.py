"""PATN in the training engine, and the history pool of generated images.

Covers: `ImagePool` semantics (fill phase, the 50/50 swap, pass-through at size
0, exact restart from a saved pool, use under jit); the official configs build
official-size networks; a tiny two-step PATN run with Market's settings (batch
norm, BCE, pool) that resumes exactly after an interruption, with batch
statistics and pool content in the checkpoint, and evaluates through
`--mode=evaluate`'s path in eval mode; fine-tuning from official PATN .pth
files; patn_market:tiny on the Market builder's dummy data (no parsing maps).
"""

import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import patn_deepfashion
from configs import patn_market
from configs import synthetic_patn
from jaxpose import checkpoints
from jaxpose.data import pipeline
from jaxpose import losses
from jaxpose import gan
from jaxpose import sharding
from jaxpose import systems
from jaxpose import train
import torch_writer
from jaxpose.models import discriminator as discriminator_lib
from jaxpose.models import patn


def _distinct(n, offset=0.0, shape=(2, 3, 1)):
  """n images, image k filled with the value offset + k (so every image is recognisable)."""
  return (offset + np.arange(n, dtype=np.float32))[:, None, None, None] * np.ones(shape, np.float32)


def _ids(images):
  return np.asarray(images)[:, 0, 0, 0].round().astype(int).tolist()


# ----------------------------------------------------------------------------
# ImagePool


def test_pool_fill_phase_stores_and_returns_the_new_images():
  pool = gan.init_image_pool(5, (2, 3, 1))
  assert int(pool.num_stored) == 0 and pool.images.shape == (5, 2, 3, 1)
  pool, out = gan.query_image_pool(pool, _distinct(3, 100), jax.random.key(0))
  assert _ids(out) == [100, 101, 102]
  assert int(pool.num_stored) == 3 and _ids(pool.images) == [100, 101, 102, 0, 0]
  # The next batch fills the two free slots, then the pool is full and sample 3 may swap.
  pool, out = gan.query_image_pool(pool, _distinct(3, 200), jax.random.key(1))
  assert _ids(out)[:2] == [200, 201] and int(pool.num_stored) == 5
  if _ids(out)[2] == 202:  # not swapped: nothing else changed
    assert _ids(pool.images) == [100, 101, 102, 200, 201]
  else:  # swapped: the returned image left the pool and 202 took its slot
    assert _ids(out)[2] in [100, 101, 102, 200, 201] and 202 in _ids(pool.images)
    assert _ids(out)[2] not in _ids(pool.images)


def test_pool_swaps_half_the_time_with_uniform_slots_and_loses_nothing():
  size, n = 8, 4000
  pool = gan.init_image_pool(size, (2, 3, 1))
  pool, _ = gan.query_image_pool(pool, _distinct(size, 0), jax.random.key(0))
  new = _distinct(n, 1000)
  query = jax.jit(gan.query_image_pool)
  after, out = query(pool, new, jax.random.key(42))
  returned, stored = _ids(out), _ids(after.images)
  swapped = [r != 1000 + i for i, r in enumerate(returned)]
  # Binomial(4000, 1/2): standard deviation 32, the bound is 4.7 of them.
  assert abs(sum(swapped) - n / 2) < 150
  # Conservation: every image that came in is either returned now or still in the pool, once.
  assert sorted(returned + stored) == list(range(size)) + list(range(1000, 1000 + n))
  # A returned old image was in the pool at that moment: an original or an earlier sample of the batch.
  for i, r in enumerate(returned):
    assert r < size or 1000 <= r < 1000 + i or r == 1000 + i
  # The first `size` swaps each empty a uniformly chosen slot: all slots get hit.
  first_swaps = [r for r, s in zip(returned, swapped) if s and r < size]
  assert set(first_swaps) == set(range(size))
  assert int(after.num_stored) == size


def test_pool_size_zero_passes_through():
  assert gan.init_image_pool(0, (4, 4, 21)) is None
  images = jnp.asarray(_distinct(3))
  pool, out = gan.query_image_pool(None, images, jax.random.key(0))
  assert pool is None and out is images
  with pytest.raises(ValueError, match=">= 0"):
    gan.init_image_pool(-1, (4, 4, 3))


def test_pool_restarts_exactly_from_its_saved_state(tmp_path):
  keys = jax.random.split(jax.random.key(7), 4)
  batches = [_distinct(4, 100 * (b + 1)) for b in range(4)]
  query = jax.jit(gan.query_image_pool)
  straight = gan.init_image_pool(6, (2, 3, 1))
  outs = []
  for batch, key in zip(batches, keys):
    straight, out = query(straight, batch, key)
    outs.append(_ids(out))
  # The same with a save and restore (Orbax, as the TrainState) after the second batch.
  pool = gan.init_image_pool(6, (2, 3, 1))
  for batch, key in zip(batches[:2], keys[:2]):
    pool, _ = query(pool, batch, key)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(str(tmp_path / "pool"), pool)
  with ocp.StandardCheckpointer() as checkpointer:
    restored = checkpointer.restore(str(tmp_path / "pool"), jax.eval_shape(lambda: pool))
  assert isinstance(restored, gan.ImagePool)
  resumed_outs = []
  for batch, key in zip(batches[2:], keys[2:]):
    restored, out = query(restored, batch, key)
    resumed_outs.append(_ids(out))
  assert resumed_outs == outs[2:]
  np.testing.assert_array_equal(restored.images, straight.images)
  assert int(restored.num_stored) == int(straight.num_stored) == 6


# ----------------------------------------------------------------------------
# Configs


def _count(tree):
  return int(sum(math.prod(x.shape) for x in jax.tree.leaves(tree)))


@pytest.mark.parametrize("module,norm,stats", [(patn_deepfashion, "instance", 0), (patn_market, "batch", 20_096)])
def test_official_configs_build_the_official_networks(module, norm, stats):
  config = module.get_config()
  assert config.model == "patn" and config.generator.norm == config.discriminator.norm == norm
  market = module is patn_market
  assert config.batch_size == (32 if market else 7)
  assert tuple(config.data.image_size) == ((128, 64) if market else (256, 176))
  assert (config.loss.l1, config.loss.perceptual, config.loss.gan) == (
      (10.0, 10.0, 5.0) if market else (1.0, 1.0, 5.0))
  assert config.loss.gan_type == ("bce" if market else "lsgan")
  assert config.discriminator.pool_size == (50 if market else 0)
  assert config.data.heatmap_mode == ("gaussian" if market else "spike")
  assert config.num_train_steps == (87_500 if market else 400_400)
  assert config.optim.learning_rate == 2e-4
  assert config.optim.constant_steps + config.optim.decay_steps == config.num_train_steps
  assert "cx" not in config.loss and "cx_vgg_path" not in config  # PATN carries no CX knobs
  system = systems.get("patn")(config, systems.Pretrained(archs={"loss_vgg": "vgg19"}))
  h, w = config.data.image_size
  example = {"source_image": jnp.zeros((1, h, w, 3)), "target_image": jnp.zeros((1, h, w, 3)),
             "source_pose": jnp.zeros((1, h, w, 18)), "target_pose": jnp.zeros((1, h, w, 18))}
  nets, _, aux, _ = jax.eval_shape(lambda: system.init(jax.random.key(0), example, {}))
  g = nets["generator"]
  assert _count(g["params"]) == (41_365_763 if market else 41_358_019)
  assert _count(g.get("batch_stats", {})) == stats
  assert _count(nets["discriminator_pb"]["params"]) == (3_977_408 if market else 3_975_424)
  assert _count(nets["discriminator_pp"]["params"]) == (3_930_368 if market else 3_928_384)
  assert (aux["pool_pb"] is None) == (not market)
  assert system.gan_loss is (losses.bce_gan_loss if market else losses.lsgan_loss)


# ----------------------------------------------------------------------------
# The engine


def _market_like_config(data_dir, **overrides):
  """The tiny synthetic PATN (batch norm) with Market's BCE and a history pool (3 < batch 4, so the
  first step already reaches the swap phase)."""
  config = synthetic_patn.get_config("tiny")
  config.data.data_dir = data_dir
  config.generator.norm = "batch"
  config.discriminator.norm = "batch"
  config.loss.gan_type = "bce"
  config.discriminator.pool_size = 3
  config.eval.num_pairs = 4
  config.update_from_flattened_dict(overrides)  # "a.b" keys, type-checked
  return config


def _state_tree(workdir):
  """The latest checkpoint's whole saved state, flattened to {network or pool or 'generator_opt' or 'step': tree}."""
  root = os.path.join(workdir, "checkpoints")
  tree = ocp.StandardCheckpointer().restore(os.path.join(root, str(max(int(n) for n in os.listdir(root))), "state"))
  return {**tree["nets"], **tree["aux"], "generator_opt": tree["opt"]["generator"], "step": tree["step"]}


def test_tiny_market_like_run_resumes_exactly_and_checkpoints_pools(tiny_data_dir, tmp_path):
  straight, interrupted = str(tmp_path / "straight"), str(tmp_path / "interrupted")
  results = train.train_and_evaluate(_market_like_config(tiny_data_dir, num_train_steps=2), straight)
  train.train_and_evaluate(_market_like_config(tiny_data_dir, num_train_steps=1), interrupted)
  after_one = _state_tree(interrupted)
  train.train_and_evaluate(_market_like_config(tiny_data_dir, num_train_steps=2), interrupted)
  a, b = _state_tree(straight), _state_tree(interrupted)
  # Everything equal: parameters, batch statistics, Adam moments and both pools (same batches, same
  # dropout masks and pool draws from the step's key).
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=1e-6,
                               err_msg=jax.tree_util.keystr(path))
  # Batch statistics are in the state and moved (generator and both discriminators).
  for name in ("generator", "discriminator_pb", "discriminator_pp"):
    stats = a[name]["batch_stats"]
    moved = [np.abs(np.asarray(x) - np.asarray(y)).max() for x, y in
             zip(jax.tree.leaves(stats), jax.tree.leaves(after_one[name]["batch_stats"]))]
    assert max(moved) > 1e-4, name
  # The pools are in the checkpoint: full (3 of 3), holding D inputs = (fake image, its condition).
  for name, channels in (("pool_pb", 21), ("pool_pp", 6)):
    pool = a[name]
    assert int(pool["num_stored"]) == 3 and np.shape(pool["images"]) == (3, 32, 24, channels)
    images = np.asarray(pool["images"])
    assert np.all(np.abs(images[..., :3]) <= 1) and images[..., :3].std() > 0.01  # generated images (tanh)
  assert np.all((np.asarray(a["pool_pb"]["images"])[..., 3:] >= 0))  # target heatmaps
  assert int(after_one["pool_pb"]["num_stored"]) == 3
  with open(os.path.join(straight, "metrics_history.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  for key in ("g_total", "g_l1", "g_perceptual", "g_gan", "d_pb", "d_pp"):
    assert np.isfinite(rows[-1][key]), key
  assert "g_cx" not in rows[-1]  # cx weight 0: no CX work at all
  assert np.isfinite(results["ssim"]) and results["train_steps"] == 2
  # --mode=evaluate restores the checkpoint and generates in eval mode (running statistics).
  evaluated = train.evaluate_checkpoint(_market_like_config(tiny_data_dir, num_train_steps=2), straight)
  assert evaluated["ssim"] == pytest.approx(results["ssim"], abs=1e-6)


def test_instance_norm_lsgan_state_has_no_pools_or_batch_stats(tiny_data_dir):
  config = synthetic_patn.get_config("tiny")
  config.data.data_dir = tiny_data_dir
  config.generator.norm = config.discriminator.norm = "instance"  # DeepFashion's networks
  engine = train.build(config, sharding.make_mesh(), train.open_data(config))
  # No CX: only the perceptual loss's VGG prefix up to relu1_2 is kept in the state.
  assert sorted(engine.system.pretrained.variables["loss_vgg"]["frozen"]) == ["conv1_1", "conv1_2"]
  assert "generator_vgg" not in engine.system.pretrained.variables
  state = engine.abstract_state
  assert state.aux == {"pool_pb": None, "pool_pp": None}
  assert set(state.nets["generator"]) == {"params"}
  assert set(state.nets["discriminator_pb"]) == {"params"}
  assert set(state.frozen["loss_vgg"]["frozen"]) == {"conv1_1", "conv1_2"} and state.frozen["cx_vgg"] is None


def test_market_tiny_config_trains_on_the_builders_dummy_data(tmp_path):
  """patn_market:tiny end to end on real-format Market files without parsing maps (batch norm, BCE, pool)."""
  from tfds_builders import testing as builder_testing  # pylint: disable=g-import-not-at-top
  from tfds_builders.market1501_pose import market1501_pose_dataset_builder as builder_lib  # pylint: disable=g-import-not-at-top
  dummy = os.path.join(os.path.dirname(__file__), "..", "tfds_builders", "market1501_pose", "dummy_data")
  builder_testing.build(builder_lib.Builder, "no_parsing", dummy, tmp_path)
  config = patn_market.get_config("tiny")
  config.data.data_dir = str(tmp_path)
  data = train.open_data(config)
  assert not data.train.has_parsing and data.train.image_size == (128, 64)
  mesh = sharding.make_mesh()
  engine = train.build(config, mesh, data)
  state = engine.create()
  batches = pipeline.eval_batches(data.train, batch_size=2, transform=data.transform)
  for _ in range(2):
    batch, _ = next(batches)
    state, metrics = engine.step(state, sharding.to_global_arrays(train._host_batch(batch, engine.batch_keys), mesh))
    assert all(np.isfinite(float(v)) for v in jax.device_get(metrics).values())
  assert int(state.step) == 2 and int(state.nonfinite_step) == -1
  pool_pb, pool_pp = state.aux["pool_pb"], state.aux["pool_pp"]
  assert int(pool_pb.num_stored) == int(pool_pp.num_stored) == 3
  assert pool_pb.images.shape == (3, 128, 64, 21) and pool_pp.images.shape == (3, 128, 64, 6)
  generated = engine.generate(state.nets, sharding.to_global_arrays(train._host_batch(batch, engine.batch_keys),
                                                                    mesh))["image"]
  assert generated.shape == (2, 128, 64, 3) and bool(jnp.all(jnp.abs(generated) <= 1))


def test_fine_tuning_from_official_patn_files(tiny_data_dir, tmp_path):
  config = _market_like_config(tiny_data_dir)
  mesh = sharding.make_mesh()
  engine = train.build(config, mesh, train.open_data(config))
  fresh = jax.device_get(engine.create())
  rng = np.random.default_rng(0)
  official = {name: jax.tree.map(lambda x: rng.normal(size=np.shape(x)).astype(np.float32), fresh.nets[name])
              for name in ("generator", "discriminator_pb", "discriminator_pp")}
  g_sd = patn.to_torch(official["generator"], engine.system.generator)
  torch_writer.save_state_dict({f"module.{k}": v for k, v in g_sd.items()}, str(tmp_path / "latest_net_netG.pth"),
                                   legacy_format=True)
  for name, suffix in (("discriminator_pb", "PB"), ("discriminator_pp", "PP")):
    d_sd = discriminator_lib.to_torch(official[name], engine.system.discriminators[name[-2:]])
    torch_writer.save_state_dict(d_sd, str(tmp_path / f"latest_net_netD_{suffix}.pth"))
  config = _market_like_config(tiny_data_dir, init_from=str(tmp_path / "latest_net_netG.pth"))
  mngr = checkpoints.manager(str(tmp_path / "run"), 2)
  state, origin = train.initial_state(config, mngr, engine, iterator=None)
  assert "fine-tuning" in origin and "latest_net_netD_PP.pth" in origin
  for name, expected in official.items():
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state.nets[name]), expected)
  assert set(state.nets["generator"]) == {"params", "batch_stats"}
