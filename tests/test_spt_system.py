"""The SPT system (jaxpose.systems.spt): what each stage trains, the end-to-end gradient path, unsupervised inputs.

On configs/synthetic_spt.py:tiny (toy widths, 32x24 people; its stage 3 step
is the one tests/test_systems.py compiles, so the persistent compilation cache
serves both). The pose loss runs with a toy detector given as a msgpack file.
The progressive H_A and the face discriminator run in
tests/test_train_real_formats.py (configs/spt_deepfashion.py:tiny).
"""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic_spt
from jaxpose import sharding
from jaxpose import systems
from jaxpose import train
from jaxpose.data import part_transforms
from jaxpose.data import pipeline
from jaxpose.data import sources
from jaxpose.data import unpaired
from jaxpose.models import pose_detector as pose_detector_lib
from jaxpose.systems import spt as spt_system


def _config(data_dir, stage, **overrides):
  config = synthetic_spt.get_config("tiny")
  config.data.data_dir = data_dir
  config.stage = stage
  config.update_from_flattened_dict(overrides)
  return config


@pytest.fixture(scope="module")
def detector_path(tmp_path_factory):
  """A toy ResnetPoseDetector's variables as a Flax msgpack file (the pose loss's frozen network)."""
  model = pose_detector_lib.ResnetPoseDetector(width=2, num_blocks=1)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 24, 3)))
  path = tmp_path_factory.mktemp("detector") / "detector.msgpack"
  path.write_bytes(flax.serialization.msgpack_serialize(jax.tree.map(np.asarray, dict(variables))))
  return str(path)


def _engine_and_batch(config):
  data = train.open_data(config)
  mesh = sharding.make_mesh()
  engine = train.build(config, mesh, data)
  batch, _ = next(pipeline.eval_batches(data.train, batch_size=4, transform=data.transform))
  return engine, data, sharding.to_global_arrays({k: batch[k] for k in engine.batch_keys}, mesh), batch


def _changed(before, after):
  return {name for name in before.nets
          if any(np.any(np.asarray(a) != np.asarray(b))
                 for a, b in zip(jax.tree.leaves(before.nets[name]), jax.tree.leaves(after.nets[name])))}


def test_each_stage_trains_its_networks(tiny_data_dir, detector_path):
  config = _config(tiny_data_dir, 1)
  engine, _, batch, _ = _engine_and_batch(config)
  state = engine.create()
  before = jax.device_get(state)
  after, metrics = engine.step(state, batch)
  assert _changed(before, jax.device_get(after)) == {"semantic_generator", "parsing_discriminator"}
  assert {"s_ce", "s_gan", "d_parsing", "s_pseudo_label_agreement"} <= set(metrics)
  assert not any(k.startswith("g_") and k != "g_total" for k in metrics)

  # Stage 2, with the pose loss: H_S stays fixed.
  config = _config(tiny_data_dir, 2, pose_detector_path=detector_path)
  engine, _, batch, _ = _engine_and_batch(config)
  state = engine.create()
  before = jax.device_get(state)
  after, metrics = engine.step(state, batch)
  assert _changed(before, jax.device_get(after)) == {"generator", "discriminator"}  # H_S stays fixed
  assert {"g_gan", "g_pose", "g_content", "g_style", "d"} <= set(metrics)
  assert all(np.isfinite(float(v)) for v in metrics.values())


def test_end_to_end_stage_reaches_h_s_through_h_a_losses(tiny_data_dir):
  """From the same state and batch, H_S's gradient in stage 3 differs from stage 1's: H_A's losses reach it.

  (At initialisation their share is small, ~1e-4 of the norm here, two orders above the round-off of two
  differently fused programs, ~1e-7.) With loss.end_to_end_weight 0 none of it does: stage 3's H_S
  gradient is stage 1's, to that round-off.
  """
  grad_norms = {}
  for stage, weight in ((1, 1.0), (3, 1.0), (3, 0.0)):
    engine, _, batch, _ = _engine_and_batch(_config(tiny_data_dir, stage, **{"loss.end_to_end_weight": weight}))
    state = engine.create()
    before = jax.device_get(state)
    after, metrics = engine.step(state, batch)
    grad_norms[stage, weight] = float(metrics["semantic_generator_grad_norm"])
    if stage == 3:
      assert _changed(before, jax.device_get(after)) == set(before.nets)
  stage1 = grad_norms[1, 1.0]
  assert stage1 > 0 and abs(grad_norms[3, 1.0] - stage1) > 1e-5 * stage1, grad_norms
  assert abs(grad_norms[3, 0.0] - stage1) < 1e-6 * stage1, grad_norms


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0])
def test_scale_gradient(weight):
  x = jnp.array([[0.3, -1.7], [2.5, 1e-8]], jnp.float32)
  cotangent = jnp.array([[1.0, 2.0], [-3.0, 0.5]], jnp.float32)
  np.testing.assert_array_equal(np.asarray(spt_system.scale_gradient(x, weight)), np.asarray(x))  # bit for bit
  grad = jax.grad(lambda v: jnp.sum(jnp.sin(spt_system.scale_gradient(v, weight)) * cotangent))(x)
  np.testing.assert_allclose(np.asarray(grad), weight * np.cos(np.asarray(x)) * np.asarray(cotangent), rtol=1e-6)


