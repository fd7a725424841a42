"""PATN's generator and its official-checkpoint import, against the independent numpy reference.

Small official-layout state_dicts (ngf 8, 2 PATBs, 32x24 images, batch 2) are
written as .pth files with jaxpose.io.torch_checkpoint (zip and legacy
pickle, with and without the PyTorch 0.3 InstanceNorm buffers and the
DataParallel `module.` prefix), imported through jaxpose.convert, and every
block type is compared with tests/numpy_reference.py at float32 round-off.
Parameter counts are checked at the official defaults with jax.eval_shape
(nothing allocated).
"""

import json
import logging
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import checkpoints
from jaxpose import convert
from jaxpose.io import state_dict as state_dict_lib
from jaxpose.models import discriminator as discriminator_lib
from jaxpose.models import layers
from jaxpose.models import patn
import numpy_reference as ref
import official_keys
import torch_writer

TOL = dict(rtol=1e-4, atol=1e-4)
SMALL = dict(width=8, n_blocks=2)
SMALL_HPARAMS = dict(image_channels=3, pose_channels=18, width=8, n_downsampling=2, n_blocks=2,
                     norm="instance", dropout_rate=0.5)
H, W, B = 32, 24, 2


def nchw(x):
  return np.asarray(x, np.float64).transpose(0, 3, 1, 2)


def nhwc(x):
  return np.asarray(x).transpose(0, 2, 3, 1)


def count(tree):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  image = rng.uniform(-1, 1, size=(B, H, W, 3)).astype(np.float32)
  source_pose = rng.uniform(0, 1, size=(B, H, W, 18)).astype(np.float32)
  target_pose = rng.uniform(0, 1, size=(B, H, W, 18)).astype(np.float32)
  return image, source_pose, target_pose


def _state_dict(norm="instance", seed=0, **kwargs):
  return ref.patn_generator_state_dict(np.random.default_rng(seed), norm=norm, **SMALL, **kwargs)


@pytest.fixture(scope="module", params=["zip", "legacy+buffers+module"])
def imported(request, tmp_path_factory):
  """(state_dict as written, model, variables) imported from a .pth file in one of the official formats."""
  legacy = request.param != "zip"
  sd = _state_dict(instance_norm_buffers=legacy)
  on_disk = {f"module.{k}": v for k, v in sd.items()} if legacy else sd
  path = str(tmp_path_factory.mktemp("patn") / "latest_net_netG.pth")
  torch_writer.save_state_dict(on_disk, path, legacy_format=legacy)
  model, variables = convert.import_checkpoint("patn_generator", path)
  return sd, model, variables


# ----------------------------------------------------------------------------
# Parameter counts at the official defaults


@pytest.mark.parametrize("norm,expected,stats", [("instance", 41_358_019, 0), ("batch", 41_365_763, 20_096)])
def test_generator_parameter_counts_equal_the_official(norm, expected, stats):
  abstract = patn.abstract_variables(patn.PATNGenerator(norm=norm), 256, 176)
  assert count(abstract["params"]) == expected
  assert count(abstract.get("batch_stats", {})) == stats  # + 35 num_batches_tracked officially = 20,131
  if norm == "instance":
    per_part = {k: count(v) for k, v in abstract["params"].items()}
    assert per_part["image_stream"] == 378_496 and per_part["pose_stream"] == 481_984
    assert per_part["block_0"] == 2_360_320 and per_part["decoder"] == 378_243
    assert all(per_part[f"block_{j}"] == 4_719_872 for j in range(1, 9))
    assert count(abstract["params"]["block_1"]["image_conv_0"]) + count(
        abstract["params"]["block_1"]["image_conv_1"]) == 1_180_160
    tsv = official_keys.zero_state_dict("patn_G_state_dict.tsv")
    assert sum(math.prod(v.shape) for v in tsv.values()) == expected


@pytest.mark.parametrize("norm,in_channels,expected", [
    ("instance", 21, 3_975_424), ("instance", 6, 3_928_384), ("batch", 21, 3_977_408), ("batch", 6, 3_930_368)])
