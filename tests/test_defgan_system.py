"""Deformable GAN and SDGAN as systems (jaxpose/systems/defgan.py, sdgan.py).

The warp inputs through the data pipeline, the D-first step on two batches,
the SDGAN scales in the sample grid, stacked generation along interpolated
poses, the official Keras .h5 generator files (written with
tests/keras_writer.py) through init_from and generate, parameter counts of the
built systems at the official settings (eval_shape), and the real-data
configs' `:tiny` on the builders' dummy data. The contract test
(tests/test_systems.py) runs both systems' synthetic `:tiny` configs.
"""

import functools
import json
import os

import h5py
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from configs import defgan_deepfashion
from configs import defgan_market
from configs import sdgan_market
from configs import synthetic_defgan
from configs import synthetic_sdgan
from jaxpose import generate
from jaxpose import inference
from jaxpose import losses
from jaxpose import systems
from jaxpose import train
from jaxpose import visualize
from jaxpose.data import heatmaps
from jaxpose.data import pair_source
from jaxpose.data import part_transforms
from jaxpose.data import pipeline
from jaxpose.io import state_dict as sd_lib
from jaxpose.models import defgan as defgan_lib
from jaxpose.systems import defgan as defgan_sys
from jaxpose.systems import sdgan as sdgan_sys
import keras_writer
from tfds_builders import testing as builder_testing
from tfds_builders.deepfashion_pose import deepfashion_pose_dataset_builder as deepfashion_lib
from tfds_builders.market1501_pose import market1501_pose_dataset_builder as market_lib

BUILDERS = os.path.join(os.path.dirname(__file__), "..", "tfds_builders")


def _tiny(module, data_dir, **overrides):
  config = module.get_config("tiny")
  config.data.data_dir = data_dir
  config.update_from_flattened_dict(overrides)
  return config


def _batches(config, count=2, size=2):
  source = pair_source(config.data.name, "train", config.data.data_dir)
  cls = systems.get(config.model)
  transform = cls.transform(config, source)
  indices = pipeline.spread_indices(len(source), count * size)
  batches = [b for b, _ in pipeline.eval_batches(source, batch_size=size, transform=transform, indices=indices)]
  return cls, transform, batches[:count]


def _state(system, batch):
  example = {k: jax.ShapeDtypeStruct((1,) + v.shape[1:], v.dtype) for k, v in batch.items()
             if k in system.batch_keys(system.config)}
  create = functools.partial(train._create_state, system=system, example=example)
  return jax.jit(create, static_argnums=0)(0, system.pretrained.variables)


def _device(system, batch):
  return {k: jnp.asarray(batch[k]) for k in system.batch_keys(system.config)}


# ----------------------------------------------------------------------------
# Data


def test_warp_inputs_through_the_pipeline_equal_part_transforms(tiny_data_dir):
  config = _tiny(synthetic_defgan, tiny_data_dir)
  cls, transform, batches = _batches(config, count=1, size=4)
  assert cls.batch_keys(config)[-2:] == ("part_transforms", "part_masks")
  batch = batches[0]
  assert batch["part_transforms"].shape == (4, 10, 8) and batch["part_masks"].shape == (4, 10, 32, 24)
  for i in range(4):
    np.testing.assert_array_equal(batch["part_transforms"][i], part_transforms.affine_transforms(
        batch["source_keypoints"][i], batch["target_keypoints"][i]))
    np.testing.assert_array_equal(batch["part_masks"][i], part_transforms.part_masks(batch["target_keypoints"][i],
                                                                                     (32, 24)))
  # Not every part is a no-point transform: the warps carry information.
  assert np.any(batch["part_transforms"][:, :, 2] != 1000)
  # The baseline reads no warps; a pair without a torso joint gets empty ones.
  config.generator.warp_skip = "none"
  assert cls.host_inputs(config) is None and "part_masks" not in cls.batch_keys(config)
  keypoints = batch["target_keypoints"][0].copy()
  keypoints[8] = -1  # right hip
  warps = defgan_sys.part_warps(batch["source_keypoints"][0], keypoints, (32, 24))
  assert np.all(warps["part_transforms"] == part_transforms.NO_POINT_TRANSFORM) and not warps["part_masks"].any()


# ----------------------------------------------------------------------------
# The step