def test_the_shipped_detector_serves_the_pose_loss():
  detector = spt_system.load_pose_detector("synthetic")
  assert detector.arch == "resnet_pose_detector:18:16:4"
  assert "synthetic_pose_detector" in detector.description
  assert spt_system.load_pose_detector("") is None


def test_generation_reads_neither_the_target_image_nor_its_parsing(tiny_data_dir):
  config = _config(tiny_data_dir, 3)
  engine, data, batch, host = _engine_and_batch(config)
  assert "target_image" not in engine.batch_keys
  state = engine.create()
  out = engine.generate(state.nets, batch)
  assert out["image"].shape == host["source_image"].shape
  assert out["parsing"].shape == host["source_parsing"].shape
  np.testing.assert_allclose(np.asarray(out["parsing"]).sum(-1), 1.0, rtol=1e-5)
  blanked = dict(batch, target_parsing=jnp.zeros_like(batch["target_parsing"]))
  np.testing.assert_array_equal(np.asarray(engine.generate(state.nets, blanked)["image"]), np.asarray(out["image"]))


def test_host_inputs(tiny_data_dir):
  source = sources.pair_source("synthetic_people/tiny", "train", tiny_data_dir)
  config = synthetic_spt.get_config("tiny")
  config.generator.progressive = True
  config.face_discriminator.enabled = True
  transform = systems.get("spt").transform(config, source)
  example = transform.map(source[0])
  keys = set(systems.get("spt").batch_keys(config))
  assert keys <= set(example)
  assert example["atob_transforms"].shape == (10, 8) and example["atob_masks"].shape == (10, 32, 24)
  assert example["atob_masks_half"].shape == (10, 16, 12) and example["source_image_half"].shape == (16, 12, 3)
  assert example["source_pose_mask"].shape == (16, 12, 1)  # H_S's (global) resolution
  half = spt_system._half_keypoints(example["source_keypoints"])  # pylint: disable=protected-access
  np.testing.assert_array_equal(example["atob_transforms_half"],
                                part_transforms.affine_transforms(half, spt_system._half_keypoints(  # pylint: disable=protected-access
                                    example["target_keypoints"])))
  np.testing.assert_array_equal(example["source_face_transform"],
                                part_transforms.face_transform(example["source_keypoints"], (32, 24)))
  assert np.all(half[example["source_keypoints"][:, 0] >= 0] == example["source_keypoints"][
      example["source_keypoints"][:, 0] >= 0] // 2)


def test_configuration_errors(tiny_data_dir):
  spt = systems.get("spt")
  source = sources.pair_source("synthetic_people/tiny", "train", tiny_data_dir)
  config = synthetic_spt.get_config("tiny")
  with pytest.raises(ValueError, match="unsupervised"):
    spt.check(config, source)  # the dataset's own same-person pairs
  randomly = unpaired.with_pairing(source, "unpaired", per_image=1)
  with pytest.raises(ValueError, match="stage 3 trains H_S on pseudo labels"):
    spt.check(config, randomly)
  config.stage = 2
  spt.check(config, randomly)  # stage 2 may train on any other person's pose
  config.data.parsing_merge = "adgan8"
  with pytest.raises(ValueError, match="spt10"):
    spt.check(config, randomly)
  config = synthetic_spt.get_config("tiny")
  config.stage = 2
  config.generator.progressive = True
  with pytest.raises(ValueError, match="divisible by 16"):
    spt.check(config, randomly)
  with pytest.raises(ValueError, match="released H_A alone"):
    spt.read_official(config, "latest_net_G.pth", ("generator", "semantic_generator"))
  config = _config(tiny_data_dir, 3, **{"loss.end_to_end_weight": -0.5})
  with pytest.raises(ValueError, match="end_to_end_weight must be >= 0"):
    train.build(config, sharding.make_mesh(), train.open_data(config))


def test_edit_parsing():
  labels = np.array([[0, 6, 7, 3, 4]])
  np.testing.assert_array_equal(spt_system.edit_parsing(labels, "long_sleeves"), [[0, 3, 3, 3, 4]])
  np.testing.assert_array_equal(spt_system.edit_parsing(labels, "pants_to_skirt"), [[0, 6, 7, 3, 5]])
  with pytest.raises(ValueError, match="spt_edit"):
    spt_system.edit_parsing(labels, "hat")
