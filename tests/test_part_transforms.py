"""Deformable GAN's part transforms and masks (jaxpose.data.part_transforms).

Hand-computed cases (translation, rotation, missing and mirrored limbs,
missing heads, exact mask rectangles) and random poses against scikit-image
itself (tests/numpy_reference_defgan.py: `estimate_transform('affine')`,
`grid_points_in_poly`, the official control flow).
"""

import time

import numpy as np
import pytest

from jaxpose.data import keypoints as keypoints_lib
from jaxpose.data import part_transforms as pt
import numpy_reference_defgan as ref

K = keypoints_lib.KEYPOINT_INDEX
PART = {name: i for i, name in enumerate(pt.PART_NAMES)}

# A standing person in a 128x64 frame, (y, x); torso 20 px on each side, so the torso size is exactly 20.
STANDING = {
    "nose": (25, 30), "neck": (35, 30), "right_shoulder": (40, 20), "right_elbow": (55, 12),
    "right_wrist": (70, 10), "left_shoulder": (40, 40), "left_elbow": (55, 48), "left_wrist": (70, 50),
    "right_hip": (60, 20), "right_knee": (80, 20), "right_ankle": (100, 20), "left_hip": (60, 40),
    "left_knee": (80, 40), "left_ankle": (100, 40), "right_eye": (22, 28), "left_eye": (22, 32),
    "right_ear": (24, 25), "left_ear": (24, 35),
}


def pose(overrides=None, missing=()):
  joints = dict(STANDING, **(overrides or {}))
  kp = np.array([joints[name] for name in keypoints_lib.KEYPOINT_NAMES], np.int64)
  for name in missing:
    kp[K[name]] = -1
  return kp


def affine_row(a0, a1, a2, b0, b1, b2):
  return np.array([a0, a1, a2, b0, b1, b2, 0, 0], np.float32)


def random_pose(rng, height, width, p_missing=0.25):
  kp = np.stack([rng.integers(0, height, 18), rng.integers(0, width, 18)], axis=-1)
  missing = rng.random(18) < p_missing
  missing[[K[j] for j in keypoints_lib.TORSO_JOINTS]] = False
  kp[missing] = -1
  return kp


# ----------------------------------------------------------------------------
# Transforms: hand-computed cases


def test_pure_translation_gives_the_same_translation_for_every_part():
  target = pose()
  source = target + np.array([7, -3])  # (dy, dx): source = target + (7, -3) in (y, x)
  transforms = pt.affine_transforms(source, target)
  assert transforms.shape == (10, 8) and transforms.dtype == np.float32
  # Target (x, y) -> source (x - 3, y + 7).
  np.testing.assert_allclose(transforms, np.tile(affine_row(1, 0, -3, 0, 1, 7), (10, 1)), atol=2e-5)


def test_rotation_by_90_degrees_is_recovered_by_every_part():
  # source (x, y) = (-y_t + 100, x_t + 10): a rotation, so torso sizes and rectangles agree exactly.
  target = pose()
  y, x = target[:, 0], target[:, 1]
  source = np.stack([x + 10, -y + 100], axis=-1)  # (y, x)
  transforms = pt.affine_transforms(source, target)
  np.testing.assert_allclose(transforms, np.tile(affine_row(0, -1, 100, 1, 0, 10), (10, 1)), atol=1e-4)


def test_missing_target_limb_is_no_point_and_its_mask_is_empty():
  target = pose(missing=("right_knee",))
  transforms = pt.affine_transforms(pose(), target)
  for part in ("right_upper_leg", "right_lower_leg"):
    np.testing.assert_array_equal(transforms[PART[part]], pt.NO_POINT_TRANSFORM)
  np.testing.assert_allclose(transforms[PART["left_upper_leg"]], affine_row(1, 0, 0, 0, 1, 0), atol=1e-5)
  masks = pt.part_masks(target, (128, 64))
  assert masks[PART["right_upper_leg"]].sum() == 0 and masks[PART["right_lower_leg"]].sum() == 0
  assert masks[PART["left_upper_leg"]].sum() > 0


