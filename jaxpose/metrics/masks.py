"""Keypoint body masks for Market-1501's mask-SSIM / mask-IS.

Re-implements the official `pose_utils.produce_ma_mask` (Def-GAN, copied by
PATN; shared/reference/peers.md 1.5) in numpy, without scikit-image:
  1. for each of 23 limbs whose two joints are present, the quadrilateral
     [f + n, f - n, t - n, t + n], n the unit normal of the limb times 4 px,
     rasterised like `skimage.draw.polygon` of scikit-image < 0.18 (pixel
     centres at integer coordinates, even-odd crossing rule, half-open so that
     pixels exactly on the right/lower boundary are outside);
  2. a disc of radius 4 at each present joint, like `skimage.draw.circle`
     (pixels strictly closer than the radius);
  3. `dilation(mask, square(5))` then `erosion(mask, square(5))`, i.e. a 5x5
     closing that fills the gaps between the limb quads.

The limb list is the official function's own, not the stick-figure list of
`jaxpose.data.keypoints.LIMB_INDICES`: it has the 17 bones of the figure plus
neck-right ear, neck-left ear, the hip-hip, hip-shoulder and ear-ear segments
that fill the torso and head (23 pairs; the figure's shoulder-ear bones are
not in it). The masks are computed on the host: they depend only on the
annotation, not on the generator.

Boundary convention: scikit-image 0.18 (PR #5029) changed its point-in-polygon
test to count pixels on an edge or vertex as inside. The official script
cannot run on 0.18+ (it imports `compare_ssim`, removed in 0.18, and
`draw.circle`, removed in 0.19), so the protocol is the older half-open rule,
kept here. It matters for axis-aligned limbs, whose quad corners are integers:
a modern skimage draws one more row or column there before the closing.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from jaxpose.data import keypoints as keypoints_lib

MASK_LIMBS = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9),
    (9, 10), (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16),
    (0, 15), (15, 17), (1, 16), (1, 17), (8, 11), (11, 5), (8, 2), (16, 17),
)
"""The 23 (from, to) joint pairs of `produce_ma_mask` (its 1-based list minus one)."""

POINT_RADIUS = 4


def polygon_mask(rows: np.ndarray, cols: np.ndarray, height: int, width: int) -> np.ndarray:
  """(H, W) bool: pixels (r, c) inside the polygon with vertices (rows[k], cols[k]).

  The even-odd test `skimage.draw.polygon` uses: a horizontal ray from the
  pixel centre crosses edge (i, j) when exactly one end lies at or below the
  pixel's row (`y_i <= r < y_j` or `y_j <= r < y_i`) and the crossing is to the
  right of the pixel. Written with the same float64 operations in the same
  order so that boundary pixels fall on the same side.
  """
  ys = np.asarray(rows, np.float64)
  xs = np.asarray(cols, np.float64)
  r = np.arange(height, dtype=np.float64)[:, None]
  c = np.arange(width, dtype=np.float64)[None, :]
  inside = np.zeros((height, width), bool)
  j = len(ys) - 1
  for i in range(len(ys)):
    spans = ((ys[i] <= r) & (r < ys[j])) | ((ys[j] <= r) & (r < ys[i]))
    if ys[j] != ys[i]:  # a horizontal edge is never crossed (and would divide by 0)
      crossing = (xs[j] - xs[i]) * (r - ys[i]) / (ys[j] - ys[i]) + xs[i]
      inside ^= spans & (c < crossing)
    j = i
  return inside


def disc_mask(y: float, x: float, radius: float, height: int, width: int) -> np.ndarray:
  """(H, W) bool: pixels strictly within `radius` of (y, x) (`skimage.draw.disk`)."""
  r = np.arange(height, dtype=np.float64)[:, None]
  c = np.arange(width, dtype=np.float64)[None, :]
  return ((r - y) / radius)**2 + ((c - x) / radius)**2 < 1.0


def body_mask(keypoints, height: int, width: int, point_radius: float = POINT_RADIUS) -> np.ndarray:
  """The official Market body mask of one pose.

  Args:
    keypoints: (18, 2) (y, x) pixel coordinates, -1 for a missing joint.
    height, width: image size.
    point_radius: half-width of the limb quads and radius of the joint discs.

  Returns:
    (height, width) bool mask.
  """
  kp = np.asarray(keypoints, np.float64)
  if kp.shape != (keypoints_lib.NUM_KEYPOINTS, 2):
    raise ValueError(f"body_mask: expected ({keypoints_lib.NUM_KEYPOINTS}, 2) keypoints, got {kp.shape}")
  present = np.all(kp != keypoints_lib.MISSING, axis=-1)
  mask = np.zeros((height, width), bool)
  for f, t in MASK_LIMBS:
    if not (present[f] and present[t]):
      continue
    d = kp[f] - kp[t]
    length = np.linalg.norm(d)
    if length == 0:
      # Coincident joints: the official code divides by zero (nan vertices) and
      # crashes in skimage; the joint disc below covers the point anyway.
      continue
    normal = point_radius * np.array([-d[1], d[0]]) / length
    quad = np.stack([kp[f] + normal, kp[f] - normal, kp[t] - normal, kp[t] + normal])
    mask |= polygon_mask(quad[:, 0], quad[:, 1], height, width)
  for y, x in kp[present]:
    mask |= disc_mask(y, x, point_radius, height, width)
  # skimage's grey dilation/erosion use scipy's 'reflect' border; for a symmetric
  # 5x5 window reflected pixels are already inside the window, so this is the
  # same as a 0 border for dilation and a 1 border for erosion.
  square = np.ones((5, 5), bool)
  mask = ndimage.binary_dilation(mask, structure=square, border_value=0)
  mask = ndimage.binary_erosion(mask, structure=square, border_value=1)
  return mask


def body_masks(keypoints, height: int, width: int, point_radius: float = POINT_RADIUS) -> np.ndarray:
  """`body_mask` of each pose: (B, 18, 2) keypoints -> (B, height, width) bool."""
  kp = np.asarray(keypoints)
  if kp.ndim != 3:
    raise ValueError(f"body_masks: expected (B, 18, 2) keypoints, got {kp.shape}")
  return np.stack([body_mask(k, height, width, point_radius) for k in kp]) if len(kp) else \
      np.zeros((0, height, width), bool)
