"""Each loss against an independent numpy reference of the official computation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import losses
import numpy_reference_spt as ref


def _cx_reference(target_nchw, generated_nchw, sigma, b):
  """ADGAN's CXLoss, literally, in float64 numpy on NCHW arrays (per sample loops)."""
  t = target_nchw.astype(np.float64)
  g = generated_nchw.astype(np.float64)
  mean_t = t.mean(axis=(0, 2, 3), keepdims=True)
  t, g = t - mean_t, g - mean_t
  t = t / np.sqrt((t**2).sum(axis=1, keepdims=True))
  g = g / np.sqrt((g**2).sum(axis=1, keepdims=True))
  per_sample = []
  for n in range(t.shape[0]):
    patches = t[n].reshape(t.shape[1], -1).T  # (J, C): every target position is a 1x1 "patch"
    dist = np.einsum("jc,chw->jhw", patches, g[n])  # conv of I with the T patches: (J, H, W)
    raw = (1 - dist) / 2
    rel = raw / (raw.min(axis=0, keepdims=True) + 1e-5)
    w = np.exp((b - rel) / sigma)
    cx = w / w.sum(axis=0, keepdims=True)
    cx_max = cx.max(axis=2).max(axis=1)  # max over the generated positions
    per_sample.append(-np.log(cx_max.mean()))
  return float(np.mean(per_sample))


@pytest.mark.parametrize("sigma", [0.5, 0.1])
def test_contextual_loss_matches_reference(sigma):
  rng = np.random.default_rng(0)
  target = np.maximum(rng.normal(size=(3, 6, 5, 16)), 0).astype(np.float32)  # post-ReLU-like
  generated = np.maximum(rng.normal(size=(3, 6, 5, 16)), 0).astype(np.float32)
  expected = _cx_reference(target.transpose(0, 3, 1, 2), generated.transpose(0, 3, 1, 2), sigma, 1.0)
  got = losses.contextual_loss(jnp.asarray(target), jnp.asarray(generated), sigma=sigma, b=1.0)
  np.testing.assert_allclose(float(got), expected, rtol=2e-5)


def test_contextual_loss_centres_on_the_batch_mean():
  # The target mean is taken over the batch: sample 0's loss changes when sample 1 changes.
  rng = np.random.default_rng(1)
  target = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)
  generated = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)
  other = target.copy()
  other[1] += 3.0
  first = losses.contextual_loss(target, generated)
  second = losses.contextual_loss(other, generated)
  assert abs(float(first) - float(second)) > 1e-4
  expected = _cx_reference(other.transpose(0, 3, 1, 2), generated.transpose(0, 3, 1, 2), 0.5, 1.0)
  np.testing.assert_allclose(float(second), expected, rtol=2e-5)


def test_contextual_loss_of_identical_features_is_its_minimum():
  rng = np.random.default_rng(2)
  features = rng.normal(size=(2, 5, 4, 8)).astype(np.float32)
  same = float(losses.contextual_loss(features, features))
  shuffled = float(losses.contextual_loss(features, features[:, ::-1]))
  noisy = float(losses.contextual_loss(features, features + rng.normal(size=features.shape).astype(np.float32)))
  # Identical features: each target position finds itself, so CX is as large as it gets.
  assert same < noisy
  assert same <= shuffled + 1e-6  # a spatial permutation does not change contextual similarity
  assert abs(same - shuffled) < 1e-5


@pytest.mark.parametrize("chunk_size", [1, 7, 20, 64])
def test_contextual_loss_chunking_is_exact_in_value_and_gradient(chunk_size):
  rng = np.random.default_rng(3)
  target = rng.normal(size=(2, 5, 4, 8)).astype(np.float32)
  generated = rng.normal(size=(2, 5, 4, 8)).astype(np.float32)
  full_value, full_grad = jax.value_and_grad(lambda g: losses.contextual_loss(target, g))(generated)
  chunk_value, chunk_grad = jax.value_and_grad(
      lambda g: losses.contextual_loss(target, g, chunk_size=chunk_size))(generated)
  np.testing.assert_allclose(float(chunk_value), float(full_value), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(chunk_grad), np.asarray(full_grad), rtol=1e-4, atol=1e-7)


def test_contextual_loss_rejects_mismatched_features():
  with pytest.raises(ValueError, match="NHWC"):
    losses.contextual_loss(jnp.zeros((2, 4, 4, 8)), jnp.zeros((2, 4, 4, 16)))


def test_l1_and_lsgan_match_numpy():
  rng = np.random.default_rng(4)
  a = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  b = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
  np.testing.assert_allclose(float(losses.l1_loss(a, b)), np.abs(a - b).mean(), rtol=1e-6)
  np.testing.assert_allclose(float(losses.lsgan_loss(a, True)), ((a - 1) ** 2).mean(), rtol=1e-6)
  np.testing.assert_allclose(float(losses.lsgan_loss(a, False)), (a**2).mean(), rtol=1e-6)