def test_discriminator_steps_first_on_its_own_batch_then_the_generator_on_the_second(tiny_data_dir):
  config = _tiny(synthetic_defgan, tiny_data_dir)
  _, _, (a, b, c) = _batches(config, count=3)
  system = systems.build(config)
  state = _state(system, a)
  rng = jax.random.key(3)
  # The engine hands the step a tuple of two batches (tests/test_systems.py runs it through the engine).
  assert systems.get("defgan").batches_per_step == systems.get("sdgan").batches_per_step == 2
  step = jax.jit(system.train_step)
  after_ab, metrics = step(state, (_device(system, a), _device(system, b)), rng)
  after_cb, _ = step(state, (_device(system, c), _device(system, b)), rng)
  after_ac, _ = step(state, (_device(system, a), _device(system, c)), rng)
  leaves = lambda s, n: jax.tree.leaves(s.nets[n]["params"])
  # D's update sees only the first batch; G's only the second (and the D that the first produced).
  for x, y in zip(leaves(after_ab, "discriminator"), leaves(after_ac, "discriminator")):
    np.testing.assert_array_equal(x, y)
  assert any(not np.array_equal(x, y) for x, y in zip(leaves(after_ab, "discriminator"),
                                                       leaves(after_cb, "discriminator")))
  assert any(not np.array_equal(x, y) for x, y in zip(leaves(after_ab, "generator"), leaves(after_ac, "generator")))
  assert any(not np.array_equal(x, y) for x, y in zip(leaves(after_ab, "generator"), leaves(after_cb, "generator")))
  # G's adversarial term is judged by the UPDATED discriminator, on the second batch with G's dropout key.
  _, g_rng = jax.random.split(rng)
  fake = system.generator_outputs(state.nets["generator"], _device(system, b), True, g_rng)["image"]
  judged = {name: float(losses.bce_generator_loss(system.discriminate(nets["discriminator"], _device(system, b),
                                                                      fake)))
            for name, nets in (("old", state.nets), ("updated", after_ab.nets))}
  assert float(metrics["g_gan"]) == pytest.approx(judged["updated"], rel=1e-5)
  assert judged["updated"] != pytest.approx(judged["old"], rel=1e-3)


# ----------------------------------------------------------------------------
# SDGAN's scales


def test_sdgan_generates_and_shows_three_scales(tiny_data_dir):
  for variant, sizes in (("released", [(32, 24)] * 3), ("paper", [(32, 24), (16, 12), (8, 6)])):
    config = _tiny(synthetic_sdgan, tiny_data_dir, **{"generator.variant": variant})
    _, _, (batch,) = _batches(config, count=1)
    system = systems.build(config)
    state = _state(system, batch)
    outputs = jax.jit(system.generate)(state.nets, _device(system, batch))
    assert [outputs[k].shape[1:3] for k in ("image", "image_half", "image_quarter")] == sizes
    # One shared D: on all three (full-size) outputs as the released code, on the full image for 'paper'.
    assert [d.shape[1:3] for d in system.discriminated(outputs)] == [(32, 24)] * (3 if variant == "released" else 1)
    columns = system.sample_columns(batch, jax.device_get(outputs))
    assert list(columns) == ["full", "1/2 scale", "1/4 scale"]
    assert all(np.shape(v) == (2, 32, 24, 3) for v in columns.values())
    factor = 32 // sizes[2][0]  # the 'paper' quarter image repeated 4x4, the 'released' one as it is
    np.testing.assert_array_equal(columns["1/4 scale"][:, ::factor, ::factor],
                                  visualize.to_uint8(np.asarray(outputs["image_quarter"])))
    u8 = lambda x: visualize.to_uint8(np.asarray(x))
    one = visualize.transfer_grid(u8(batch["source_image"]), batch["source_keypoints"], batch["target_keypoints"],
                                  u8(outputs["image"]), u8(batch["target_image"]))
    three = visualize.transfer_grid(u8(batch["source_image"]), batch["source_keypoints"],
                                    batch["target_keypoints"], columns,
                                    u8(batch["target_image"]))
    assert three.shape[0] == one.shape[0] and three.shape[1] > one.shape[1]


