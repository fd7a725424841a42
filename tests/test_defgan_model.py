"""Deformable GAN and SDGAN networks (jaxpose.models.defgan) (the losses are in tests/test_losses.py).

Blocks, whole generators (toy widths, 32x16 images, five levels so both warped
and plain skips occur) and the discriminator (official depth, toy widths)
against the Keras-layout numpy reference in tests/numpy_reference_defgan.py,
fed through `keras_generator_layers` / `keras_discriminator_layers` (so the
documented Keras layer order and kernel layouts are exercised too).
Parameter counts at the official sizes with jax.eval_shape (nothing allocated).
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.data import part_transforms
from jaxpose.models import defgan
import numpy_reference_defgan as ref

TOL = dict(rtol=2e-4, atol=2e-4)
H, W, B = 32, 16, 2
TOY = dict(encoder_widths=(4, 8, 8, 8, 8), decoder_widths=(8, 8, 8, 4, 3))


def rng_key(seed):
  """An 'rbg' key: XLA:CPU compiles its random bits ~6x faster than threefry's (init, dropout)."""
  return jax.random.key(seed, impl="rbg")


def count(tree):
  return sum(math.prod(x.shape) for x in jax.tree.leaves(tree))


def _random_params(model, *args, seed=0, **kwargs):
  """Random parameters of the right shapes without running the initialisers.

  (jax.eval_shape only: compiling the random initialisers costs seconds per
  layer on CPU.) Kernels N(0, 1 / fan_in), biases and betas N(0, 0.3), gammas
  U(0.5, 1.5): random biases and norm affines, so mistakes cannot hide behind
  zeros and ones.
  """
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(model.init, jax.random.key(0), *args, **kwargs)["params"]

  def draw(path, x):
    name = path[-1].key
    if name == "kernel":
      return jnp.asarray(rng.normal(0, 1 / math.sqrt(math.prod(x.shape[:-1])), x.shape), jnp.float32)
    if name == "gamma":
      return jnp.asarray(rng.uniform(0.5, 1.5, x.shape), jnp.float32)
    return jnp.asarray(rng.normal(0, 0.3, x.shape), jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _keras_layers(params, keras_layers):
  """Our params as the official [(kind, [Keras arrays])] in recorded order; checks the documented shapes."""
  out = []
  for layer in keras_layers:
    node = params
    for key in layer.path:
      node = node[key]
    arrays = []
    for name, shape in layer.weights:
      value = defgan.keras_to_flax(layer, name, np.asarray(node[name.split(":")[0]], np.float64))  # self-inverse
      assert value.shape == shape, (layer, value.shape)
      arrays.append(value)
    out.append((layer.kind, arrays))
  return out


def _poses_and_warps():
  target = np.array([[6, 8], [8, 8], [9, 5], [13, 4], [17, 3], [9, 11], [13, 12], [17, 13], [17, 6], [22, 6],
                     [28, 6], [17, 10], [22, 10], [28, 10], [5, 7], [5, 9], [6, 6], [6, 10]])
  sources = [np.clip(target + np.array([1, -2]), 0, [H - 1, W - 1]), target + np.array([2, 0])]
  sources[1][[3, 4]] = -1  # right arm missing: mirrored limbs
  transforms = np.stack([part_transforms.affine_transforms(s, target) for s in sources])
  masks = np.stack([part_transforms.part_masks(target, (H, W))] * B)
  return transforms, masks


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  image = rng.uniform(-1, 1, (B, H, W, 3)).astype(np.float32)
  source_pose = rng.uniform(0, 1, (B, H, W, 18)).astype(np.float32)
  target_pose = rng.uniform(0, 1, (B, H, W, 18)).astype(np.float32)
  return image, source_pose, target_pose


def _f64(*arrays):
  return [np.asarray(a, np.float64) for a in arrays]


# ----------------------------------------------------------------------------
# Parameter counts and output sizes at the official sizes


def _generator_count(model, size, warps=True):
  h, w = size
  args = [jnp.zeros((1, h, w, 3)), jnp.zeros((1, h, w, 18)), jnp.zeros((1, h, w, 18))]
  if warps:
    args += [jnp.zeros((1, 10, 8)), jnp.zeros((1, 10, h, w))]
  return count(jax.eval_shape(model.init, jax.random.key(0), *args)["params"])


@pytest.mark.parametrize("dataset,warp_skip,expected", [
    ("market", "mask", 61_109_085), ("market", "none", 36_072_533),
    ("deepfashion", "mask", 82_080_611), ("deepfashion", "none", 48_655_449)])
def test_generator_parameter_counts(dataset, warp_skip, expected):
  model = defgan.DefGANGenerator.preset(dataset, warp_skip=warp_skip)
  assert _generator_count(model, defgan.PRESETS[dataset].image_size, warp_skip == "mask") == expected
  preset = defgan.PRESETS[dataset]
  layers = defgan.keras_generator_layers(warp_skip, preset.encoder_widths, preset.decoder_widths)
  assert sum(math.prod(shape) for layer in layers for _, shape in layer.weights) == expected


def test_sdgan_parameter_counts():
  released = _generator_count(defgan.SDGANGenerator.preset("market", variant="released"), (128, 64))
  assert released == 250_024_801
  # The released extras: two up blocks to 3 channels (inputs 1536 at 16x8, 1024 at 32x16) and the two
  # fully connected layers to 3 x 128 x 64 (from 3 x 32 x 16 and 3 x 64 x 32).
  full = 3 * 128 * 64
  assert released - 61_109_085 == (1536 * 3 * 16 + 2) + (1024 * 3 * 16 + 2) + (1536 + 1) * full + (6144 + 1) * full
  # Our paper design: + the coarser pose code at the 1/2 (256 ch) and full (128 ch) steps, + two heads
  # on the 1/4 state (512 + 2 x 256 ch) and the 1/2 state (256 + 2 x 128 + 256 ch).
  paper = _generator_count(defgan.SDGANGenerator(variant="paper"), (128, 64))
  assert paper - 61_109_085 == 256 * 128 * 16 + 128 * 9 * 3 + (1024 * 9 * 3 + 3) + (768 * 9 * 3 + 3)
  assert paper == 61_685_219


@pytest.mark.parametrize("size,patches", [((128, 64), (3, 1)), ((256, 256), (7, 7))])
def test_discriminator_parameter_count_and_patch_size(size, patches):
  model = defgan.DefGANDiscriminator()
  image, pose = jnp.zeros((2, *size, 3)), jnp.zeros((2, *size, 18))
  variables = jax.eval_shape(model.init, jax.random.key(0), image, pose, image, pose)
  assert count(variables["params"]) == 2_803_782
  assert jax.eval_shape(model.apply, variables, image, pose, image, pose).shape == (2, *patches, 1)
  assert sum(math.prod(s) for layer in defgan.keras_discriminator_layers() for _, s in layer.weights) == 2_803_782


# ----------------------------------------------------------------------------
# Blocks against numpy


def test_down_and_up_blocks_match_keras_numpy():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(B, 8, 6, 5)).astype(np.float32)
  down = defgan.DownBlock(7)
  params = _random_params(down, x, seed=1)
  kernel = np.asarray(params["conv"]["kernel"], np.float64)
  norm = [np.asarray(params["norm"][k], np.float64) for k in ("gamma", "beta")]
  layers = [("Conv2D", [kernel]), ("InstanceNormalization", norm)]
  expected = ref.down_block(ref.Weights(layers), x.astype(np.float64))
  assert expected.shape == (B, 4, 3, 7)
  np.testing.assert_allclose(down.apply({"params": params}, x), expected, **TOL)

  up = defgan.UpBlock(6, dropout_rate=0.5)
  params = _random_params(up, x, seed=2)
  keras_kernel = np.asarray(params["conv"]["kernel"], np.float64).transpose(0, 1, 3, 2)  # (4, 4, out, in)
  norm = [np.asarray(params["norm"][k], np.float64) for k in ("gamma", "beta")]
  layers = [("Conv2DTranspose", [keras_kernel]), ("InstanceNormalization", norm)]
  expected = ref.up_block(ref.Weights(layers), x.astype(np.float64))
  assert expected.shape == (B, 16, 12, 6)
  np.testing.assert_allclose(up.apply({"params": params}, x, train=False), expected, **TOL)
  # Flipping the kernel (a classic transposed-conv porting mistake) would not match.
  flipped = jax.tree.map(lambda a: a, params)
  flipped["conv"]["kernel"] = params["conv"]["kernel"][::-1, ::-1]
  assert np.max(np.abs(up.apply({"params": flipped}, x) - expected)) > 1e-2
  # Dropout: elementwise, only with train=True.
  dropped = np.asarray(up.apply({"params": params}, x, train=True, rngs={"dropout": rng_key(3)}))
  assert 0.3 < np.mean(dropped == 0) < 0.7