def test_discriminator_parameter_counts_equal_the_official(norm, in_channels, expected):
  abstract = discriminator_lib.abstract_variables(discriminator_lib.ResnetDiscriminator(norm=norm), in_channels)
  assert count(abstract["params"]) == expected


def test_official_keys_import_at_default_size_and_export_back():
  sd = official_keys.zero_state_dict("patn_G_state_dict.tsv", prefix="module.")
  assert len(sd) == 90
  hparams = patn.hparams_from_torch(sd)
  assert patn.PATNGenerator(**hparams) == patn.PATNGenerator()
  variables = patn.from_torch(sd, patn.PATNGenerator())
  assert count(variables["params"]) == 41_358_019
  exported = patn.to_torch(variables)
  assert list(exported) == [k[len("module."):] for k in sd]  # the official key order too
  assert {k: v.shape for k, v in exported.items()} == {k[len("module."):]: v.shape for k, v in sd.items()}


def test_reference_builder_writes_the_official_keys():
  class ShapeRng:
    def normal(self, size):
      return np.broadcast_to(np.float32(0), size)
    uniform = lambda self, lo, hi, size: np.broadcast_to(np.float32(0), size)
  sd = ref.patn_generator_state_dict(ShapeRng())
  official = official_keys.zero_state_dict("patn_G_state_dict.tsv")
  assert list(sd) == list(official)
  assert {k: v.shape for k, v in sd.items()} == {k: v.shape for k, v in official.items()}


# ----------------------------------------------------------------------------
# Block by block against the reference (instance norm)


