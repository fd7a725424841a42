"""The 18-keypoint COCO/OpenPose skeleton used by every pose-transfer dataset.

DeepFashion and Market-1501 annotation files (and so ADGAN, PATN, Deformable GAN
and SPT) store 18 joints per person as (y, x) pixel coordinates in the stored
image's frame, with -1 for a joint the detector did not find. "Left" and "right"
are the person's own sides, as in OpenPose.

Joints 14-17 are the right eye, left eye, right ear, left ear: the order of the
OpenPose COCO model that produced every annotation file. The official
`pose_utils.py` (Def-GAN, copied by PATN and ADGAN) *names* them `Leye, Reye,
Lear, Rear`, but its own limb list connects the right shoulder (2) to joint 16
and the left shoulder (5) to joint 17, as OpenPose does; the names are the slip,
the data follow OpenPose.
"""

from __future__ import annotations

import numpy as np

NUM_KEYPOINTS = 18

MISSING = -1
"""Coordinate value that marks a missing joint (both y and x are -1)."""

KEYPOINT_NAMES = (
    "nose", "neck",
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
"""Joint order of the annotation CSVs (the official code's `Rsho`, `Lsho`, ...)."""

KEYPOINT_INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

LIMBS = (
    ("neck", "right_shoulder"), ("neck", "left_shoulder"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("neck", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("neck", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("neck", "nose"), ("nose", "right_eye"), ("right_eye", "right_ear"),
    ("nose", "left_eye"), ("left_eye", "left_ear"),
)
"""Bones of the OpenPose stick figure, for drawing."""

LIMB_INDICES = tuple((KEYPOINT_INDEX[a], KEYPOINT_INDEX[b]) for a, b in LIMBS)

TORSO_JOINTS = ("right_hip", "left_hip", "left_shoulder", "right_shoulder")
"""Joints the official pair scripts require in both images of a pair."""

HEAD_JOINTS = ("nose", "neck", "right_eye", "left_eye", "right_ear", "left_ear")
"""Joints whose bounding box is the PCKh head size."""


def is_present(keypoints: np.ndarray) -> np.ndarray:
  """(..., 18, 2) keypoints -> (..., 18) bool, True where the joint was found."""
  keypoints = np.asarray(keypoints)
  return np.all(keypoints != MISSING, axis=-1)


def has_torso(keypoints: np.ndarray) -> bool:
  """True if all four torso joints are present (the official pair filter)."""
  present = is_present(keypoints)
  return bool(all(present[KEYPOINT_INDEX[j]] for j in TORSO_JOINTS))


def validate(keypoints, height: int, width: int, *, what: str = "keypoints") -> np.ndarray:
  """Checks shape, integrality and range; returns an int32 (18, 2) array.

  Raises ValueError naming `what` and the problem. A joint must be either
  missing ((-1, -1)) or inside [0, height) x [0, width).
  """
  arr = np.asarray(keypoints)
  if arr.shape != (NUM_KEYPOINTS, 2):
    raise ValueError(f"{what}: expected shape ({NUM_KEYPOINTS}, 2) as (y, x) pairs, got {arr.shape}")
  if not np.issubdtype(arr.dtype, np.integer):
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
      raise ValueError(f"{what}: expected integer pixel coordinates, got {arr.tolist()}")
  arr = arr.astype(np.int32)
  present = is_present(arr)
  half_missing = np.any(arr == MISSING, axis=-1) & ~np.all(arr == MISSING, axis=-1)
  if np.any(half_missing):
    raise ValueError(f"{what}: joints {np.flatnonzero(half_missing).tolist()} have only one coordinate -1")
  y, x = arr[:, 0], arr[:, 1]
  bad = present & ((y < 0) | (y >= height) | (x < 0) | (x >= width))
  if np.any(bad):
    names = [KEYPOINT_NAMES[i] for i in np.flatnonzero(bad)]
    raise ValueError(
        f"{what}: joints {names} lie outside the {height}x{width} image "
        f"(y in [0, {height}), x in [0, {width}) or -1 for missing)")
  return arr


def _mirror_index() -> tuple[int, ...]:
  swap = {"left": "right", "right": "left"}
  names = []
  for name in KEYPOINT_NAMES:
    side, _, part = name.partition("_")
    names.append(f"{swap[side]}_{part}" if side in swap else name)
  return tuple(KEYPOINT_INDEX[n] for n in names)


MIRROR_INDEX = _mirror_index()
"""Joint order of a horizontally mirrored person: joint j of the mirror image is joint
MIRROR_INDEX[j] of the original (left and right swap sides; nose and neck stay)."""
