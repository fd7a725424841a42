"""SSIM variants, PSNR, L1 and the Market body mask against scikit-image."""

import numpy as np
import pytest
from skimage import draw, morphology
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxpose.data import keypoints as keypoints_lib
from jaxpose.metrics import masks, ssim


# skimage works in float64, we in float32; measured max difference ~1e-7 at 256x176.
TOL = 3e-7


def _pairs(seed=0, shape=(3, 64, 48, 3)):
  """Random targets and noisy 'generated' images, plus one structured (smooth + edges) pair."""
  rng = np.random.default_rng(seed)
  target = rng.integers(0, 256, shape).astype(np.uint8)
  generated = np.clip(target + rng.normal(0, 30, shape), 0, 255).astype(np.uint8)
  yy, xx = np.mgrid[:shape[1], :shape[2]]
  smooth = (127 + 100 * np.sin(yy / 5.0)[..., None] * np.cos(xx / 7.0)[..., None] * np.ones(3)).astype(np.uint8)
  target[0] = smooth
  generated[0] = np.where(xx[..., None] > shape[2] // 2, smooth // 2 + 60, smooth)
  # A narrow-range generated image: data_range well below 255.
  generated[1] = (generated[1] // 4 + 100).astype(np.uint8)
  return generated, target


def _skimage_patn(g, t, sigma=1.5):
  return structural_similarity(t, g, gaussian_weights=True, sigma=sigma, use_sample_covariance=False,
                               channel_axis=2, data_range=float(g.max()) - float(g.min()))


def _add_bounding(image, bound=40):
  """The official addBounding, written out with numpy."""
  h, w, c = image.shape
  out = np.full((h, w + 2 * bound, c), 255, np.uint8)
  out[:, bound:bound + w] = image
  return out


@pytest.mark.parametrize("sigma", [1.5, 1.2])
def test_ssim_patn_matches_skimage(sigma):
  generated, target = _pairs()
  ours = np.asarray(ssim.ssim_patn(generated, target, sigma=sigma))
  ref = np.array([_skimage_patn(g, t, sigma) for g, t in zip(generated, target)])
  assert ours.shape == (3,)
  np.testing.assert_allclose(ours, ref, atol=TOL, rtol=0)
  # The 3 pairs really differ (random, structured, narrow range): the test is not vacuous.
  assert np.ptp(ref) > 0.05


def test_ssim_256_is_unpadded_patn_and_sigma_matters():
  generated, target = _pairs(1)
  np.testing.assert_array_equal(np.asarray(ssim.ssim_256(generated, target)),
                                np.asarray(ssim.ssim_patn(generated, target)))
  a = np.asarray(ssim.ssim_256(generated, target, sigma=1.2))
  b = np.asarray(ssim.ssim_256(generated, target, sigma=1.5))
  assert np.all(np.abs(a - b) > 1e-4)


def test_ssim_pad_white_matches_skimage_on_padded_images():
  generated, target = _pairs(2, shape=(2, 64, 40, 3))
  ours = np.asarray(ssim.ssim_patn(generated, target, pad_white=True))
  ref = np.array([_skimage_patn(_add_bounding(g), _add_bounding(t)) for g, t in zip(generated, target)])
  np.testing.assert_allclose(ours, ref, atol=TOL, rtol=0)
  # Padding inflates SSIM (the white bands match perfectly).
  assert np.all(ours > np.asarray(ssim.ssim_patn(generated, target)) + 0.05)


def test_add_bounding_shape_and_values():
  images = np.zeros((1, 256, 176, 3), np.uint8)
  padded = np.asarray(ssim.add_bounding(images))
  assert padded.shape == (1, 256, 256, 3)
  assert padded[:, :, :40].min() == 255 and padded[:, :, -40:].min() == 255
  assert padded[:, :, 40:216].max() == 0


def test_ssim_gfla_matches_skimage():
  generated, target = _pairs(3, shape=(2, 72, 60, 3))
  ours = np.asarray(ssim.ssim_gfla(generated, target))
  ref = np.array([structural_similarity(t / 255.0, g / 255.0, data_range=1, win_size=51, channel_axis=2)
                  for g, t in zip(generated, target)])
  # The 51x51 window uses the one-pass E[x^2] - E[x]^2 moments (a 2601-tap
  # two-pass loop would be too slow), so float32 gives ~1e-6 here.
  np.testing.assert_allclose(ours, ref, atol=1.5e-6, rtol=0)
  assert np.ptp(ref) > 0.01


def test_identical_images():
  _, target = _pairs(4)
  np.testing.assert_allclose(np.asarray(ssim.ssim_patn(target, target)), 1.0, atol=1e-6)
  big = np.tile(target, (1, 1, 2, 1))  # 64 x 96: large enough for the 51 window
  np.testing.assert_allclose(np.asarray(ssim.ssim_gfla(big, big)), 1.0, atol=1e-6)
  assert np.all(np.isinf(np.asarray(ssim.psnr(target, target))))
  np.testing.assert_array_equal(np.asarray(ssim.l1(target, target)), 0.0)


def test_psnr_and_l1_match_references():
  generated, target = _pairs(5)
  ours = np.asarray(ssim.psnr(generated, target))
  ref = np.array([peak_signal_noise_ratio(t, g, data_range=255) for g, t in zip(generated, target)])
  np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)
  l1_ref = np.abs(generated / 255.0 - target / 255.0).mean(axis=(1, 2, 3))
  np.testing.assert_allclose(np.asarray(ssim.l1(generated, target)), l1_ref, atol=1e-6)


def test_shape_errors():
  with pytest.raises(ValueError):
    ssim.ssim_patn(np.zeros((1, 32, 32, 3)), np.zeros((1, 32, 30, 3)))
  with pytest.raises(ValueError):
    ssim.ssim_patn(np.zeros((32, 32, 3)), np.zeros((32, 32, 3)))
  with pytest.raises(ValueError):
    ssim.ssim_gfla(np.zeros((1, 40, 40, 3)), np.zeros((1, 40, 40, 3)))


# ---------------------------------------------------------------- masks


def test_polygon_matches_skimage_on_generic_vertices():
  rng = np.random.default_rng(0)
  for _ in range(300):
    v = rng.uniform(-5, 45, (4, 2))
    ref = np.zeros((40, 30), bool)
    rr, cc = draw.polygon(v[:, 0], v[:, 1], shape=(40, 30))
    ref[rr, cc] = True
    np.testing.assert_array_equal(masks.polygon_mask(v[:, 0], v[:, 1], 40, 30), ref)


def test_polygon_boundary_is_half_open_as_before_skimage_018():
  # Pixel centres on the right/lower edges are outside (skimage >= 0.18 would include them).
  square = masks.polygon_mask([0, 0, 4, 4], [0, 4, 4, 0], 6, 6)
  expected = np.zeros((6, 6), bool)
  expected[:4, :4] = True
  np.testing.assert_array_equal(square, expected)


def test_disc_matches_skimage():
  for y, x in [(0, 0), (10, 7), (39, 29), (-2, 15), (20, 31)]:
    ref = np.zeros((40, 30), bool)
    rr, cc = draw.disk((y, x), 4, shape=(40, 30))
    ref[rr, cc] = True
    np.testing.assert_array_equal(masks.disc_mask(y, x, 4, 40, 30), ref)


def _random_pose(rng, height, width):
  """Integer keypoints with no axis-aligned or integer-length limb (generic quad corners)."""
  while True:
    kp = np.stack([rng.integers(4, height - 4, 18), rng.integers(4, width - 4, 18)], axis=1)
    kp[rng.random(18) < 0.15] = -1
    ok = True
    for f, t in masks.MASK_LIMBS:
      if kp[f, 0] < 0 or kp[t, 0] < 0:
        continue
      d = kp[f] - kp[t]
      length = np.hypot(*d)
      if d[0] == 0 or d[1] == 0 or length == int(length):
        ok = False
    if ok:
      return kp


def _skimage_body_mask(kp, shape):
  """produce_ma_mask rebuilt from skimage's own drawing and morphology."""
  mask = np.zeros(shape, bool)
  for f, t in masks.MASK_LIMBS:
    if kp[f, 0] < 0 or kp[t, 0] < 0:
      continue
    d = (kp[f] - kp[t]).astype(float)
    n = 4 * np.array([-d[1], d[0]]) / np.linalg.norm(d)
    quad = np.array([kp[f] + n, kp[f] - n, kp[t] - n, kp[t] + n])
    rr, cc = draw.polygon(quad[:, 0], quad[:, 1], shape=shape)
    mask[rr, cc] = True
  for y, x in kp[kp[:, 0] >= 0]:
    rr, cc = draw.disk((y, x), 4, shape=shape)
    mask[rr, cc] = True
  return morphology.erosion(morphology.dilation(mask, np.ones((5, 5), bool)), np.ones((5, 5), bool))


def test_body_mask_matches_skimage_composition():
  rng = np.random.default_rng(1)
  for _ in range(5):
    kp = _random_pose(rng, 128, 64)
    np.testing.assert_array_equal(masks.body_mask(kp, 128, 64), _skimage_body_mask(kp, (128, 64)))


def test_body_mask_limbs_and_missing_joints():
  kp = np.full((18, 2), -1)
  assert not masks.body_mask(kp, 128, 64).any()
  # One limb, neck (1) to right hip (8): a filled band of half-width 4 plus end discs.
  kp[1] = (30, 32)
  kp[8] = (90, 32)
  mask = masks.body_mask(kp, 128, 64)
  assert mask[60, 28:36].all() and not mask[60, 38] and not mask[60, 25]
  assert mask[30:91, 32].all() and not mask[20, 32] and not mask[100, 32]
  # The 23-limb list has torso/head segments that the stick-figure list lacks.
  assert len(masks.MASK_LIMBS) == 23
  assert set(keypoints_lib.LIMB_INDICES) <= set(masks.MASK_LIMBS)
  assert {(1, 16), (1, 17), (8, 11), (11, 5), (8, 2), (16, 17)} <= set(masks.MASK_LIMBS)


def test_mask_ssim_matches_skimage_on_masked_images():
  rng = np.random.default_rng(3)
  generated, target = _pairs(6, shape=(2, 128, 64, 3))
  kps = np.stack([_random_pose(rng, 128, 64) for _ in range(2)])
  ours = np.asarray(ssim.mask_ssim(generated, target, kps))
  ref = []
  for g, t, kp in zip(generated, target, kps):
    m = _skimage_body_mask(kp, (128, 64))[..., None]
    ref.append(_skimage_patn(g * m, t * m))
  np.testing.assert_allclose(ours, ref, atol=TOL, rtol=0)
  assert np.all(np.abs(ours - np.asarray(ssim.ssim_patn(generated, target))) > 0.01)
