"""Resize + pad ("letterbox") of an image, its label map and its keypoints to a model's size.

Users' pictures (anime characters, their own photos) come in any size; the
model takes one. The aspect ratio is kept and the rest padded, and keypoints
and parsing labels follow the same transform.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from PIL import Image

from jaxpose.data import annotation_csv
from jaxpose.data import keypoints as kp


@dataclasses.dataclass(frozen=True)
class Letterbox:
  """Resize keeping the aspect ratio, then pad to the target size, centred.

  The image is scaled by s = min(H / h, W / w) to (round(h s), round(w s)) and
  placed at (top, left) in the (H, W) target; pixel (y, x) of the source goes to
  the target pixel holding its centre: (floor((y + 0.5) * nh / h) + top,
  floor((x + 0.5) * nw / w) + left), the pixel a nearest-neighbour resize of the
  parsing map samples it from.

  Attributes:
    source_size: (h, w) of the original image.
    target_size: (H, W).
    resized_size: (nh, nw) of the scaled image before padding.
    top, left: padding above and left of it.
  """
  source_size: tuple[int, int]
  target_size: tuple[int, int]
  resized_size: tuple[int, int]
  top: int
  left: int

  @classmethod
  def fit(cls, source_size: Sequence[int], target_size: Sequence[int]) -> "Letterbox":
    h, w = (int(v) for v in source_size)
    target_h, target_w = (int(v) for v in target_size)
    if min(h, w, target_h, target_w) < 1:
      raise ValueError(f"sizes must be positive, got {source_size} -> {target_size}")
    scale = min(target_h / h, target_w / w)
    nh = min(target_h, max(1, round(h * scale)))
    nw = min(target_w, max(1, round(w * scale)))
    return cls((h, w), (target_h, target_w), (nh, nw), (target_h - nh) // 2, (target_w - nw) // 2)

  def image(self, pixels: np.ndarray, pad_color: Sequence[int] | None = None) -> np.ndarray:
    """(h, w, 3) uint8 -> (H, W, 3) uint8, Lanczos-resized; padding in `pad_color`
    (default: the median colour of the resized image's border, so the padding
    continues a plain background)."""
    resized = pixels
    if tuple(pixels.shape[:2]) != self.resized_size:
      resized = np.asarray(Image.fromarray(pixels).resize(self.resized_size[::-1], Image.Resampling.LANCZOS))
    if pad_color is None:
      border = np.concatenate([resized[0], resized[-1], resized[:, 0], resized[:, -1]])
      pad_color = np.median(border, axis=0)
    out = np.empty(self.target_size + (3,), np.uint8)
    out[...] = np.asarray(pad_color, np.float64).round().astype(np.uint8)
    nh, nw = self.resized_size
    out[self.top:self.top + nh, self.left:self.left + nw] = resized
    return out

  def labels(self, labels: np.ndarray) -> np.ndarray:
    """(h, w) integer labels -> (H, W) uint8, nearest-neighbour; padding is 0 (background)."""
    labels = np.asarray(labels, np.uint8)
    nh, nw = self.resized_size
    h, w = self.source_size
    # Index arithmetic instead of PIL: the sample positions are exactly the
    # pixel-centre rule `keypoints` uses.
    rows = np.minimum(((np.arange(nh) + 0.5) * h / nh).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(nw) + 0.5) * w / nw).astype(np.int64), w - 1)
    out = np.zeros(self.target_size, np.uint8)
    out[self.top:self.top + nh, self.left:self.left + nw] = labels[rows[:, None], cols[None, :]]
    return out

  def keypoints(self, keypoints: np.ndarray) -> np.ndarray:
    """(18, 2) (y, x) in the source -> int32 (18, 2) in the target.

    Joints missing or outside the source image come out (-1, -1); every joint
    inside it lands inside the resized region.
    """
    h, w = self.source_size
    nh, nw = self.resized_size
    inside, _ = annotation_csv.drop_outside_joints(keypoints, h, w)
    present = kp.is_present(inside)
    out = np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32)
    y = np.floor((inside[:, 0] + 0.5) * nh / h).astype(np.int64)
    x = np.floor((inside[:, 1] + 0.5) * nw / w).astype(np.int64)
    out[present, 0] = np.clip(y[present], 0, nh - 1) + self.top
    out[present, 1] = np.clip(x[present], 0, nw - 1) + self.left
    return out
