"""PCKh exactly as PATN computes it (`tool/calPCKH_fashion.py`, `calPCKH_market.py`), pooled over a test set.

PCKh asks whether a pose detector finds, on the generated image, each joint
of the target pose within a fraction of the head size. The field reports
PATN's variant, which is not MPII's:
  * head size: the bounding box (x-range w, y-range h) of the target's head
    joints nose, neck, both eyes, both ears (`HEAD_JOINTS`, PATN's
    `PARTS_SEL = [0, 1, 14, 15, 16, 17]`); a joint counts if neither its x nor
    its y is -1. A target with fewer than two such joints skips the whole image
    (it adds nothing to either count);
  * a joint is correct when |px - tx| < alpha * w and |py - ty| < alpha * h
    (alpha 0.5, strict, per axis); if any of px, py, tx, ty is -1 it is wrong,
    and a zero-width or zero-height box makes every joint wrong;
  * the denominator counts the target joints whose y is not -1, over all 18,
    so joints the detector misses count as errors;
  * the result is correct / valid pooled over all images, not a mean of
    per-image ratios.
Predictions come from OpenPose (jaxpose.pose, protocol 'patn') on the
generated images; targets from the dataset's annotation CSV. Keypoints here
are jaxpose's (18, 2) (y, x) int arrays, -1 for missing.

`KeypointDetector` is the interface the metric suite takes detectors through:
any callable from a (B, H, W, 3) uint8 RGB batch to (B, 18, 2) int keypoints
in the images' pixels (jaxpose.pose.PoseEstimator is one;
jaxpose.models.pose_detector.keypoint_detector makes one of a learned
heatmap detector). A detector may carry an `image_size` (height, width): the
size it works at; the metric suite skips it on images of another size.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from jaxpose.data import keypoints as kp

HEAD_JOINTS = tuple(kp.KEYPOINT_INDEX[name] for name in kp.HEAD_JOINTS)  # (0, 1, 14, 15, 16, 17)
ALPHA = 0.5

KeypointDetector = Callable[[np.ndarray], np.ndarray]
"""(B, H, W, 3) uint8 RGB images -> (B, 18, 2) int (y, x) keypoints in their pixels, -1 missing."""


def _check(keypoints, what: str) -> np.ndarray:
  keypoints = np.asarray(keypoints)
  if keypoints.shape != (kp.NUM_KEYPOINTS, 2):
    raise ValueError(f"{what}: expected (18, 2) (y, x) keypoints, got shape {keypoints.shape}")
  return keypoints


def head_size(target) -> tuple[float, float] | None:
  """(w, h) of the box around the target's present head joints, or None if fewer than two are present."""
  target = _check(target, "target")
  points = [(target[j, 1], target[j, 0]) for j in HEAD_JOINTS if target[j, 0] != -1 and target[j, 1] != -1]
  if len(points) < 2:
    return None
  xs, ys = [p[0] for p in points], [p[1] for p in points]
  return max(xs) - min(xs), max(ys) - min(ys)


def pckh(predicted, target, alpha: float = ALPHA) -> tuple[int, int]:
  """One image: (correct joints, valid target joints); (0, 0) for an image PATN skips.

  Args:
    predicted: (18, 2) (y, x) detected on the generated image, -1 missing.
    target: (18, 2) (y, x) of the target pose, -1 missing.
    alpha: fraction of the head box.
  """
  predicted = _check(predicted, "predicted")
  target = _check(target, "target")
  box = head_size(target)
  if box is None:
    return 0, 0
  width, height = box
  valid = int(np.sum(target[:, 0] != -1))
  correct = 0
  for (py, px), (ty, tx) in zip(predicted.tolist(), target.tolist()):
    if -1 in (px, py, tx, ty):
      continue
    if abs(px - tx) < width * alpha and abs(py - ty) < height * alpha:
      correct += 1
  return correct, valid


@dataclasses.dataclass
class PCKhAccumulator:
  """Pools `pckh` over a test set: `update` per batch, `result` = correct / valid.

  Attributes:
    alpha: fraction of the head box.
    correct, valid: the pooled counts.
    images: images seen; skipped_images: those without two target head joints.
  """
  alpha: float = ALPHA
  correct: int = 0
  valid: int = 0
  images: int = 0
  skipped_images: int = 0

  def update(self, predicted, target) -> None:
    """Adds (B, 18, 2) predicted and target keypoints (or a single (18, 2) pair)."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.ndim == 2:
      predicted, target = predicted[None], target[None]
    if predicted.shape != target.shape or predicted.shape[1:] != (kp.NUM_KEYPOINTS, 2):
      raise ValueError(f"PCKh: predicted {predicted.shape} and target {target.shape} must be equal "
                       "(B, 18, 2) keypoint batches")
    for p, t in zip(predicted, target):
      self.images += 1
      if head_size(t) is None:
        self.skipped_images += 1
        continue
      correct, valid = pckh(p, t, self.alpha)
      self.correct += correct
      self.valid += valid

  def result(self) -> float:
    """correct / valid, NaN before any valid joint."""
    return self.correct / self.valid if self.valid else float("nan")


def pooled_pckh(predicted, target, alpha: float = ALPHA) -> float:
  """PCKh over whole (N, 18, 2) arrays of predicted and target keypoints."""
  accumulator = PCKhAccumulator(alpha)
  accumulator.update(predicted, target)
  return accumulator.result()