def test_sdgan_scale_helpers():
  x = np.arange(2 * 4 * 6 * 1, dtype=np.float32).reshape(2, 4, 6, 1)
  down = sdgan_sys.average_down(jnp.asarray(x), (2, 3))
  np.testing.assert_allclose(down[0, 0, 0, 0], x[0, :2, :2, 0].mean())
  up = sdgan_sys.upsample_nearest(down, (4, 6))
  np.testing.assert_array_equal(up[:, ::2, ::2], down)
  np.testing.assert_array_equal(up[:, 1::2, 1::2], down)


# ----------------------------------------------------------------------------
# Stacked generation


def test_stacked_generation_walks_the_interpolated_poses(tiny_data_dir):
  config = _tiny(synthetic_defgan, tiny_data_dir)
  _, transform, (batch,) = _batches(config, count=1)
  seen = []

  def fake_generator(stage_batch):
    seen.append(stage_batch)
    return stage_batch["source_image"] * 0.5 + len(seen)  # depends on its input, and on the stage

  stages = defgan_sys.stacked_generation(fake_generator, batch, 3, heatmap_sigma=transform.heatmap_sigma,
                                         heatmap_mode=transform.heatmap_mode)
  assert len(stages) == len(seen) == 3
  poses = np.stack([part_transforms.interpolate_keypoints(s, t, 3, snap_to_pixels=True)
                    for s, t in zip(batch["source_keypoints"], batch["target_keypoints"])])
  np.testing.assert_array_equal(poses[:, -1], batch["target_keypoints"])
  previous = batch["source_keypoints"]
  for s, stage_batch in enumerate(seen):
    # Stage s reads the previous stage's output and walks from pose s - 1 to pose s.
    expected_source = batch["source_image"] if s == 0 else stages[s - 1]
    np.testing.assert_array_equal(stage_batch["source_image"], expected_source)
    np.testing.assert_array_equal(stage_batch["target_keypoints"], poses[:, s])
    for i in range(2):
      np.testing.assert_array_equal(stage_batch["target_pose"][i], heatmaps.keypoints_to_heatmaps(
          poses[i, s], 32, 24, sigma=transform.heatmap_sigma, mode=transform.heatmap_mode))
      np.testing.assert_array_equal(stage_batch["part_transforms"][i],
                                    part_transforms.affine_transforms(previous[i], poses[i, s]))
      np.testing.assert_array_equal(stage_batch["part_masks"][i], part_transforms.part_masks(poses[i, s], (32, 24)))
    previous = poses[:, s]
  # One stage is direct generation.
  seen.clear()
  direct = defgan_sys.stacked_generation(fake_generator, batch, 1, heatmap_sigma=transform.heatmap_sigma,
                                         heatmap_mode=transform.heatmap_mode)
  np.testing.assert_array_equal(seen[0]["target_pose"], batch["target_pose"])
  np.testing.assert_array_equal(seen[0]["part_transforms"], batch["part_transforms"])
  np.testing.assert_array_equal(direct[0], batch["source_image"] * 0.5 + 1)


# ----------------------------------------------------------------------------
# Official Keras .h5 generator files


TOY = dict(encoder_widths=(4, 8, 8, 8, 8), decoder_widths=(8, 8, 8, 4, 3))


def _random_variables(model, height, width, seed=0):
  """Random values (distinct everywhere) in the shapes of `model`'s variables, without running it."""
  image = jax.ShapeDtypeStruct((1, height, width, 3), jnp.float32)
  pose = jax.ShapeDtypeStruct((1, height, width, 18), jnp.float32)
  warps = ((jax.ShapeDtypeStruct((1, 10, 8), jnp.float32), jax.ShapeDtypeStruct((1, 10, height, width), jnp.float32))
           if model.warp_skip == "mask" else ())
  shapes = jax.eval_shape(lambda *inputs: model.init(jax.random.key(0), *inputs), image, pose, pose, *warps)
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda x: rng.normal(0, 0.1, x.shape).astype(np.float32), dict(shapes))


def _toy_generator(warp_skip, seed=0):
  model = defgan_lib.DefGANGenerator(warp_skip=warp_skip, **TOY)
  return model, _random_variables(model, 32, 16, seed)


def _reorder(layers, order):
  """`to_keras_layers`' interleaved order (appearance first), or the encoders swapped, or one after the other."""
  if order == "interleaved":
    return layers
  encoders, decoder = layers[:-9], layers[-9:]  # the toy decoder: 4 (ConvT, norm) + the output conv
  appearance, pose = encoders[0::2], encoders[1::2]
  if order == "pose_first":
    return [layer for pair in zip(pose, appearance) for layer in pair] + decoder
  return appearance + pose + decoder