def test_streams_match_reference(imported):
  sd, model, variables = imported
  image, source_pose, target_pose = _inputs()
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  normalise = ref.PatnNorm(sd64, "instance")
  stream = patn.DownStream(width=8)
  image_features = stream.apply({"params": variables["params"]["image_stream"]}, image)
  assert image_features.shape == (B, H // 4, W // 4, 32)
  np.testing.assert_allclose(image_features, nhwc(ref.patn_down_stream(sd64, "stream1_down", nchw(image),
                                                                       normalise)), **TOL)
  poses = np.concatenate([source_pose, target_pose], axis=-1)
  pose_features = stream.apply({"params": variables["params"]["pose_stream"]}, poses)
  np.testing.assert_allclose(pose_features, nhwc(ref.patn_down_stream(sd64, "stream2_down", nchw(poses),
                                                                      normalise)), **TOL)
  wrong = ref.patn_down_stream(sd64, "stream1_down", nchw(image), normalise, mistakes=("reflect_stride2",))
  assert float(np.max(np.abs(np.asarray(image_features) - nhwc(wrong)))) > 0.01


def test_attention_blocks_match_reference(imported):
  sd, _, variables = imported
  rng = np.random.default_rng(1)
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  normalise = ref.PatnNorm(sd64, "instance")
  image = rng.normal(size=(B, 8, 6, 32)).astype(np.float32)
  block = patn.PATBlock()
  for j, pose_channels in ((0, 32), (1, 64)):  # block 0 sees the pose stream, later ones the concat
    pose = rng.normal(size=(B, 8, 6, pose_channels)).astype(np.float32)
    (image_out, next_pose), state = block.apply({"params": variables["params"][f"block_{j}"]}, image, pose,
                                                mutable=["intermediates"])
    out64, concat64, att64 = ref.patn_block(sd64, j, nchw(image), nchw(pose), normalise)
    assert image_out.shape == (B, 8, 6, 32) and next_pose.shape == (B, 8, 6, 64)
    np.testing.assert_allclose(image_out, nhwc(out64), **TOL)
    np.testing.assert_allclose(next_pose, nhwc(concat64), **TOL)
    attention = state["intermediates"]["attention"][0]
    np.testing.assert_allclose(attention, nhwc(att64), **TOL)
    assert 0 < float(jnp.min(attention)) and float(jnp.max(attention)) < 1
    # The wiring: next pose input = (logits, updated image), the logits being sigmoid^-1(attention).
    np.testing.assert_allclose(next_pose[..., 32:], image_out, rtol=0, atol=0)
    np.testing.assert_allclose(jax.nn.sigmoid(next_pose[..., :32]), attention, rtol=1e-5, atol=1e-6)
    for mistake in ("mask_in_concat", "image_first_concat", "no_residual", "norm_on_logits"):
      wrong_out, wrong_concat, _ = ref.patn_block(sd64, j, nchw(image), nchw(pose), normalise, (mistake,))
      diff = max(np.max(np.abs(np.asarray(image_out) - nhwc(wrong_out))),
                 np.max(np.abs(np.asarray(next_pose) - nhwc(wrong_concat))))
      assert diff > 0.01, mistake


def test_decoder_matches_reference(imported):
  sd, _, variables = imported
  rng = np.random.default_rng(2)
  x = rng.normal(size=(B, 8, 6, 32)).astype(np.float32)
  got = patn.UpStream().apply({"params": variables["params"]["decoder"]}, x)
  sd64 = {k: v.astype(np.float64) for k, v in sd.items()}
  expected = ref.patn_up_stream(sd64, nchw(x), ref.PatnNorm(sd64, "instance"))
  assert got.shape == (B, H, W, 3) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  # One transposed conv alone: PyTorch ConvTranspose2d(k3, s2, p1, op1), weight (in, out, kh, kw).
  weight, bias = sd["model.stream1_up.0.weight"], sd["model.stream1_up.0.bias"]
  up = layers.ConvTranspose(16).apply({"params": variables["params"]["decoder"]["upsample_0"]}, x)
  np.testing.assert_allclose(up, nhwc(ref.conv_transpose2d(nchw(x), weight.astype(np.float64), bias, 2, 1, 1)),
                             **TOL)
  wrong = ref.patn_up_stream(sd64, nchw(x), ref.PatnNorm(sd64, "instance"), mistakes=("transposed_as_upsample",))
  assert float(np.max(np.abs(np.asarray(got) - nhwc(wrong)))) > 0.01


def test_full_generator_matches_reference_jitted(imported):
  sd, model, variables = imported
  assert model == patn.PATNGenerator(**SMALL_HPARAMS)
  inputs = _inputs(3)
  got, state = jax.jit(lambda v, *x: model.apply(v, *x, mutable=["intermediates"]))(variables, *inputs)
  (expected, attention) = ref.patn_generator(sd, *(nchw(a) for a in inputs), return_attention=True)
  assert got.shape == (B, H, W, 3) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, nhwc(expected), **TOL)
  assert float(np.std(got)) > 0.05
  for j in range(2):
    np.testing.assert_allclose(state["intermediates"][f"block_{j}"]["attention"][0], nhwc(attention[j]), **TOL)
  for mistake in ref.PATN_MISTAKES:
    wrong = ref.patn_generator(sd, *(nchw(a) for a in inputs), mistakes=(mistake,))
    assert float(np.max(np.abs(np.asarray(got) - nhwc(wrong)))) > 0.01, mistake


def test_instance_norm_buffers_are_accepted_ignored_and_logged(caplog):
  sd = {f"module.{k}": v for k, v in _state_dict(instance_norm_buffers=True).items()}
  buffers = [k for k in sd if "running_" in k]
  # 2 x 3 stream norms, 3 per PATB, 2 in the decoder; two buffers each.
  assert len(buffers) == 2 * (6 + 3 * 2 + 2)
  model = patn.PATNGenerator(**SMALL_HPARAMS)
  with caplog.at_level(logging.INFO):
    variables = patn.from_torch(sd, model)
  assert "ignored the running_mean/running_var of 14 InstanceNorm layers (28 buffers)" in caplog.text
  clean = patn.from_torch(_state_dict(), model)
  jax.tree.map(np.testing.assert_array_equal, variables, clean)
  # Export writes them back on request, so files for PyTorch 0.3 round-trip exactly.
  exported = patn.to_torch(variables, model, instance_norm_buffers=True)
  assert list(exported) == [k[len("module."):] for k in sd]
  for k, v in exported.items():
    np.testing.assert_array_equal(v, sd[f"module.{k}"], err_msg=k)
  # A running_mean anywhere else is still an error.
  sd["module.model.att.0.conv_block_stream2.7.running_mean"] = np.zeros((32,), np.float32)
  with pytest.raises(state_dict_lib.StateDictMismatchError, match="unexpected model.att.0.conv_block_stream2.7"):
    patn.from_torch(sd, model)