def test_limb_missing_in_the_source_borrows_the_mirrored_source_limb():
  # The source is the target with left and right swapped, moved by (dy, dx) = (4, 6), and without its
  # right elbow: the target's right arm parts must map onto the source's LEFT arm, i.e. translate.
  target = pose()
  mirrored_names = [n.replace("right", "@").replace("left", "right").replace("@", "left")
                    for n in keypoints_lib.KEYPOINT_NAMES]
  source = np.array([target[K[m]] for m in mirrored_names]) + np.array([4, 6])
  source[K["right_elbow"]] = -1
  transforms = pt.affine_transforms(source, target)
  for part in ("right_upper_arm", "right_forearm"):
    np.testing.assert_allclose(transforms[PART[part]], affine_row(1, 0, 6, 0, 1, 4), atol=1e-4)
  # With the left elbow gone too, nothing is left to borrow.
  source[K["left_elbow"]] = -1
  transforms = pt.affine_transforms(source, target)
  for part in ("right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm"):
    np.testing.assert_array_equal(transforms[PART[part]], pt.NO_POINT_TRANSFORM)


def test_missing_head():
  head = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")
  # No head joint in the target: no-point transform and an empty mask.
  target = pose(missing=head)
  np.testing.assert_array_equal(pt.affine_transforms(pose(), target)[PART["head"]], pt.NO_POINT_TRANSFORM)
  assert pt.part_masks(target, (128, 64))[PART["head"]].sum() == 0
  # Head joints in the target only: still no-point, but the mask (the target's own head) is there.
  transforms = pt.affine_transforms(pose(missing=head), pose())
  np.testing.assert_array_equal(transforms[PART["head"]], pt.NO_POINT_TRANSFORM)
  assert pt.part_masks(pose(), (128, 64))[PART["head"]].sum() > 0
  # One common head joint plus the shoulders: an exact 3-point fit (here the identity).
  partial = pose(missing=head[1:])
  np.testing.assert_allclose(pt.affine_transforms(partial, pose())[PART["head"]], affine_row(1, 0, 0, 0, 1, 0),
                             atol=1e-4)


def test_total_least_squares_not_ordinary_least_squares():
  # An over-determined body fit: the four torso points are not an affine image of each other.
  target = pose()
  source = pose({"right_shoulder": (38, 18), "left_shoulder": (41, 45), "right_hip": (63, 21)})
  ours = pt.affine_transforms(source, target)[PART["body"]]
  src = target[[K["right_hip"], K["left_hip"], K["left_shoulder"], K["right_shoulder"]], ::-1].astype(float)
  dst = source[[K["right_hip"], K["left_hip"], K["left_shoulder"], K["right_shoulder"]], ::-1].astype(float)
  expected = ref.skimage_affine(src, dst).reshape(-1)[:8]
  np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-4)
  design = np.concatenate([src, np.ones((4, 1))], axis=1)
  lstsq = np.linalg.lstsq(design, dst, rcond=None)[0].T  # (2, 3)
  assert np.max(np.abs(lstsq.reshape(-1) - np.delete(ours, [6, 7]))) > 1e-2


def test_estimate_affine_reports_degenerate_fits():
  line = np.array([[0.0, 0], [1, 1], [2, 2], [3, 3]])
  square = np.array([[0.0, 0], [1, 0], [1, 1], [0, 1]])
  matrices, ok = pt.estimate_affine(np.stack([line, square, square]), np.stack([square, square, line]))
  # Target points on a line: undetermined; source points on a line: singular (not invertible).
  np.testing.assert_array_equal(ok, [False, True, False])
  assert np.all(np.isnan(matrices[0])) and np.allclose(matrices[1], np.eye(3))