def test_keras_initialisers_glorot_kernels_zero_biases_unit_norms():
  x = jnp.zeros((1, 16, 8, 192))
  for block, fans in ((defgan.DownBlock(16), 16 * (192 + 16)), (defgan.UpBlock(32), 16 * (192 + 32))):
    params = jax.jit(block.init)(rng_key(0), x)["params"]
    kernel = params["conv"]["kernel"]
    limit = math.sqrt(6 / fans)
    assert float(jnp.max(jnp.abs(kernel))) <= limit
    assert float(jnp.std(kernel)) == pytest.approx(limit / math.sqrt(3), rel=0.03)
    assert float(params["norm"]["gamma"][0]) == 1 and float(params["norm"]["beta"][0]) == 0
  conv = defgan._conv3x3(64, True, jnp.float32, None)  # the encoders' first and the decoder's last conv
  params = jax.jit(conv.init)(rng_key(0), x)["params"]
  assert float(jnp.max(jnp.abs(params["bias"]))) == 0
  assert float(jnp.max(jnp.abs(params["kernel"]))) <= math.sqrt(6 / (9 * (192 + 64)))


# ----------------------------------------------------------------------------
# Whole networks against numpy


@pytest.mark.parametrize("warp_skip", ["mask", "none"])
def test_generator_matches_keras_numpy(warp_skip):
  model = defgan.DefGANGenerator(warp_skip=warp_skip, **TOY)
  image, source_pose, target_pose = _inputs()
  warps = _poses_and_warps() if warp_skip == "mask" else (None, None)
  params = _random_params(model, image, source_pose, target_pose, *warps)
  ours = jax.jit(lambda p: model.apply({"params": p}, image, source_pose, target_pose, *warps))(params)
  keras = _keras_layers(params, defgan.keras_generator_layers(warp_skip, **TOY))
  expected = ref.generator(keras, *_f64(image, source_pose, target_pose), *warps, num_levels=5)
  assert ours.shape == (B, H, W, 3)
  np.testing.assert_allclose(ours, expected, **TOL)
  if warp_skip == "mask":
    # The app/pose interleaving matters: swapping the two encoders' deep layers breaks the match.
    swapped = list(keras)
    swapped[2], swapped[3] = swapped[3], swapped[2]  # level-1 convs: same shapes, different encoders
    wrong = ref.generator(swapped, *_f64(image, source_pose, target_pose), *warps, num_levels=5)
    assert np.max(np.abs(wrong - expected)) > 1e-2