@pytest.mark.parametrize("warp_skip,order", [("mask", "interleaved"), ("mask", "pose_first"),
                                             ("mask", "one_after_the_other"), ("none", "interleaved")])
def test_keras_generator_file_imports(warp_skip, order, tmp_path):
  model, variables = _toy_generator(warp_skip)
  path = str(tmp_path / "generator.h5")
  keras_writer.write_keras_h5(path, _reorder(defgan_lib.to_keras_layers(variables, model), order))
  with h5py.File(path, "r") as f:  # weightless layers (LeakyReLU, padding, the warp) are in the file too
    assert "model_weights" in f
  imported_model, imported = defgan_lib.import_keras_file(path)
  assert (imported_model.warp_skip, imported_model.encoder_widths, imported_model.decoder_widths) == (
      warp_skip, TOY["encoder_widths"], TOY["decoder_widths"])
  for (p, x), y in zip(jax.tree_util.tree_leaves_with_path(variables), jax.tree.leaves(imported)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(p))


def test_keras_generator_file_that_does_not_fit_lists_what_it_holds(tmp_path):
  model, variables = _toy_generator("mask")
  layers = defgan_lib.to_keras_layers(variables, model)
  path = str(tmp_path / "broken.h5")
  broken = list(layers)
  name, weights = broken[6]  # appearance block_2's conv: a kernel of the wrong shape
  broken[6] = (name, [(weights[0][0], np.zeros((4, 4, 8, 5), np.float32))])
  keras_writer.write_keras_h5(path, broken)
  with pytest.raises(sd_lib.CheckpointLayoutError) as error:
    defgan_lib.import_keras_file(path)
  message = str(error.value)
  assert "do not fit" in message and "What the file holds" in message
  assert f"{name}: kernel:0 (4, 4, 8, 5) float32" in message and "conv2d_1: kernel:0 (3, 3, 21, 4)" in message
  keras_writer.write_keras_h5(path, layers[:-1])
  with pytest.raises(sd_lib.CheckpointLayoutError, match="6n - 5"):
    defgan_lib.import_keras_file(path)
  keras_writer.write_keras_h5(path, [("dense_1", [("dense_1/kernel:0", np.zeros((3, 3, 7, 4), np.float32))])])
  with pytest.raises(sd_lib.CheckpointLayoutError, match="7 input channels"):
    defgan_lib.import_keras_file(path)


def test_official_h5_through_init_from_and_generate(tiny_data_dir, tmp_path):
  config = _tiny(synthetic_defgan, tiny_data_dir)
  model = defgan_lib.DefGANGenerator(encoder_widths=tuple(config.generator.encoder_widths),
                                     decoder_widths=tuple(config.generator.decoder_widths))
  variables = _random_variables(model, 32, 24, seed=5)
  path = str(tmp_path / "generator.h5")
  keras_writer.write_keras_h5(path, defgan_lib.to_keras_layers(variables, model))
  cls = systems.get("defgan")
  assert cls.is_official_file(path) and not cls.is_official_file(str(tmp_path))
  assert not systems.get("patn").is_official_file(path)
  config.init_from = path
  weights, origin = train.load_init_weights(config, cls)
  assert set(weights) == {"generator"} and origin == path
  for x, y in zip(jax.tree.leaves(variables), jax.tree.leaves(weights["generator"])):
    np.testing.assert_array_equal(x, y)
  config.init_from = ""
  config.generate.checkpoint = path
  system, nets, origin = generate.load_generator(config, str(tmp_path))
  assert "official checkpoint" in origin and isinstance(system, defgan_sys.DeformableGAN)
  # A user's photo (no parsing: Deformable GAN reads none) with typed source and target poses: the part
  # warps come from the system's host inputs, as in its data pipeline.
  Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48, 3), np.uint8)).save(tmp_path / "me.png")
  source = [[10 + 2 * i, 20 + (i % 3)] for i in range(18)]
  target = [[10 + 2 * i, 22 - (i % 3)] if i != 4 else [-1, -1] for i in range(18)]
  config.generate.update(source_image=str(tmp_path / "me.png"), source_keypoints=json.dumps(source),
                         target_keypoints=json.dumps(target), target_keypoints_size=(64, 48),
                         output_dir=str(tmp_path / "out"))
  pipe = inference.Pipeline(system, nets, origin)
  batch = generate._custom_inputs(config, pipe)
  expected = part_transforms.affine_transforms(batch["source_keypoints"][0], batch["target_keypoints"][0])
  np.testing.assert_allclose(batch["part_transforms"][0], expected, rtol=1e-6)
  assert batch["part_masks"].shape == (1, 10, 32, 24)
  outputs = generate.run(config, str(tmp_path))
  assert np.asarray(Image.open(tmp_path / "out" / "custom_generated.png")).shape == (32, 24, 3)
  assert set(outputs) == {"custom", "custom_keypoints"}
  with pytest.raises(ValueError, match="never saved"):
    systems.get("sdgan").read_official(config, path, ("generator",))


