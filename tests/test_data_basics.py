"""Keypoint order and missing joints, heatmaps (spike mode too), parsing merges, pairs."""

import numpy as np
import pytest

from jaxpose.data import heatmaps
from jaxpose.data import keypoints as kp
from jaxpose.data import pairs
from jaxpose.data import parsing


def test_keypoint_order_is_the_openpose_coco18_order_of_the_annotation_files():
  # The official CSV order (pose_utils.py): nose, neck, Rsho, Relb, Rwri, Lsho, Lelb, Lwri,
  # Rhip, Rkne, Rank, Lhip, Lkne, Lank, then the four face points.
  official_first_14 = ["nose", "neck", "Rsho", "Relb", "Rwri", "Lsho", "Lelb", "Lwri",
                       "Rhip", "Rkne", "Rank", "Lhip", "Lkne", "Lank"]
  expand = {"R": "right_", "L": "left_", "sho": "shoulder", "elb": "elbow", "wri": "wrist",
            "hip": "hip", "kne": "knee", "ank": "ankle"}
  for index, short in enumerate(official_first_14):
    if short in ("nose", "neck"):
      assert kp.KEYPOINT_NAMES[index] == short
    else:
      assert kp.KEYPOINT_NAMES[index] == expand[short[0]] + expand[short[1:]]
  assert len(kp.KEYPOINT_NAMES) == kp.NUM_KEYPOINTS == 18
  # The official limb list joins the right shoulder (2) to joint 16 and the left (5) to 17:
  # OpenPose's order, right ear then left ear (and right eye, left eye before them).
  assert kp.KEYPOINT_NAMES[2] == "right_shoulder" and kp.KEYPOINT_NAMES[16] == "right_ear"
  assert kp.KEYPOINT_NAMES[5] == "left_shoulder" and kp.KEYPOINT_NAMES[17] == "left_ear"
  assert kp.KEYPOINT_NAMES[14:16] == ("right_eye", "left_eye")


def test_missing_joints_and_validation():
  points = np.full((18, 2), -1, np.int32)
  points[1] = (10, 5)
  assert kp.is_present(points).tolist() == [i == 1 for i in range(18)]
  assert not kp.has_torso(points)
  for name in kp.TORSO_JOINTS:
    points[kp.KEYPOINT_INDEX[name]] = (20, 6)
  assert kp.has_torso(points)
  np.testing.assert_array_equal(kp.validate(points, 32, 24), points)
  bad = points.copy()
  bad[3] = (40, 3)
  with pytest.raises(ValueError, match="right_elbow.*outside"):
    kp.validate(bad, 32, 24)
  half = points.copy()
  half[4] = (-1, 7)
  with pytest.raises(ValueError, match="only one coordinate"):
    kp.validate(half, 32, 24)
  with pytest.raises(ValueError, match=r"shape \(18, 2\)"):
    kp.validate(points[:17], 32, 24)
  with pytest.raises(ValueError, match="integer"):
    kp.validate(points + 0.5, 32, 24)


def _heatmap_reference(points, height, width, sigma):
  out = np.zeros((height, width, 18), np.float32)
  for i, (y, x) in enumerate(points):
    if y == -1 or x == -1:
      continue
    xx, yy = np.meshgrid(np.arange(width), np.arange(height))
    out[..., i] = np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
  return out


def test_gaussian_heatmaps_match_the_official_formula():
  rng = np.random.default_rng(0)
  points = np.stack([rng.integers(0, 40, 18), rng.integers(0, 30, 18)], axis=1)
  points[[3, 15]] = -1
  points[7] = (45, 2)  # outside the image: its tail still shows, as in the official script
  got = heatmaps.keypoints_to_heatmaps(points, 40, 30, sigma=6)
  np.testing.assert_allclose(got, _heatmap_reference(points, 40, 30, 6), atol=1e-6)
  assert got.dtype == np.float32 and got.shape == (40, 30, 18)
  assert not got[..., 3].any() and not got[..., 15].any()
  y, x = points[0]
  assert got[y, x, 0] == pytest.approx(1.0)