def test_generator_dropout_sits_on_the_three_deepest_decoder_steps():
  model = defgan.DefGANGenerator(**TOY)
  image, source_pose, target_pose = _inputs()
  transforms, masks = _poses_and_warps()
  variables = {"params": _random_params(model, image, source_pose, target_pose, transforms, masks)}

  @functools.partial(jax.jit, static_argnums=0)
  def run(train):
    return model.apply(variables, image, source_pose, target_pose, transforms, masks, train=train,
                       rngs={"dropout": rng_key(1)},
                       capture_intermediates=lambda module, _: isinstance(module, nn.Dropout))

  trained, state = run(True)
  assert sorted(state["intermediates"]["decoder"]) == ["block_0", "block_1", "block_2"]
  evaluation, _ = run(False)
  assert np.max(np.abs(trained - evaluation)) > 1e-3


def test_discriminator_matches_keras_numpy():
  model = defgan.DefGANDiscriminator(widths=(4, 4, 4, 4))
  rng = np.random.default_rng(2)
  inputs = [rng.normal(size=(B, 64, 48, c)).astype(np.float32) for c in (3, 18, 3, 18)]
  params = _random_params(model, *inputs)
  logits = jax.jit(model.apply)({"params": params}, *inputs)
  keras = _keras_layers(params, defgan.keras_discriminator_layers((4, 4, 4, 4)))
  expected = ref.discriminator(keras, np.concatenate(_f64(*inputs), axis=-1))
  assert logits.shape == expected.shape == (B, 1, 1, 1)  # 64x48: 31x23, 15x11, 7x5, 3x2, 1x1
  np.testing.assert_allclose(logits, expected, **TOL)


def test_sdgan_released_side_outputs_match_numpy_and_share_the_defgan_weights():
  model = defgan.SDGANGenerator(variant="released", **TOY)
  image, source_pose, target_pose = _inputs(1)
  transforms, masks = _poses_and_warps()
  params = _random_params(model, image, source_pose, target_pose, transforms, masks)
  outputs = jax.jit(model.apply)({"params": params}, image, source_pose, target_pose, transforms, masks)
  assert all(o.shape == (B, H, W, 3) for o in outputs)
  # The full image is Deformable GAN's with the shared weights.
  shared = {k: params[k] for k in ("appearance_encoder", "pose_encoder", "decoder")}
  plain = jax.jit(defgan.DefGANGenerator(**TOY).apply)({"params": shared}, image, source_pose, target_pose,
                                                       transforms, masks)
  np.testing.assert_allclose(outputs.full, plain, rtol=1e-6, atol=1e-6)
  # Side outputs: up block on the decoder states at 1/8 and 1/4, NCHW flatten, linear, no tanh.
  keras = _keras_layers(shared, defgan.keras_generator_layers("mask", **TOY))
  _, states = ref.generator(keras, *_f64(image, source_pose, target_pose), transforms, masks, num_levels=5,
                            return_states=True)
  for name, state in (("quarter", states[1]), ("half", states[2])):
    block = params[f"{name}_block"]
    layers = [("Conv2DTranspose", [np.asarray(block["conv"]["kernel"], np.float64).transpose(0, 1, 3, 2)]),
              ("InstanceNormalization", [np.asarray(block["norm"][k], np.float64) for k in ("gamma", "beta")])]
    side = ref.up_block(ref.Weights(layers), state)
    linear = params[f"{name}_linear"]
    flat = side.transpose(0, 3, 1, 2).reshape(B, -1) @ np.asarray(linear["kernel"]) + np.asarray(linear["bias"])
    expected = flat.reshape(B, 3, H, W).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(getattr(outputs, name), expected, **TOL)
  # Its dropout is channel-wise (PyTorch Dropout2d): whole feature maps vanish.
  _, state = jax.jit(lambda p: model.apply({"params": p}, image, source_pose, target_pose, transforms, masks,
                                           train=True, rngs={"dropout": rng_key(5)}, capture_intermediates=True))(
                                               params)
  dropped = np.asarray(state["intermediates"]["decoder"]["block_0"]["__call__"][0])
  per_channel = (dropped == 0).all(axis=(1, 2))
  assert per_channel.any() and np.array_equal((dropped == 0).any(axis=(1, 2)), per_channel)