def test_bad_keypoints_raise():
  with pytest.raises(ValueError, match="torso"):
    pt.affine_transforms(pose(missing=("left_hip",)), pose())
  with pytest.raises(ValueError, match="torso"):
    pt.part_masks(pose(missing=("right_shoulder",)), (128, 64))
  with pytest.raises(ValueError, match=r"\(18, 2\)"):
    pt.affine_transforms(pose()[:17], pose())
  half = pose()
  half[K["nose"], 0] = -1
  with pytest.raises(ValueError, match="only one coordinate"):
    pt.affine_transforms(pose(), half)


# ----------------------------------------------------------------------------
# Masks: hand-computed cases


def test_masks_of_the_standing_pose():
  masks = pt.part_masks(pose(), (128, 64))
  assert masks.shape == (10, 128, 64) and masks.dtype == np.uint8
  np.testing.assert_array_equal(masks[PART["body"]], 1)
  # Head: mean of the five head joints (y 23.4 -> 23, x 30), half-side int(0.4 * 20) = 8.
  head = np.zeros((128, 64), np.uint8)
  head[15:31, 22:38] = 1
  np.testing.assert_array_equal(masks[PART["head"]], head)
  # Right upper leg: hip (60, 20) -> knee (80, 20), start 10% back (58), end 10% on (82.2), 4 px each side:
  # the boundary rows and columns (58; 16 and 24) are inside.
  upper = np.zeros((128, 64), np.uint8)
  upper[58:83, 16:25] = 1
  np.testing.assert_array_equal(masks[PART["right_upper_leg"]], upper)
  # Right lower leg: knee (80, 20) -> ankle (100, 20) with inc_to 0.5 (not the transforms' 0.3): rows 78..111.
  lower = np.zeros((128, 64), np.uint8)
  lower[78:112, 16:25] = 1
  np.testing.assert_array_equal(masks[PART["right_lower_leg"]], lower)


def test_head_mask_is_clipped_at_the_image_border():
  near_corner = pose({"nose": (2, 1), "right_eye": (1, 0), "left_eye": (1, 2), "right_ear": (3, 0),
                      "left_ear": (3, 3)})
  head = pt.part_masks(near_corner, (128, 64))[PART["head"]]
  # centre (y 2, x 1), half-side 8: rows [0, 10), columns [0, 9).
  expected = np.zeros((128, 64), np.uint8)
  expected[0:10, 0:9] = 1
  np.testing.assert_array_equal(head, expected)


def test_polygon_masks_boundary_and_degenerate_polygons_match_scikit_image():
  import skimage.measure  # pylint: disable=g-import-not-at-top
  polygons = [
      np.array([[2.0, 3], [2, 9], [7, 9], [7, 3]]),           # axis aligned on the grid: boundary inside
      np.array([[5.0, 5], [3, 3], [3, 3], [5, 5]]),           # the official zero-length-limb diagonal
      np.array([[1.0, 1], [4, 5], [8, 2], [5, -2]]),          # integer-vertex tilted rectangle (exact edge hits)
      np.array([[-3.5, -2.0], [-3.5, 4.0], [2.5, 4.0], [2.5, -2.0]]),  # partly outside the grid
  ]
  ours = pt.polygon_masks(np.stack(polygons), (12, 10))
  for mask, polygon in zip(ours, polygons):
    np.testing.assert_array_equal(mask, skimage.measure.grid_points_in_poly((12, 10), polygon))
  # The boundary counts; of the zero-area diagonal only its two end vertices do (its middle is "on an edge"
  # crossed twice, which the parity test calls outside).
  assert ours[0].sum() == 6 * 7 and ours[1].sum() == 2


# ----------------------------------------------------------------------------
# Random poses against scikit-image


def _degenerate_fits(source, target):
  """Parts whose target points are collinear (the fit is undefined; ours is no-point there)."""
  return [i for i, fit in enumerate(ref.part_fits(source, target)) if fit is not None and ref.is_degenerate(fit[0])]