def test_region_l1_weights_each_region_of_each_image_alike():
  rng = np.random.default_rng(5)
  a = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
  b = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
  labels = rng.integers(0, 3, size=(2, 6, 5))
  labels[1][labels[1] == 2] = 0  # region 2 is empty in image 1: it must not count there
  parsing = np.eye(4, dtype=np.float32)[labels]  # region 3 is empty everywhere
  # Loop reference: one mean absolute error per non-empty (image, region), then their mean.
  errors = [np.abs(a[i] - b[i])[labels[i] == k].mean() for i in range(2) for k in range(4) if (labels[i] == k).any()]
  assert len(errors) == 5
  np.testing.assert_allclose(float(losses.region_l1_loss(a, b, parsing)), np.mean(errors), rtol=1e-5)
  # A one-pixel region weighs as much as the rest of the image put together.
  one = np.zeros((1, 6, 5, 2), np.float32)
  one[..., 0] = 1
  one[0, 0, 0] = (0, 1)
  wrong = np.zeros((1, 6, 5, 3), np.float32)
  wrong[0, 0, 0] = 1.0
  np.testing.assert_allclose(float(losses.region_l1_loss(wrong, np.zeros_like(wrong), one)), 0.5, rtol=1e-6)
  np.testing.assert_allclose(float(losses.l1_loss(wrong, np.zeros_like(wrong))), 1 / 30, rtol=1e-6)
  # With no region at all the loss is 0, not NaN.
  assert float(losses.region_l1_loss(a, b, np.zeros((2, 6, 5, 4), np.float32))) == 0.0


def test_region_l1_weights_count_each_region_kind_that_many_times():
  rng = np.random.default_rng(6)
  a = rng.normal(size=(3, 6, 5, 3)).astype(np.float32)
  b = rng.normal(size=(3, 6, 5, 3)).astype(np.float32)
  labels = rng.integers(0, 3, size=(3, 6, 5))
  labels[2][labels[2] == 1] = 0  # region 1 is empty in image 2: its weight must not count there
  parsing = np.eye(4, dtype=np.float32)[labels]
  weights = np.array([1.0, 4.0, 0.5, 7.0], np.float32)  # region 3 is empty everywhere
  # Loop reference: each non-empty (image, region)'s mean absolute error, weighted by its kind.
  terms = [(weights[k], np.abs(a[i] - b[i])[labels[i] == k].mean())
           for i in range(3) for k in range(4) if (labels[i] == k).any()]
  expected = sum(w * e for w, e in terms) / sum(w for w, _ in terms)
  np.testing.assert_allclose(float(losses.region_l1_loss(a, b, parsing, weights)), expected, rtol=1e-5)
  # All-equal weights are the unweighted loss, whatever their value.
  np.testing.assert_allclose(float(losses.region_l1_loss(a, b, parsing, np.full(4, 3.0))),
                             float(losses.region_l1_loss(a, b, parsing)), rtol=1e-6)
  with pytest.raises(ValueError, match=r"expected shape \(4,\)"):
    losses.region_l1_loss(a, b, parsing, np.ones(3))


def test_bce_gan_loss_matches_pytorch_bceloss_formula():
  logits = np.array([-200.0, -3.0, 0.0, 2.5, 150.0], np.float32)
  p = 1 / (1 + np.exp(-logits.astype(np.float64)))
  with np.errstate(divide="ignore"):
    real = -np.mean(np.maximum(np.log(p), -100))   # PyTorch clamps log at -100
    fake = -np.mean(np.maximum(np.log1p(-p), -100))
  np.testing.assert_allclose(float(losses.bce_gan_loss(logits, True)), real, rtol=1e-5)
  np.testing.assert_allclose(float(losses.bce_gan_loss(logits, False)), fake, rtol=1e-5)


def test_imagenet_normalize():
  x = np.array([[-1.0, 0.0, 1.0]], np.float32)
  expected = ((x + 1) / 2 - np.array(losses.IMAGENET_MEAN)) / np.array(losses.IMAGENET_STD)
  np.testing.assert_allclose(np.asarray(losses.imagenet_normalize(x)), expected, rtol=1e-6)


# ----------------------------------------------------------------------------
# Deformable GAN's losses (official conditional_gan.py; numpy reference in numpy_reference_defgan.py)


def test_nearest_neighbour_loss_matches_numpy():
  import numpy_reference_defgan as ref  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(6)
  generated = rng.normal(size=(2, 7, 5, 3)).astype(np.float32)
  reference = rng.normal(size=(2, 7, 5, 3)).astype(np.float32)
  for area in (1, 3, 5):
    np.testing.assert_allclose(losses.nearest_neighbour_loss(generated, reference, area),
                               ref.nn_loss(generated.astype(np.float64), reference.astype(np.float64), area),
                               rtol=1e-5)
  # Area 1 is the per-pixel L1 summed over channels; a reference shifted by one pixel is (almost) free at area 3.
  np.testing.assert_allclose(losses.nearest_neighbour_loss(generated, reference, 1),
                             np.abs(generated - reference).sum(-1).mean(), rtol=1e-5)
  assert float(losses.nearest_neighbour_loss(generated, generated, 3)) == 0
  shifted = np.roll(generated, 1, axis=2)
  assert (float(losses.nearest_neighbour_loss(generated, shifted, 3))
          < 0.25 * float(losses.nearest_neighbour_loss(generated, shifted, 1)))
  with pytest.raises(ValueError, match="odd"):
    losses.nearest_neighbour_loss(generated, reference, 2)