def test_mapping_layouts():
  sd = _state_dict()
  p = patn.from_torch(sd, patn.PATNGenerator(**SMALL_HPARAMS))["params"]
  np.testing.assert_array_equal(p["pose_stream"]["stem"]["kernel"],
                                sd["model.stream2_down.1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(p["block_1"]["pose_conv_1"]["kernel"],
                                sd["model.att.1.conv_block_stream2.6.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(p["block_0"]["image_conv_0"]["bias"], sd["model.att.0.conv_block_stream1.1.bias"])
  # Transposed conv: (in, out, kh, kw) -> (kh, kw, in, out), unflipped.
  np.testing.assert_array_equal(p["decoder"]["upsample_1"]["kernel"],
                                sd["model.stream1_up.3.weight"].transpose(2, 3, 0, 1))
  np.testing.assert_array_equal(p["decoder"]["output_conv"]["bias"], sd["model.stream1_up.7.bias"])


def test_mismatch_error_lists_every_problem():
  sd = {f"module.{k}": v for k, v in _state_dict().items()}
  del sd["module.model.att.1.conv_block_stream2.6.bias"]
  sd["module.model.att.2.conv_block_stream1.1.weight"] = np.zeros((32, 32, 3, 3), np.float32)
  sd["module.model.stream1_up.0.weight"] = np.zeros((32, 8, 3, 3), np.float32)
  with pytest.raises(state_dict_lib.StateDictMismatchError) as info:
    patn.from_torch(sd, patn.PATNGenerator(**SMALL_HPARAMS))
  assert len(info.value.problems) == 3
  message = str(info.value)
  assert "missing model.att.1.conv_block_stream2.6.bias (32,)" in message
  assert "unexpected model.att.2.conv_block_stream1.1.weight (32, 32, 3, 3)" in message
  assert "shape mismatch model.stream1_up.0.weight: file (32, 8, 3, 3), model (32, 16, 3, 3)" in message
  # A batch-norm file does not load into an instance-norm model (nor the reverse), and says why.
  with pytest.raises(state_dict_lib.StateDictMismatchError) as info:
    patn.from_torch(_state_dict("batch"), patn.PATNGenerator(**SMALL_HPARAMS))
  assert any(p.startswith("missing model.stream1_down.1.bias") for p in info.value.problems)
  # (Its running statistics sit where PyTorch 0.3 put InstanceNorm buffers; the affine weights cannot.)
  assert any(p.startswith("unexpected model.stream1_down.2.weight") for p in info.value.problems)
  with pytest.raises(state_dict_lib.StateDictMismatchError, match="needed to infer"):
    patn.hparams_from_torch({"model.1.weight": np.zeros((1, 1, 1, 1))})


# ----------------------------------------------------------------------------
# Batch norm (Market) and train mode


def test_batch_norm_generator_matches_reference_in_eval_and_train_mode(tmp_path):
  sd = _state_dict("batch", seed=4)
  path = str(tmp_path / "latest_net_netG.pth")
  torch_writer.save_state_dict({f"module.{k}": v for k, v in sd.items()}, path, legacy_format=True)
  model, variables = convert.import_checkpoint("patn_generator", path)
  assert model.norm == "batch" and set(variables) == {"params", "batch_stats"}
  assert "bias" not in variables["params"]["image_stream"]["stem"]
  assert "bias" not in variables["params"]["block_0"]["pose_conv_1"]
  assert "bias" not in variables["params"]["decoder"]["upsample_0"]
  assert "bias" in variables["params"]["decoder"]["output_conv"]
  inputs = _inputs(5)
  got = jax.jit(model.apply)(variables, *inputs)
  np.testing.assert_allclose(got, nhwc(ref.patn_generator(sd, *(nchw(a) for a in inputs))), **TOL)
  # Train mode without dropout: batch statistics, and running statistics moved with momentum 0.1.
  sd_no_dropout = _state_dict("batch", seed=4, dropout=False)
  hparams = patn.hparams_from_torch(sd_no_dropout)
  assert hparams["dropout_rate"] == 0.0
  model = patn.PATNGenerator(**hparams)
  variables = patn.from_torch(sd_no_dropout, model)
  out, updated = model.apply(variables, *inputs, train=True, mutable=["batch_stats"])
  (expected, new_stats) = ref.patn_generator(sd_no_dropout, *(nchw(a) for a in inputs), train_batch_norm=True)
  np.testing.assert_allclose(out, nhwc(expected), **TOL)
  exported = patn.to_torch({**variables, **updated}, model)
  assert len(new_stats) == 2 * (6 + 3 * 2 + 2)
  for key, value in new_stats.items():
    np.testing.assert_allclose(exported[key], value, **TOL, err_msg=key)
  round_trip = patn.from_torch(exported, model)
  jax.tree.map(np.testing.assert_array_equal, round_trip, jax.device_get({**variables, **updated}))


def test_dropout_only_in_training_and_in_both_paths(imported):
  sd, model, variables = imported
  inputs = _inputs(6)
  apply = jax.jit(lambda v, key, *x: model.apply(v, *x, train=True, rngs={"dropout": key},
                                                 capture_intermediates=True, mutable=["intermediates"]))
  eval_out = model.apply(variables, *inputs)
  np.testing.assert_allclose(eval_out, nhwc(ref.patn_generator(sd, *(nchw(a) for a in inputs))), **TOL)
  a, state = apply(variables, jax.random.key(0), *inputs)
  b, _ = apply(variables, jax.random.key(1), *inputs)
  a_again, _ = apply(variables, jax.random.key(0), *inputs)
  np.testing.assert_array_equal(a, a_again)
  assert float(jnp.max(jnp.abs(a - b))) > 0.05 and float(jnp.max(jnp.abs(a - eval_out))) > 0.05
  np.testing.assert_array_equal(model.apply(variables, *inputs), eval_out)  # eval is deterministic
  # Dropout(0.5) in the image path and the pose path of every block. Block 0's dropout inputs do not
  # depend on earlier dropout, so there train = eval input * mask * 2 with about half the mask kept.
  _, eval_state = model.apply(variables, *inputs, capture_intermediates=True, mutable=["intermediates"])
  for j in range(2):
    for path in ("image", "pose"):
      trained = np.asarray(state["intermediates"][f"block_{j}"][f"{path}_dropout"]["__call__"][0])
      passed = np.asarray(eval_state["intermediates"][f"block_{j}"][f"{path}_dropout"]["__call__"][0])
      if j == 0:
        live = passed != 0
        kept = trained[live] != 0
        # (jitted train vs op-by-op eval: float32 round-off apart)
        np.testing.assert_allclose(trained[live][kept], 2 * passed[live][kept], rtol=1e-4, atol=1e-5)
        assert 0.4 < np.mean(kept) < 0.6, path
      assert np.mean(trained == 0) > np.mean(passed == 0) + 0.15, (j, path)
  # Without dropout, instance-norm train mode equals eval mode.
  no_dropout = patn.PATNGenerator(**{**SMALL_HPARAMS, "dropout_rate": 0.0})
  np.testing.assert_allclose(no_dropout.apply(variables, *inputs, train=True), eval_out, rtol=0, atol=1e-6)


def test_init_shapes_and_initialisers():
  model = patn.PATNGenerator(**SMALL_HPARAMS)
  abstract = patn.abstract_variables(model, H, W)
  assert jax.tree.map(lambda a: a.shape, abstract) == jax.tree.map(
      np.shape, patn.from_torch(_state_dict(), model))
  stem = patn.DownStream(width=64, n_downsampling=0).init(jax.random.key(0), jnp.zeros((1, 8, 8, 36)))
  kernel = stem["params"]["stem"]["kernel"]  # the official N(0, 0.02)
  assert float(jnp.std(kernel)) == pytest.approx(0.02, rel=0.05) and abs(float(jnp.mean(kernel))) < 1e-3
  with pytest.raises(ValueError, match="divisible by 4"):
    model.apply(abstract, jnp.zeros((1, 30, 24, 3)), jnp.zeros((1, 30, 24, 18)), jnp.zeros((1, 30, 24, 18)))
  with pytest.raises(ValueError, match="norm must be one of"):
    patn.PATNGenerator(norm="group").init(jax.random.key(0), *(jnp.zeros((1, 8, 8, c)) for c in (3, 18, 18)))


# ----------------------------------------------------------------------------
# Discriminator files and the converter CLI


def test_discriminator_files_and_cli(tmp_path, capsys):
  rng = np.random.default_rng(7)
  g_sd = _state_dict("batch", seed=8)
  paths = {"generator": str(tmp_path / "latest_net_netG.pth"),
           "discriminator_pb": str(tmp_path / "latest_net_netD_PB.pth"),
           "discriminator_pp": str(tmp_path / "latest_net_netD_PP.pth")}
  torch_writer.save_state_dict({f"module.{k}": v for k, v in g_sd.items()}, paths["generator"])
  d_sds = {"discriminator_pb": ref.resnet_discriminator_state_dict(rng, 21, width=8, norm="batch"),
           "discriminator_pp": ref.resnet_discriminator_state_dict(rng, 6, width=8, norm="batch")}
  for name, d_sd in d_sds.items():
    torch_writer.save_state_dict(d_sd, paths[name], legacy_format=True)
  for kind, name, in_channels in (("patn_discriminator_pb", "discriminator_pb", 21),
                                  ("patn_discriminator_pp", "discriminator_pp", 6)):
    d_model, d_vars = convert.import_checkpoint(kind, paths[name])
    assert d_model.norm == "batch" and set(d_vars) == {"params", "batch_stats"}
    x = rng.normal(size=(1, 16, 12, in_channels)).astype(np.float32)
    np.testing.assert_allclose(d_model.apply(d_vars, x, train=False), nhwc(ref.resnet_discriminator(
        d_sds[name], nchw(x), norm="batch")), **TOL)
  with pytest.raises(ValueError, match="a D_PB file"):
    convert.import_checkpoint("patn_discriminator_pp", paths["discriminator_pb"])
  # An instance-norm D saved by PyTorch 0.3, with its never-read InstanceNorm buffers.
  d_sd = ref.resnet_discriminator_state_dict(rng, 21, width=8)
  legacy = dict(d_sd)
  for key in [k for k in d_sd if k.endswith(".weight")]:  # every conv is followed by its norm
    head, _, index = key[:-len(".weight")].rpartition(".")
    legacy[f"{head}.{int(index) + 1}.running_mean"] = np.zeros((d_sd[key].shape[0],), np.float32)
    legacy[f"{head}.{int(index) + 1}.running_var"] = np.ones((d_sd[key].shape[0],), np.float32)
  torch_writer.save_state_dict(legacy, str(tmp_path / "d03.pth"), legacy_format=True)
  d_model, d_vars = convert.import_checkpoint("patn_discriminator_pb", str(tmp_path / "d03.pth"))
  assert d_model.norm == "instance" and set(d_vars) == {"params"}
  x = rng.normal(size=(1, 16, 12, 21)).astype(np.float32)
  np.testing.assert_allclose(d_model.apply(d_vars, x, train=False), nhwc(ref.resnet_discriminator(d_sd, nchw(x))),
                             **TOL)

  out = str(tmp_path / "converted")
  assert convert.main(["--kind", "patn", "--generator", paths["generator"], "--discriminator_pb",
                       paths["discriminator_pb"], "--discriminator_pp", paths["discriminator_pp"],
                       "--output", out]) == 0
  assert "generator: PATNGenerator" in capsys.readouterr().out
  summary = json.load(open(os.path.join(out, "jaxpose_convert.json")))
  assert summary["kind"] == "patn"
  assert summary["networks"]["generator"]["hyperparameters"] == {**SMALL_HPARAMS, "norm": "batch"}
  assert set(summary["networks"]["generator"]["parameter_counts"]) == {"params", "batch_stats"}
  tree, _ = checkpoints.read_weights(out)
  model = patn.PATNGenerator(**{**SMALL_HPARAMS, "norm": "batch"})
  jax.tree.map(np.testing.assert_array_equal, tree["generator"], patn.from_torch(g_sd, model))
  assert set(tree["discriminator_pb"]) == {"params", "batch_stats"}