@pytest.mark.parametrize("image_size", [(128, 64), (256, 256)])
def test_random_transforms_match_scikit_image(image_size):
  rng = np.random.default_rng(image_size[1])
  mirrored = 0
  for _ in range(60):
    source, target = random_pose(rng, *image_size), random_pose(rng, *image_size)
    ours = pt.affine_transforms(source, target)
    expected = ref.affine_transforms(source, target)
    for part in _degenerate_fits(source, target):
      np.testing.assert_array_equal(ours[part], pt.NO_POINT_TRANSFORM)
      expected[part] = pt.NO_POINT_TRANSFORM
    np.testing.assert_allclose(ours, expected.astype(np.float32), rtol=2e-5, atol=2e-4)
    present = keypoints_lib.is_present(source)
    mirrored += sum(not (present[K[f]] and present[K[t]]) for f, t in
                    (("right_hip", "right_knee"), ("left_elbow", "left_wrist")))
  assert mirrored > 0  # the fallback path was exercised


@pytest.mark.parametrize("image_size", [(128, 64), (256, 256)])
def test_random_masks_match_scikit_image(image_size):
  rng = np.random.default_rng(image_size[0])
  for _ in range(25):
    target = random_pose(rng, *image_size)
    np.testing.assert_array_equal(pt.part_masks(target, image_size), ref.pose_masks(target, image_size))


def test_host_cost_per_pair():
  """Transforms + masks of one realistic pair; the module docstring quotes these numbers."""
  rng = np.random.default_rng(0)
  target = pose()
  source = target + rng.integers(-3, 4, target.shape)
  timings = {}
  for size, scale in (((128, 64), 1), ((256, 256), 2)):
    pt.part_masks(target * scale, size)
    start = time.perf_counter()
    for _ in range(50):
      pt.affine_transforms(source * scale, target * scale)
      pt.part_masks(target * scale, size)
    timings[size] = (time.perf_counter() - start) / 50
  print({size: f"{t * 1e6:.0f} us" for size, t in timings.items()})
  # A loose bound (the machine is shared): well under the official per-pair skimage cost.
  assert timings[(128, 64)] < 10e-3 and timings[(256, 256)] < 20e-3


# ----------------------------------------------------------------------------
# Interpolated poses (SDGAN's stacked generation)


def test_interpolate_keypoints():
  source = pose(missing=("left_ear",))
  target = pose({"nose": (35, 42)}, missing=("right_ear", "left_ear"))
  source[K["left_wrist"]] = -1  # present in the target only
  stages = pt.interpolate_keypoints(source, target, 4)
  assert stages.shape == (4, 18, 2) and stages.dtype == np.float32
  np.testing.assert_allclose(stages[:, K["nose"]], [[27.5, 33], [30, 36], [32.5, 39], [35, 42]])
  np.testing.assert_array_equal(stages[-1, K["neck"]], target[K["neck"]])
  # Joints on one side only switch at the half-way stage (s <= num_stages // 2 keeps the source's state).
  np.testing.assert_array_equal(stages[:, K["right_ear"], 0], [24, 24, -1, -1])
  np.testing.assert_array_equal(stages[:, K["left_wrist"], 0], [-1, -1, 70, 70])
  np.testing.assert_array_equal(stages[:, K["left_ear"]], -1)
  # Odd stage count: only the first stage is "early".
  odd = pt.interpolate_keypoints(source, target, 3)
  np.testing.assert_array_equal(odd[:, K["right_ear"], 0], [24, -1, -1])
  # Snapping rounds to the nearest pixel, halves down (the heatmap argmax).
  snapped = pt.interpolate_keypoints(source, target, 4, snap_to_pixels=True)
  np.testing.assert_array_equal(snapped[:, K["nose"]], [[27, 33], [30, 36], [32, 39], [35, 42]])
  with pytest.raises(ValueError, match="num_stages"):
    pt.interpolate_keypoints(source, target, 0)