def test_spike_heatmaps_are_what_the_official_uint8_files_contain():
  rng = np.random.default_rng(1)
  points = np.stack([rng.integers(0, 40, 18), rng.integers(0, 30, 18)], axis=1)
  points[5] = -1
  # The official script: float Gaussians stored into a uint8 array.
  official = _heatmap_reference(points, 40, 30, 6).astype(np.uint8).astype(np.float32)
  got = heatmaps.keypoints_to_heatmaps(points, 40, 30, mode="spike")
  np.testing.assert_array_equal(got, official)
  assert got.sum() == 17
  with pytest.raises(ValueError, match="mode"):
    heatmaps.keypoints_to_heatmaps(points, 40, 30, mode="gauss")


def test_lip_to_adgan8_merge_is_the_authors_table():
  expected = {
      "background": "background", "hat": "hair", "hair": "hair", "glove": "arm",
      "sunglasses": "face", "upper_clothes": "upper_clothes", "dress": "upper_clothes",
      "coat": "upper_clothes", "socks": "leg", "pants": "pants", "jumpsuits": "face",
      "scarf": "upper_clothes", "skirt": "skirt", "face": "face", "left_arm": "arm",
      "right_arm": "arm", "left_leg": "leg", "right_leg": "leg", "left_shoe": "leg",
      "right_shoe": "leg",
  }
  labels = np.arange(20, dtype=np.uint8).reshape(4, 5)
  merged = parsing.merge(labels, "lip", "adgan8")
  for lip_index, name in enumerate(parsing.LIP_LABELS):
    assert parsing.ADGAN8_LABELS[merged.flat[lip_index]] == expected[name]
  # ADGAN's component order (style-code slots): 0 bg, 1 pants, 2 hair, 3 skirt, 4 face, 5 upper, 6 arm, 7 leg.
  assert parsing.ADGAN8_LABELS == ("background", "pants", "hair", "skirt", "face", "upper_clothes", "arm", "leg")


def test_lip_to_spt10_merge_keeps_sides():
  merged = parsing.merge(np.arange(20, dtype=np.uint8), "lip", "spt10")
  names = [parsing.SPT10_LABELS[m] for m in merged]
  lip = parsing.LIP
  assert names[lip["left_arm"]] == "left_arm" and names[lip["right_arm"]] == "right_arm"
  assert names[lip["left_leg"]] == "left_leg" and names[lip["right_shoe"]] == "right_leg"
  assert names[lip["pants"]] == "pants" and names[lip["skirt"]] == "skirt"
  assert names[lip["hat"]] == "hair" and names[lip["coat"]] == "upper_clothes"
  assert set(merged.tolist()) == set(range(10))


def test_merge_errors_and_one_hot():
  with pytest.raises(ValueError, match="adgan8.*spt10"):
    parsing.merge(np.zeros((2, 2), np.uint8), "adgan8", "spt10")
  with pytest.raises(ValueError, match=r"\[0, 8\)"):
    parsing.merge(np.full((2, 2), 9, np.uint8), "adgan8", "adgan8")
  one_hot = parsing.one_hot(np.array([[0, 7], [3, 3]], np.uint8), 8)
  assert one_hot.shape == (2, 2, 8)
  np.testing.assert_array_equal(one_hot.argmax(-1), [[0, 7], [3, 3]])
  np.testing.assert_array_equal(one_hot.sum(-1), 1)


def _torso_points():
  points = np.full((18, 2), -1, np.int32)
  for name in kp.TORSO_JOINTS:
    points[kp.KEYPOINT_INDEX[name]] = (5, 5)
  return points


def test_pairs_are_ordered_and_only_within_an_identity():
  identities = ["a", "a", "b", "a", "b", "c"]
  points = [_torso_points() for _ in identities]
  points[3] = np.full((18, 2), -1, np.int32)  # no torso: the official filter drops it
  result = pairs.ordered_pairs_within_identity(identities, points)
  assert sorted(map(tuple, result.tolist())) == [(0, 1), (1, 0), (2, 4), (4, 2)]
  with_self = pairs.ordered_pairs_within_identity(identities, points, include_self_pairs=True)
  assert (5, 5) in map(tuple, with_self.tolist())
  for s, t in with_self:
    assert identities[s] == identities[t]
  unfiltered = pairs.ordered_pairs_within_identity(identities, require_torso=False)
  assert len(unfiltered) == 3 * 2 + 2
