"""SPT's networks (jaxpose.models.spt) against the release.

Parameter counts at the released sizes with jax.eval_shape (nothing
allocated); the released netG key layout, reconstructed here from the
release's module structure (GlobalLocalPRDemo_models.py) independently of
`torch_table`, at full size (names and shapes) and at toy widths (a .pth
fixture written with tests/torch_writer.py, imported through the system's
checkpoint kind); every H_A block, the warp, the mask resize, the whole
progressive H_A and both discriminators against the numpy reference in
tests/numpy_reference_spt.py, fed the same state_dict.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.data import part_transforms
from jaxpose.io import state_dict as sd_lib
from jaxpose.models import spt
from jaxpose.systems import spt as spt_system
import numpy_reference_spt as ref
import torch_writer

TOL = dict(rtol=2e-4, atol=2e-4)


# ----------------------------------------------------------------------------
# The released key layout, from the release's module structure


def _block_keys(prefix, c_in, c_out, down, bn):
  keys = {f"{prefix}.net.1.weight": (c_out, c_in, 4, 4) if down else (c_in, c_out, 4, 4)}
  if bn:
    norm = 2 if down else 3  # [LeakyReLU, Conv2d, InstanceNorm3d] / [ReLU, ConvTranspose2d, Cropping2D, InstanceNorm3d]
    keys[f"{prefix}.net.{norm}.weight"] = (1,)
    keys[f"{prefix}.net.{norm}.bias"] = (1,)
  return keys


def released_netg_keys(enc, dec, input_nc=57, pose_dim=18):
  """`Local_Generator(input_nc, 18, (256, 256), enc, dec, 'mask')`'s state_dict keys and shapes, in order."""
  keys = {}

  def encoder(prefix, c_in):  # `encoder.build_net`
    for i, nf in enumerate(enc):
      if i == 0:
        keys[f"{prefix}.net.0.weight"] = (nf, c_in, 3, 3)
        keys[f"{prefix}.net.0.bias"] = (nf,)
      else:
        keys.update(_block_keys(f"{prefix}.net.{i}", enc[i - 1], nf, True, i != len(enc) - 1))

  # Global_Generator: encoder_app(input_nc - pose_dim - 9), encoder_pose(pose_dim + 9), decoder (num_skips 2).
  encoder("model_global.encoder_app", input_nc - pose_dim - 9)
  encoder("model_global.encoder_pose", pose_dim + 9)
  for i, nf in enumerate(dec):
    if i == 0:
      keys.update(_block_keys("model_global.decoder.net.0", 2 * enc[-1], nf, False, True))
    elif i < len(dec) - 1:
      keys.update(_block_keys(f"model_global.decoder.net.{i}", 2 * enc[-(i + 1)] + dec[i - 1], nf, False, True))
    else:  # ReLU at index i, Conv2d at i + 1
      keys[f"model_global.decoder.net.{i + 1}.weight"] = (nf, 2 * enc[-(i + 1)] + dec[i - 1], 3, 3)
      keys[f"model_global.decoder.net.{i + 1}.bias"] = (nf,)
  # local_encoder(nfilters_enc[:2]): Conv2d(input_nc, nf/2), Block(nf_prev/2, nf/2) (normalised).
  for name, c_in in (("model_local_encoder_app", input_nc - pose_dim - 9), ("model_local_encoder_pose", pose_dim + 9)):
    keys[f"{name}.net.0.weight"] = (enc[0] // 2, c_in, 3, 3)
    keys[f"{name}.net.0.bias"] = (enc[0] // 2,)
    keys.update(_block_keys(f"{name}.net.1", enc[0] // 2, enc[1] // 2, True, True))
  # local_decoder(dec[-2:]): Block(2 * enc[1] / 2 + dec[-2], dec[-2] / 2), ReLU, Conv2d(enc[0] + dec[-2] / 2, 3).
  keys.update(_block_keys("model_local_decoder.net.0", enc[1] + dec[-2], dec[-2] // 2, False, True))
  keys["model_local_decoder.net.2.weight"] = (dec[-1], enc[0] + dec[-2] // 2, 3, 3)
  keys["model_local_decoder.net.2.bias"] = (dec[-1],)
  return keys


def test_released_parameter_counts():
  variables = spt.abstract_variables(spt.AppearanceGenerator())
  params = variables["params"]
  assert sd_lib.count_parameters(params) == spt.H_A_PARAMETERS == 61_467_078
  g = params["global_generator"]
  assert sd_lib.count_parameters(g) == 61_119_453
  assert [sd_lib.count_parameters(g[k]) for k in ("appearance_encoder", "pose_encoder", "decoder")] == [
      11_158_472, 11_156_744, 38_804_237]
  assert sd_lib.count_parameters(params["local_appearance_encoder"]) == 41_442
  assert sd_lib.count_parameters(params["local_pose_encoder"]) == 40_578
  assert sd_lib.count_parameters(params["local_decoder"]) == 265_605
  d = sd_lib.abstract_variables(spt.PatchDiscriminator(), jnp.zeros((1, 256, 256, 12)))
  assert sd_lib.count_parameters(d) == spt.D_PARAMETERS == 2_773_953
  face = sd_lib.abstract_variables(spt.PatchDiscriminator(fade_in=True), jnp.zeros((1, 256, 256, 3)))
  assert sd_lib.count_parameters(face) == spt.D_FACE_PARAMETERS == 2_767_873
  assert sd_lib.count_parameters(face["params"]["fade_in_conv"]) == 3_136


def test_released_netg_layout_maps_onto_the_model_at_full_size():
  """The full-size key list (from the release's structure) is exactly the table's, shapes included."""
  expected = released_netg_keys(spt.RELEASED_ENCODER_WIDTHS, spt.RELEASED_DECODER_WIDTHS)
  assert sum(math.prod(s) for s in expected.values()) == spt.H_A_PARAMETERS
  model = spt.AppearanceGenerator()
  zeros = {k: np.broadcast_to(np.float32(0), s) for k, s in expected.items()}
  assert spt.hparams_from_torch(zeros) == dict(encoder_widths=spt.RELEASED_ENCODER_WIDTHS,
                                               decoder_widths=spt.RELEASED_DECODER_WIDTHS, progressive=True)
  table = spt.torch_table(model)
  assert sorted(e.torch_key for e in table) == sorted(expected)
  flat = {(e.collection,) + e.path: e for e in table}
  abstract = spt.abstract_variables(model)
  for path, leaf in sd_lib.leaves(abstract["params"]).items():
    entry = flat[("params",) + path]
    torch_shape = sd_lib.TO_TORCH[entry.kind](np.empty(leaf.shape, np.uint8)).shape
    assert tuple(torch_shape) == expected[entry.torch_key], entry.torch_key


# ----------------------------------------------------------------------------
# Toy widths: the imported fixture against the numpy reference

TOY_ENC = (4, 8, 8, 8)
TOY_DEC = (8, 8, 4, 3)
SIZE = 32


def _random_state_dict(keys, seed=0):
  rng = np.random.default_rng(seed)
  out = {}
  for key, shape in keys.items():
    if key.endswith("weight") and len(shape) == 1:  # whole-map norm weights
      out[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif len(shape) == 4:
      fan_in = shape[1] * shape[2] * shape[3]
      out[key] = rng.normal(0, 1 / math.sqrt(fan_in), shape).astype(np.float32)
    else:
      out[key] = rng.normal(0, 0.3, shape).astype(np.float32)
  return out


def _keypoints(size, seed):
  """Two plausible poses (y, x) in a size x size frame, from a reference pose jittered."""
  base = np.array([[4, 16], [7, 16], [7, 12], [11, 11], [15, 10], [7, 20], [11, 21], [15, 22], [17, 13],
                   [23, 13], [29, 13], [17, 19], [23, 19], [29, 19], [3, 15], [3, 17], [4, 14], [4, 18]], np.float64)
  rng = np.random.default_rng(seed)
  kp = base * size / 32 + rng.normal(0, 0.8 * size / 32, base.shape)
  return np.clip(np.round(kp), 0, size - 1).astype(np.int32)


def _warps(source_kp, target_kp, size):
  return (part_transforms.affine_transforms(source_kp, target_kp)[None].astype(np.float32),
          part_transforms.part_masks(target_kp, (size, size))[None].astype(np.float32))


def _inputs(seed=0, size=SIZE):
  rng = np.random.default_rng(seed)
  source_kp, target_kp = _keypoints(size, seed), _keypoints(size, seed + 1)
  nchw = lambda c, s: rng.normal(0, 1, (1, c, s, s)).astype(np.float32)
  full = {"image": np.tanh(nchw(3, size)), "parsing": (nchw(9, size) > 1).astype(np.float32),
          "pose": np.abs(nchw(18, size)), "target_parsing": (nchw(9, size) > 1).astype(np.float32),
          "target_pose": np.abs(nchw(18, size))}
  full["warps"], full["masks"] = _warps(source_kp, target_kp, size)
  half = {k: v[:, :, ::2, ::2] for k, v in full.items() if v.ndim == 4 and k != "masks"}
  half["warps"], half["masks"] = _warps(source_kp // 2, target_kp // 2, size // 2)
  return full, half


def _to_flax(side):
  out = {k: jnp.asarray(v.transpose(0, 2, 3, 1)) for k, v in side.items() if k not in ("warps", "masks")}
  out["transforms"] = jnp.asarray(side["warps"])
  out["masks"] = jnp.asarray(side["masks"])
  return out


@pytest.fixture(scope="module")
def toy_netg(tmp_path_factory):
  """A toy-width netG .pth in the release's key names (written without torch), and its state_dict."""
  state_dict = _random_state_dict(released_netg_keys(TOY_ENC, TOY_DEC))
  path = str(tmp_path_factory.mktemp("spt") / "latest_net_G.pth")
  torch_writer.save_state_dict(state_dict, path)
  return path, state_dict


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_imported_netg_matches_the_release(toy_netg, alpha):
  path, state_dict = toy_netg
  model, variables = spt_system.SYSTEM.checkpoint_kinds()["spt_appearance_generator"](path)
  assert (model.encoder_widths, model.decoder_widths, model.progressive) == (TOY_ENC, TOY_DEC, True)
  full, half = _inputs()
  got = jax.jit(model.apply)(variables, **_to_flax(full), half=_to_flax(half), alpha=alpha)
  sd64 = {k: v.astype(np.float64) for k, v in state_dict.items()}
  expected = ref.local_generator(sd64, {k: v.astype(np.float64) for k, v in full.items()},
                                 {k: v.astype(np.float64) for k, v in half.items()}, len(TOY_ENC), alpha)
  np.testing.assert_allclose(np.asarray(got), expected.transpose(0, 2, 3, 1), **TOL)
  # And back: to_torch gives the release's keys and values.
  back = spt.to_torch(variables, model)
  assert list(back) == list(state_dict)
  for key in state_dict:
    np.testing.assert_array_equal(back[key], state_dict[key], err_msg=key)


def test_global_generator_alone_matches_the_release_decoder_without_upsampling(toy_netg):
  """progressive=False: the `Global_Generator` key layout without the prefix, output at input size."""
  _, state_dict = toy_netg
  global_sd = {k[len("model_global."):]: v for k, v in state_dict.items() if k.startswith("model_global.")}
  hparams = spt.hparams_from_torch(global_sd)
  assert hparams["progressive"] is False
  model = spt.AppearanceGenerator(**hparams)
  variables = spt.from_torch(global_sd, model)
  full, _ = _inputs(seed=3)
  got = jax.jit(model.apply)(variables, **_to_flax(full))
  sd64 = {k: v.astype(np.float64) for k, v in global_sd.items()}
  f64 = {k: v.astype(np.float64) for k, v in full.items()}
  expected, _, _ = ref.global_generator(
      sd64, "", np.concatenate([f64["image"], f64["parsing"], f64["pose"]], 1),
      np.concatenate([f64["target_pose"], f64["target_parsing"]], 1), f64["warps"], f64["masks"], len(TOY_ENC),
      upsample=False)
  assert got.shape == (1, SIZE, SIZE, 3)
  np.testing.assert_allclose(np.asarray(got), expected.transpose(0, 2, 3, 1), **TOL)


def test_mismatched_netg_lists_every_problem(toy_netg):
  _, state_dict = toy_netg
  broken = dict(state_dict)
  del broken["model_local_decoder.net.2.bias"]
  broken["model_global.decoder.net.0.net.3.weight"] = np.ones((2,), np.float32)
  broken["extra.weight"] = np.ones((1,), np.float32)
  model = spt.AppearanceGenerator(**spt.hparams_from_torch(state_dict))
  with pytest.raises(sd_lib.StateDictMismatchError) as error:
    spt.from_torch(broken, model)
  text = str(error.value)
  assert "missing model_local_decoder.net.2.bias" in text and "unexpected extra.weight" in text
  assert "shape mismatch model_global.decoder.net.0.net.3.weight" in text


# ----------------------------------------------------------------------------
# Blocks


def _sd_from_flax(tree, prefix, torch_prefix, down):
  """A Flax Block's params in the release's key names (via the module's own table helper)."""
  table = spt._block_entries(torch_prefix, prefix, down, "norm" in tree)
  return sd_lib.variables_to_state_dict({"params": {prefix[0]: tree}}, table)


@pytest.mark.parametrize("down,norm,leaky", [(True, True, True), (True, False, True), (False, True, False)])
def test_block_matches_the_release(down, norm, leaky):
  rng = np.random.default_rng(1)
  x = rng.normal(0, 1, (2, 8, 6, 5)).astype(np.float32)
  block = spt.Block(7, down=down, norm=norm, leaky=leaky)
  variables = jax.eval_shape(block.init, jax.random.key(0), jnp.asarray(x))
  params = jax.tree.map(lambda a: jnp.asarray(rng.normal(0.5, 0.5, a.shape), jnp.float32), variables["params"])
  got = jax.jit(block.apply)({"params": params}, jnp.asarray(x))
  sd = {k: v.astype(np.float64) for k, v in _sd_from_flax(params, ("b",), "blk", down).items()}
  expected = ref.block(sd, "blk", x.transpose(0, 3, 1, 2).astype(np.float64), down=down, bn=norm, leaky=leaky)
  np.testing.assert_allclose(np.asarray(got), expected.transpose(0, 2, 3, 1), **TOL)


def test_whole_map_norm_puts_eps_inside_the_square_root():
  x = np.random.default_rng(2).normal(3, 0.01, (2, 4, 4, 3)).astype(np.float32)  # tiny variance: eps matters
  got = spt.whole_map_norm(jnp.asarray(x), jnp.array([1.5]), jnp.array([0.2]))
  expected = ref.instance_norm3d_1(x.transpose(0, 3, 1, 2).astype(np.float64), np.array([1.5]), np.array([0.2]))
  np.testing.assert_allclose(np.asarray(got), expected.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)
  keras = (x - x.mean((1, 2, 3), keepdims=True)) / (x.std((1, 2, 3), keepdims=True) + 1e-3) * 1.5 + 0.2
  assert np.max(np.abs(np.asarray(got) - keras)) > 0.1  # not Deformable GAN's Keras form


@pytest.mark.parametrize("size,out", [((32, 32), (32, 32)), ((32, 32), (16, 16)), ((32, 32), (8, 8)),
                                      ((32, 32), (4, 4)), ((24, 16), (6, 4)), ((18, 12), (6, 4))])
def test_mask_resize_is_opencv_bilinear(size, out):
  masks = np.random.default_rng(0).uniform(0, 1, (1, 2) + size).astype(np.float32)
  got = np.asarray(spt.resize_masks_linear(jnp.asarray(masks), out))
  for p in range(2):
    np.testing.assert_allclose(got[0, p], ref.cv2_resize_linear(masks[0, p].astype(np.float64), *out), atol=1e-6)


@pytest.mark.parametrize("level", [32, 16, 8])
def test_deformable_skip_matches_the_release(level):
  rng = np.random.default_rng(4)
  features = rng.normal(0, 1, (1, level, level, 3)).astype(np.float32)
  warps, masks = _warps(_keypoints(32, 7), _keypoints(32, 8), 32)
  got = jax.jit(spt.spt_deformable_skip)(jnp.asarray(features), jnp.asarray(warps), jnp.asarray(masks))
  expected = ref.affine_transform_layer(features.transpose(0, 3, 1, 2).astype(np.float64), warps.astype(np.float64),
                                        masks.astype(np.float64), (32, 32))
  np.testing.assert_allclose(np.asarray(got), expected.transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-4)


def test_identity_warp_is_exact_on_non_square_maps():
  features = np.random.default_rng(5).normal(0, 1, (1, 12, 8, 2)).astype(np.float32)
  identity = np.array([[[1, 0, 0, 0, 1, 0, 0, 0]]], np.float32)
  warp = jax.jit(spt.spt_warp)
  np.testing.assert_allclose(np.asarray(warp(jnp.asarray(features), jnp.asarray(identity))[:, 0]), features,
                             atol=1e-5)
  no_point = np.array([[[1, 0, 1000, 0, 1, 1000, 0, 0]]], np.float32)
  assert not np.any(np.asarray(warp(jnp.asarray(features), jnp.asarray(no_point))))


@pytest.mark.parametrize("fade_in,alpha", [(False, 0.0), (True, 0.0), (True, 0.6)])
def test_patch_discriminator_matches_the_release(fade_in, alpha):
  rng = np.random.default_rng(6)
  channels = 3 if fade_in else 12
  x = rng.normal(0, 1, (2, 64, 64, channels)).astype(np.float32)
  model = spt.PatchDiscriminator(width=4, n_layers=3, fade_in=fade_in)
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.asarray(x))["params"]
  params = jax.tree.map(lambda a: jnp.asarray(rng.normal(0, 0.3, a.shape), jnp.float32), shapes)
  sd = spt.discriminator_to_torch({"params": params}, model)
  assert spt.discriminator_hparams_from_torch(sd) == (dict(width=4, n_layers=3, fade_in=fade_in), channels)
  back = spt.discriminator_from_torch({**sd, "model.3.running_mean": np.zeros(8, np.float32)}, model, channels)
  got = jax.jit(model.apply)(back, jnp.asarray(x), alpha)
  expected = ref.nlayer_discriminator({k: v.astype(np.float64) for k, v in sd.items()},
                                      x.transpose(0, 3, 1, 2).astype(np.float64), 3, fade_in, alpha)
  np.testing.assert_allclose(np.asarray(got), expected.transpose(0, 2, 3, 1), **TOL)


def test_semantic_generator_outputs_class_logits_at_its_input_size():
  model = spt.SemanticGenerator(encoder_widths=(4, 8, 8, 8), decoder_widths=(8, 8, 4, 10))
  z = lambda c: jnp.zeros((2, 16, 8, c))
  args = (z(10), z(18), z(1), z(18), z(1), jnp.tile(jnp.array([1., 0, 0, 0, 1, 0, 0, 0]), (2, 10, 1)),
          jnp.ones((2, 10, 16, 8)))
  variables = jax.eval_shape(model.init, jax.random.key(0), *args)
  variables = jax.tree.map(lambda a: jnp.full(a.shape, 0.1, a.dtype), variables)
  assert jax.jit(model.apply)(variables, *args).shape == (2, 16, 8, 10)
  assert spt.semantic_hparams_from_variables(variables) == dict(encoder_widths=(4, 8, 8, 8),
                                                                decoder_widths=(8, 8, 4, 10))