def test_sdgan_paper_outputs_three_scales_and_its_quarter_head_reads_the_defgan_state():
  model = defgan.SDGANGenerator(variant="paper", **TOY)
  image, source_pose, target_pose = _inputs(2)
  transforms, masks = _poses_and_warps()
  params = _random_params(model, image, source_pose, target_pose, transforms, masks)
  outputs = jax.jit(model.apply)({"params": params}, image, source_pose, target_pose, transforms, masks)
  assert outputs.full.shape == (B, H, W, 3)
  assert outputs.half.shape == (B, H // 2, W // 2, 3) and outputs.quarter.shape == (B, H // 4, W // 4, 3)
  assert all(float(jnp.max(jnp.abs(o))) < 1 for o in outputs)
  # Up to the 1/4 state the decoder is Deformable GAN's: take its numpy state and apply the head.
  defgan_params = _random_params(defgan.DefGANGenerator(**TOY), image, source_pose, target_pose, transforms, masks)
  merged = {"appearance_encoder": params["appearance_encoder"], "pose_encoder": params["pose_encoder"],
            "decoder": {**defgan_params["decoder"], **{f"block_{i}": params["decoder"][f"block_{i}"]
                                                        for i in range(3)}}}
  keras = _keras_layers(merged, defgan.keras_generator_layers("mask", **TOY))
  _, states = ref.generator(keras, *_f64(image, source_pose, target_pose), transforms, masks, num_levels=5,
                            return_states=True)
  head = params["quarter_head"]["conv"]
  expected = np.tanh(ref.conv2d(ref.relu(states[2]), np.asarray(head["kernel"], np.float64),
                                np.asarray(head["bias"], np.float64), pad=1))
  np.testing.assert_allclose(outputs.quarter, expected, **TOL)
  # The half and full steps see the coarser pose code: their inputs are wider than Deformable GAN's.
  assert params["decoder"]["block_3"]["conv"]["kernel"].shape[2] == 8 + 2 * 8 + 8
  assert params["decoder"]["output_conv"]["kernel"].shape[2] == 4 + 2 * 4 + 8


# ----------------------------------------------------------------------------
# Validation


def test_bad_inputs_raise():
  image, source_pose, target_pose = _inputs()
  transforms, masks = _poses_and_warps()
  key = jax.random.key(0)
  mask_model, none_model = defgan.DefGANGenerator(**TOY), defgan.DefGANGenerator(warp_skip="none", **TOY)
  with pytest.raises(ValueError, match="needs transforms"):
    jax.eval_shape(mask_model.init, key, image, source_pose, target_pose)
  with pytest.raises(ValueError, match="takes no transforms"):
    jax.eval_shape(none_model.init, key, image, source_pose, target_pose, transforms, masks)
  with pytest.raises(ValueError, match="source_pose must be"):
    jax.eval_shape(mask_model.init, key, image, source_pose[..., :17], target_pose, transforms, masks)
  with pytest.raises(ValueError, match="divisible"):
    jax.eval_shape(mask_model.init, key, image[:, :24], source_pose[:, :24], target_pose[:, :24], transforms,
                   masks[:, :, :24])
  with pytest.raises(ValueError, match="masks must be"):
    jax.eval_shape(mask_model.init, key, image, source_pose, target_pose, transforms, masks[:, :, :16])
  with pytest.raises(ValueError, match="preset"):
    defgan.DefGANGenerator.preset("h36m")
  with pytest.raises(ValueError, match="too small"):
    jax.eval_shape(defgan.DefGANDiscriminator().init, key, image, source_pose, image, target_pose)