# ----------------------------------------------------------------------------
# Parameter counts at the official settings


def _counts(config):
  cls = systems.get(config.model)
  system = cls(config, cls.load_pretrained(config))
  height, width = config.data.image_size
  example = {"source_image": (height, width, 3), "target_image": (height, width, 3),
             "source_pose": (height, width, 18), "target_pose": (height, width, 18),
             "part_transforms": (10, 8), "part_masks": (10, height, width)}
  example = {k: jnp.zeros((1,) + example[k], jnp.float32) for k in cls.batch_keys(config)}
  nets = jax.eval_shape(lambda: system.init(jax.random.key(0), example, {})[0])
  return {name: sd_lib.count_parameters(v["params"]) for name, v in nets.items()}


@pytest.mark.parametrize("module,variant,generator", [
    (defgan_market, "dsc", 61_109_085), (defgan_market, "baseline", 36_072_533),
    (defgan_deepfashion, "dsc", 82_080_611), (defgan_deepfashion, "baseline", 48_655_449),
    (sdgan_market, "released", 250_024_801), (sdgan_market, "paper", 61_685_219)])
def test_parameter_counts_at_the_official_settings(module, variant, generator):
  assert _counts(module.get_config(variant)) == {"generator": generator, "discriminator": 2_803_782}


# ----------------------------------------------------------------------------
# The real-data configs on the builders' dummy data


@pytest.fixture(scope="module")
def real_formats_dir(tmp_path_factory):
  """market1501_pose/no_parsing and deepfashion_pose/uncropped_256x256 from their dummy_data."""
  data_dir = str(tmp_path_factory.mktemp("defgan_real_formats"))
  for module, name, config in ((market_lib, "market1501_pose", "no_parsing"),
                               (deepfashion_lib, "deepfashion_pose", "uncropped_256x256")):
    builder_testing.build(module.Builder, config, os.path.join(BUILDERS, name, "dummy_data"), data_dir)
  return data_dir


@pytest.mark.parametrize("module", [defgan_market, defgan_deepfashion, sdgan_market],
                         ids=["defgan_market", "defgan_deepfashion", "sdgan_market"])
def test_real_configs_train_on_the_official_layouts(module, real_formats_dir, tmp_path):
  # One step and 2 evaluation pairs: at the official sizes each costs seconds on 2 CPU cores.
  config = module.get_config("tiny")
  config.data.data_dir = real_formats_dir
  config.num_train_steps, config.sample_every, config.eval.num_pairs = 1, 1, 2
  workdir = str(tmp_path / "run")
  results = train.train_and_evaluate(config, workdir)
  assert results["train_steps"] == 1 and 0 < results["ssim"] <= 1
  for name in ("samples/step_0000001.png", "loss_curves.png", "metrics.json"):
    assert os.path.exists(os.path.join(workdir, name)), name


def test_config_variants():
  assert defgan_market.parse_variant("") == ("full", False)
  assert defgan_market.parse_variant("baseline,tiny") == ("baseline", True)
  with pytest.raises(ValueError, match="unknown variant"):
    defgan_market.get_config("dcs")
  full = defgan_market.get_config("full")
  assert (full.loss.nn_area, full.loss.content_layer, full.generator.warp_skip) == (3, "relu1_2", "mask")
  assert defgan_deepfashion.get_config("full").batch_size == 2 and defgan_deepfashion.get_config("full").loss.nn_area == 5
  assert defgan_market.get_config("baseline").generator.warp_skip == "none"
  assert sdgan_market.get_config("").generator.variant == "released"
