"""ADGAN's CX-GS / CX-GT on top of jaxpose.losses.contextual_loss."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import losses
from jaxpose.metrics import contextual
from jaxpose.models import vgg as vgg_lib


def _features(seed, shape=(2, 6, 5, 16)):
  return jnp.asarray(np.random.default_rng(seed).normal(0, 1, shape).astype(np.float32))


def test_identical_features_give_the_minimum():
  f = _features(0)
  value = float(contextual.contextual_score({"a": f}, {"a": f}, layers=("a",)))
  # max_i CX_ij <= 1, so -log(mean_j max_i CX_ij) >= 0; identical sets reach it.
  assert 0.0 <= value < 1e-3
  other = float(contextual.contextual_score({"a": f}, {"a": _features(1)}, layers=("a",)))
  assert other > 0.5


def test_spatial_shuffle_is_invisible_but_noise_and_channel_shuffle_are_not():
  f = _features(2)
  rng = np.random.default_rng(3)
  flat = np.asarray(f).reshape(2, 30, 16)
  shuffled = jnp.asarray(flat[:, rng.permutation(30)].reshape(f.shape))
  score = lambda g: float(contextual.contextual_score({"a": f}, {"a": g}, layers=("a",)))
  # CX compares feature *sets*: where a feature sits does not matter.
  assert score(shuffled) == pytest.approx(score(f), abs=1e-4)
  channels = jnp.asarray(np.asarray(f)[..., rng.permutation(16)])
  assert score(channels) > 0.3
  # Small noise keeps every feature its own nearest neighbour by far (CX uses
  # distances relative to the nearest), so the score rises only once it doesn't.
  noisy = [score(f + s * _features(4)) for s in (0.5, 1.0, 3.0)]
  assert score(f) < noisy[0] < noisy[1] < noisy[2]


def test_layers_are_averaged():
  t = {"relu3_2": _features(5), "relu4_2": _features(6, (2, 3, 3, 32))}
  g = {"relu3_2": _features(7), "relu4_2": _features(8, (2, 3, 3, 32))}
  per_layer = [float(losses.contextual_loss(t[l], g[l], sigma=0.1, b=1.0)) for l in contextual.CX_LAYERS]
  assert abs(per_layer[0] - per_layer[1]) > 1e-3
  value = float(contextual.contextual_score(t, g))
  assert value == pytest.approx(np.mean(per_layer), rel=1e-6)
  # chunking the similarity matrix changes nothing.
  assert float(contextual.contextual_score(t, g, chunk_size=7)) == pytest.approx(value, rel=1e-5)


@pytest.fixture(scope="module")
def small_vgg():
  widths = (4, 8, 8, 8)
  vgg = vgg_lib.VGG(arch="vgg19", widths=widths)
  # Random weights drawn in numpy: `vgg.init` would compile every op separately.
  rng = np.random.default_rng(0)
  frozen = {name: {"kernel": rng.normal(0, np.sqrt(2 / (9 * c_in)), (3, 3, c_in, c_out)).astype(np.float32),
                   "bias": rng.normal(0, 0.05, (c_out,)).astype(np.float32)}
            for name, (c_in, c_out) in vgg_lib.conv_shapes("vgg19", widths).items()}
  return vgg, {"frozen": frozen}


def _images(seed, n=3):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:32, :24]
  base = 127 + 100 * np.sin(yy[None, ..., None] / (3.0 + rng.uniform(0, 3, (n, 1, 1, 3))) + xx[None, ..., None] / 4.0)
  return np.clip(base + rng.normal(0, 10, (n, 32, 24, 3)), 0, 255).astype(np.uint8)


def test_scores_of_images_use_unit_range_inputs(small_vgg):
  vgg, variables = small_vgg
  generated, source, target = _images(0), _images(1), _images(2)
  gs, gt = contextual.contextual_scores(vgg, variables, generated, source, target)
  feats = lambda im: vgg.apply(variables, jnp.asarray(im, jnp.float32) / 255.0, contextual.CX_LAYERS)
  expected_gs = contextual.contextual_score(feats(source), feats(generated))
  expected_gt = contextual.contextual_score(feats(target), feats(generated))
  assert float(gs) == pytest.approx(float(expected_gs), rel=1e-5)
  assert float(gt) == pytest.approx(float(expected_gt), rel=1e-5)
  # Generated == source: CX-GS near its minimum 0 (not exactly: ReLU features
  # have near-duplicates, which share the best match), CX-GT not.
  gs_same, gt_same = contextual.contextual_scores(vgg, variables, source, source, target)
  assert float(gs_same) < 0.01 * float(gt_same)
  assert float(gs_same) < 0.01 * float(gs)


def test_accumulator_averages_over_batches_weighted_by_size(small_vgg):
  vgg, variables = small_vgg
  generated, source, target = _images(3, 4), _images(4, 4), _images(5, 4)
  acc = contextual.ContextualAccumulator(vgg, variables)
  first = acc.update(generated[:3], source[:3], target[:3])
  second = acc.update(generated[3:], source[3:], target[3:])
  result = acc.result()
  assert result["cx_gs"] == pytest.approx((3 * first[0] + second[0]) / 4, rel=1e-6)
  assert result["cx_gt"] == pytest.approx((3 * first[1] + second[1]) / 4, rel=1e-6)
  # Averaged, not summed like the official script: the value stays on the per-batch scale.
  assert min(first[0], second[0]) <= result["cx_gs"] <= max(first[0], second[0])
  assert acc.count == 4
  assert np.isnan(contextual.ContextualAccumulator(vgg, variables).result()["cx_gs"])
