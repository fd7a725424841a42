"""Deformable GAN's deformable skip connection and its Keras-contrib instance norm.

`deformable_skip` is the official `AffineTransformLayer(10, 'max', image_size)`
(pose_transform.py; shared/reference/peers.md section 2.2): the appearance
features of one encoder level are warped by each of the ten part transforms,
each warped copy is multiplied by its part mask, and the ten are combined by
an elementwise max. The transforms and masks come from
`jaxpose.data.part_transforms` at full image resolution; this module does the
level arithmetic:

  * the warp is `tf.contrib.image.transform` (TF 1.5 kernel): output pixel
    (x, y) reads the input at (a0 x + a1 y + a2, b0 x + b1 y + b2) / (c0 x +
    c1 y + 1), in float32, NEAREST interpolation rounding half away from zero
    (`std::round`), zero outside the map. At a level downsampled by k = H / h
    only the translations a2 and b2 are divided by k (the official
    `affine_mul`); the linear part is scale free;
  * the masks are resized as TF 1.x `resize_images(NEAREST_NEIGHBOR)`: level
    pixel i reads mask pixel floor(i * H / h), i.e. `mask[::k, ::k]` (not the
    half-pixel-centred nearest of `jax.image.resize` / TF 2);
  * the max runs over all ten parts INCLUDING the zeros of masked-out and
    no-point parts: wherever one part contributes a zero (its mask is 0 there
    or it reads outside the map) negative values lose to it, so in practice
    (no pixel is covered by all ten masks) the skip is >= 0.

Written with gathers and a vmap over the batch, no Python loop over parts;
differentiable with respect to the features (the max's gradient is split
evenly between ties, as TF's `reduce_max`).

`KerasInstanceNorm` is keras-contrib's `InstanceNormalization()` with its
default axis=None, which Deformable GAN uses everywhere: despite the name a
per-sample normalisation over all of (H, W, C), (x - mean) / (std + 1e-3),
with the POPULATION std (Keras' `K.std` is sqrt of the mean squared
deviation), and a single scalar gamma and beta (2 parameters).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

Array = jax.Array

NUM_TRANSFORM_PARAMS = 8


def _round_half_away_from_zero(x: Array) -> Array:
  """C++ `std::round` on float32: jnp.round rounds halves to even, this rounds them away from zero."""
  whole = jnp.trunc(x)
  return jnp.where(jnp.abs(x - whole) >= 0.5, whole + jnp.sign(x), whole)


def level_factor(image_size: tuple[int, int], level_size: tuple[int, int]) -> int:
  """The integer downsampling factor k = H / h = W / w of a feature level; ValueError otherwise."""
  (height, width), (h, w) = image_size, level_size
  if h <= 0 or w <= 0 or height % h or width % w or height // h != width // w:
    raise ValueError(
        f"a {h}x{w} feature map is not an integer, equal-factor downsampling of the {height}x{width} masks "
        "(H / h and W / w must be the same integer)")
  return height // h


def warp_nearest(features: Array, transforms: Array, factor: int = 1) -> Array:
  """`tf.contrib.image.transform` (NEAREST, zero fill) of one map by P transforms.

  Args:
    features: (B, h, w, C).
    transforms: (B, P, 8) full-resolution [a0, a1, a2, b0, b1, b2, c0, c1]
      mapping output (x, y) to input coordinates.
    factor: the level's downsampling factor k; a2 and b2 are divided by it.

  Returns:
    (B, P, h, w, C): copy p of the features warped by transform p.
  """
  batch, h, w, channels = features.shape
  if transforms.ndim != 3 or transforms.shape[0] != batch or transforms.shape[2] != NUM_TRANSFORM_PARAMS:
    raise ValueError(f"transforms must be (B={batch}, P, {NUM_TRANSFORM_PARAMS}), got {transforms.shape}")
  t = transforms.astype(jnp.float32)
  a0, a1, a2, b0, b1, b2, c0, c1 = (t[..., i, None, None] for i in range(NUM_TRANSFORM_PARAMS))
  a2 = a2 / jnp.float32(factor)
  b2 = b2 / jnp.float32(factor)
  x = jnp.arange(w, dtype=jnp.float32)[None, None, None, :]
  y = jnp.arange(h, dtype=jnp.float32)[None, None, :, None]
  projection = c0 * x + c1 * y + 1.0
  source_x = _round_half_away_from_zero((a0 * x + a1 * y + a2) / projection)
  source_y = _round_half_away_from_zero((b0 * x + b1 * y + b2) / projection)
  inside = (source_x >= 0) & (source_x < w) & (source_y >= 0) & (source_y < h)
  # Clip before the int cast (far-away reads, e.g. the no-point transform's +1000, stay in range).
  column = jnp.clip(source_x, 0, w - 1).astype(jnp.int32)
  row = jnp.clip(source_y, 0, h - 1).astype(jnp.int32)
  index = row * w + column  # (B, P, h, w)
  flat = features.reshape(batch, h * w, channels)
  warped = jax.vmap(lambda f, i: f[i])(flat, index)  # (B, P, h, w, C)
  return jnp.where(inside[..., None], warped, jnp.zeros((), features.dtype))


def deformable_skip(features: Array, transforms: Array, masks: Array) -> Array:
  """The official `AffineTransformLayer(10, 'max', image_size)` with masks, at any encoder level.

  Args:
    features: (B, h, w, C) appearance features of an (H, W) image, with H / h
      = W / w an integer (non-square images are fine).
    transforms: (B, P, 8) full-resolution part transforms (P = 10 officially)
      from `part_transforms.affine_transforms`, target -> source pixels.
    masks: (B, P, H, W) full-resolution part masks (any dtype, 0/1) from
      `part_transforms.part_masks`.

  Returns:
    (B, h, w, C) in the features' dtype: max over p of warp_p(features) *
    mask_p[::k, ::k].
  """
  if features.ndim != 4:
    raise ValueError(f"features must be (B, h, w, C), got {features.shape}")
  if masks.ndim != 4 or masks.shape[:2] != transforms.shape[:2]:
    raise ValueError(f"masks must be (B, P, H, W) with (B, P) = {transforms.shape[:2]}, got {masks.shape}")
  factor = level_factor(masks.shape[2:], features.shape[1:3])
  warped = warp_nearest(features, transforms, factor)
  level_masks = masks[:, :, ::factor, ::factor].astype(features.dtype)  # TF 1.x nearest: floor(i * H / h)
  return jnp.max(warped * level_masks[..., None], axis=1)


def keras_instance_norm(x: Array, gamma: Array, beta: Array, eps: float = 1e-3) -> Array:
  """keras-contrib `InstanceNormalization(axis=None)`: per sample over (H, W, C).

  (x - mean) / (std + eps) * gamma + beta, std the population standard
  deviation, statistics in float32; gamma and beta scalars (shape (1,)).
  (B, H, W, C) -> same shape and dtype.
  """
  xf = x.astype(jnp.float32)
  axes = tuple(range(1, x.ndim))
  mean = jnp.mean(xf, axis=axes, keepdims=True)
  std = jnp.sqrt(jnp.mean(jnp.square(xf - mean), axis=axes, keepdims=True))
  out = (xf - mean) / (std + eps) * gamma.astype(jnp.float32) + beta.astype(jnp.float32)
  return out.astype(x.dtype)


class KerasInstanceNorm(nn.Module):
  """keras-contrib `InstanceNormalization()` (axis=None, epsilon=1e-3) as a module.

  Parameters: `gamma` (1,) ones, `beta` (1,) zeros: the Keras weights
  `gamma:0`, `beta:0`, in that order. (B, H, W, C) -> same.
  """
  eps: float = 1e-3

  @nn.compact
  def __call__(self, x: Array) -> Array:
    gamma = self.param("gamma", nn.initializers.ones, (1,), jnp.float32)
    beta = self.param("beta", nn.initializers.zeros, (1,), jnp.float32)
    return keras_instance_norm(x, gamma, beta, self.eps)