def test_deformable_gan_bce_losses_on_logits():
  real = jnp.array([[2.0, -1.0], [0.5, 30.0]])
  fake = jnp.array([[-3.0, 0.0], [1.0, -40.0]])
  expected_d = -np.mean(np.log(jax.nn.sigmoid(real))) - np.mean(np.log(1 - jax.nn.sigmoid(fake)))
  np.testing.assert_allclose(losses.bce_discriminator_loss(real, fake), expected_d, rtol=1e-5)
  np.testing.assert_allclose(losses.bce_generator_loss(fake), -np.mean(np.log(jax.nn.sigmoid(fake))), rtol=1e-5)
  # Stable where the probability form overflows.
  assert np.isfinite(float(losses.bce_discriminator_loss(jnp.array([-200.0]), jnp.array([200.0]))))
  assert float(losses.bce_generator_loss(jnp.array([-200.0]))) == pytest.approx(200.0)


# ----------------------------------------------------------------------------
# SPT


def test_weighted_cross_entropy_matches_reference():
  rng = np.random.default_rng(3)
  logits = rng.normal(0, 2, (2, 5, 4, 10)).astype(np.float32)
  labels = rng.integers(0, 10, (2, 5, 4))
  targets = np.eye(10, dtype=np.float32)[labels]
  weights = 1 + (rng.uniform(size=(2, 5, 4, 1)) > 0.5).astype(np.float32)
  z = logits.astype(np.float64)
  log_p = z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
  expected = np.mean(-np.take_along_axis(log_p, labels[..., None], -1)[..., 0] * weights[..., 0])
  got = losses.weighted_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights))
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)


def test_region_gram_matrices_match_the_release():
  rng = np.random.default_rng(4)
  features = rng.normal(size=(2, 6, 5, 7)).astype(np.float32)
  masks = rng.uniform(size=(2, 6, 5, 8)).astype(np.float32)
  expected = ref.patch_gram_matrix(features.transpose(0, 3, 1, 2).astype(np.float64),
                                   masks.transpose(0, 3, 1, 2).astype(np.float64))
  np.testing.assert_allclose(np.asarray(losses.region_gram_matrices(jnp.asarray(features), jnp.asarray(masks))),
                             expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(losses.gram_matrix(jnp.asarray(features))),
                             ref.gram(features.transpose(0, 3, 1, 2).astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_semantic_style_loss_matches_the_release():
  """The release's backward_G style terms, with a region absent from one image (visibility 0)."""
  rng = np.random.default_rng(5)
  feats = [rng.normal(size=(2, 4, 4, 3)).astype(np.float32) for _ in range(3)]
  masks_a = (rng.uniform(size=(2, 4, 4, 8)) > 0.5).astype(np.float32)
  masks_b = (rng.uniform(size=(2, 4, 4, 8)) > 0.5).astype(np.float32)
  masks_b[0, ..., 2] = 0  # region 2 invisible in B for sample 0
  nchw = lambda a: a.transpose(0, 3, 1, 2).astype(np.float64)
  v = (nchw(masks_a).max(axis=(2, 3)) * nchw(masks_b).max(axis=(2, 3)))[:, :, None, None]
  fake_b, real_a, fake_a = (ref.patch_gram_matrix(nchw(f), nchw(m))
                            for f, m in zip(feats, (masks_b, masks_a, masks_a)))
  expected = np.mean((v * fake_b - v * real_a) ** 2) + np.mean((v * fake_a - v * fake_b) ** 2)
  got = losses.semantic_style_loss(*(jnp.asarray(f) for f in feats), jnp.asarray(masks_a), jnp.asarray(masks_b))
  np.testing.assert_allclose(float(got), expected, rtol=1e-5)
  assert v[0, 2, 0, 0] == 0


def test_spt_vgg_input_is_standardized_without_rescaling():
  x = jnp.array([[[[-1.0, 0.0, 1.0]]]])
  expected = (np.array([-1.0, 0.0, 1.0]) - np.array(losses.IMAGENET_MEAN)) / np.array(losses.IMAGENET_STD)
  np.testing.assert_allclose(np.asarray(losses.imagenet_standardize(x))[0, 0, 0], expected, rtol=1e-6)
  np.testing.assert_allclose(float(losses.mse_loss(jnp.ones(3), jnp.zeros(3))), 1.0)
