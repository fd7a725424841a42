"""The deformable skip connection and the Keras-contrib instance norm (jaxpose.models.deformable).

The warp is compared with a per-pixel numpy loop of `tf.contrib.image.transform`
(NEAREST, std::round, zero fill) + TF 1.x nearest mask resize + max over parts
(tests/numpy_reference_defgan.py) on a NON-SQUARE 32x16 image at level factors
1, 2, 4 and 8, with transforms chosen to land on exact halves (where rounding
half away from zero and half to even disagree) and random masks (where any
other resize rule disagrees).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.data import part_transforms
from jaxpose.models import deformable
import numpy_reference_defgan as ref

HEIGHT, WIDTH = 32, 16

skip = jax.jit(deformable.deformable_skip)

CRAFTED = np.array([
    [1, 0, 0, 0, 1, 0, 0, 0],          # identity
    [0.5, 0, 0, 0, 0.5, 0, 0, 0],      # zoom: reads land on x.5
    [1, 0, 5, 0, 1, -1, 0, 0],         # shift: 2.5 / -0.5 at factor 2
    [0, -1, 15, 1, 0, 0, 0, 0],        # rotation by 90 degrees
    part_transforms.NO_POINT_TRANSFORM,
    [0.9, 0.2, 3.3, -0.1, 1.1, -2.7, 0, 0],
    [1, 0.5, -2, 0, 1, 4, 0, 0],       # shear
    [-1, 0, 15, 0, 1, 0, 0, 0],        # mirror
    [1.5, 0, -4, 0, 1.5, -6, 0, 0],
    [1, 0, 2.5, 0, 1, -2.5, 0, 0],     # exact halves at full resolution
], np.float32)


def _inputs(seed=0, channels=3):
  rng = np.random.default_rng(seed)
  transforms = np.stack([CRAFTED, CRAFTED + rng.normal(0, 0.3, CRAFTED.shape).astype(np.float32) *
                         (np.arange(8) < 6)])
  transforms[1, 4] = part_transforms.NO_POINT_TRANSFORM
  masks = (rng.random((2, 10, HEIGHT, WIDTH)) < 0.6).astype(np.uint8)
  features = {factor: rng.normal(size=(2, HEIGHT // factor, WIDTH // factor, channels)).astype(np.float32)
              for factor in (1, 2, 4, 8)}
  return features, transforms, masks


def test_round_half_away_from_zero():
  values = jnp.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49999997, -0.49999997, 3.7, -3.7], jnp.float32)
  np.testing.assert_array_equal(deformable._round_half_away_from_zero(values),
                                [-3, -2, -1, 1, 2, 3, 0, 0, 4, -4])


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_deformable_skip_matches_numpy_on_a_non_square_map(factor):
  features, transforms, masks = _inputs()
  ours = skip(features[factor], transforms, masks)
  expected = ref.affine_transform_layer(features[factor].astype(np.float64), transforms, masks)
  assert ours.shape == features[factor].shape
  np.testing.assert_array_equal(np.asarray(ours), expected.astype(np.float32))
  # The max includes masked-out zeros: negative inputs mostly become 0.
  assert np.mean(np.asarray(ours) < 0) < 0.05 < np.mean(features[factor] < 0)


def test_half_to_even_rounding_or_centred_mask_resize_would_be_caught():
  features, transforms, masks = _inputs(seed=1)
  expected = ref.affine_transform_layer(features[2].astype(np.float64), transforms, masks)
  # Mask resized with half-pixel centres (index 2i + 1) instead of TF 1.x's floor(i * H / h) = 2i.
  shifted = np.roll(masks, -1, axis=(2, 3))
  assert not np.array_equal(np.asarray(skip(features[2], transforms, shifted)), expected)
  # A translation of exactly -0.5 px at this level reads column -1 (zero) with std::round, column 0 with jnp.round.
  shift = np.tile(np.array([1, 0, -1, 0, 1, 0, 0, 0], np.float32), (2, 10, 1))
  ours = skip(features[2], shift, np.ones_like(masks))
  np.testing.assert_array_equal(np.asarray(ours)[:, :, 0], 0)


def test_deformable_skip_with_real_part_transforms():
  rng = np.random.default_rng(3)
  target = np.array([[6, 8], [8, 8], [9, 5], [13, 4], [17, 3], [9, 11], [13, 12], [17, 13], [17, 6], [22, 6],
                     [28, 6], [17, 10], [22, 10], [28, 10], [5, 7], [5, 9], [6, 6], [6, 10]])
  source = np.clip(target + rng.integers(-2, 3, target.shape), 0, [HEIGHT - 1, WIDTH - 1])
  transforms = part_transforms.affine_transforms(source, target)[None]
  masks = part_transforms.part_masks(target, (HEIGHT, WIDTH))[None]
  for factor in (1, 4):
    features = rng.normal(size=(1, HEIGHT // factor, WIDTH // factor, 5)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(skip(features, transforms, masks)),
                                  ref.affine_transform_layer(features.astype(np.float64), transforms, masks))


def test_gradient_flows_to_the_read_pixels():
  rng = np.random.default_rng(4)
  features = rng.normal(size=(1, 8, 4, 2)).astype(np.float32)
  transforms = np.tile(part_transforms.NO_POINT_TRANSFORM, (1, 10, 1))
  transforms[0, 0] = [1, 0, 0, 0, 1, 0, 0, 0]  # the body: identity, all-ones mask
  masks = np.zeros((1, 10, 16, 8), np.float32)
  masks[0, 0] = 1
  # = max(features, 0) (the nine other parts contribute zeros), so the gradient is the indicator of > 0.
  grad = jax.jit(jax.grad(lambda f: jnp.sum(deformable.deformable_skip(f, transforms, masks))))(features)
  np.testing.assert_array_equal(np.asarray(grad), (features > 0).astype(np.float32))


def test_bad_levels_raise():
  features, transforms, masks = _inputs()
  with pytest.raises(ValueError, match="equal-factor"):
    deformable.deformable_skip(jnp.zeros((2, 16, 16, 3)), transforms, masks)  # factors 2 and 1
  with pytest.raises(ValueError, match="equal-factor"):
    deformable.deformable_skip(jnp.zeros((2, 12, 6, 3)), transforms, masks)  # not an integer factor
  with pytest.raises(ValueError, match="transforms"):
    deformable.warp_nearest(features[1], transforms[:, :, :6])


def test_keras_instance_norm_matches_numpy_and_uses_the_population_std():
  rng = np.random.default_rng(5)
  x = rng.normal(2.0, 3.0, size=(3, 4, 3, 2)).astype(np.float32)
  norm = deformable.KerasInstanceNorm()
  variables = norm.init(jax.random.key(0), x)
  assert jax.tree.map(jnp.shape, variables["params"]) == {"gamma": (1,), "beta": (1,)}
  params = {"gamma": jnp.array([1.7]), "beta": jnp.array([-0.4])}
  ours = np.asarray(norm.apply({"params": params}, x))
  expected = ref.instance_norm(x.astype(np.float64), 1.7, -0.4)
  np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
  # The unbiased std (n - 1) would differ by a factor sqrt(24 / 23) here, far beyond the tolerance.
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  unbiased = (x - mean) / (x.std(axis=(1, 2, 3), ddof=1, keepdims=True) + 1e-3) * 1.7 - 0.4
  assert np.max(np.abs(unbiased - ours)) > 1e-2
  # Per sample over all of H, W, C: each sample's output has mean beta and std ~ gamma.
  np.testing.assert_allclose(ours.mean(axis=(1, 2, 3)), -0.4, atol=1e-5)
