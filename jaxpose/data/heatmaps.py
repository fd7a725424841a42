"""Pose heatmaps: 18 channels, one per joint, computed on the fly from keypoints.

Two modes:
  * `gaussian`: exp(-d^2 / (2 sigma^2)) around each joint (sigma 6 by default),
    the maps Market-1501 and the PATN/Def-GAN papers describe;
  * `spike`: a single 1 at the joint's pixel. This is what the official
    DeepFashion heatmap files actually contain: the script stores the Gaussians
    as uint8, which truncates every value below 1 to 0 (shared/reference/adgan.md
    section 4). Official DeepFashion checkpoints were trained on these maps.
A missing joint (-1, -1) gives an all-zero channel in both modes.
"""

from __future__ import annotations

import numpy as np

from jaxpose.data import keypoints as kp

MODES = ("gaussian", "spike")


def keypoints_to_heatmaps(keypoints: np.ndarray, height: int, width: int, *,
                          sigma: float = 6.0, mode: str = "gaussian") -> np.ndarray:
  """(18, 2) (y, x) keypoints -> (height, width, 18) float32 heatmaps.

  Joints outside the image still contribute their Gaussian tail (as the official
  script does); in `spike` mode they contribute nothing.
  """
  if mode not in MODES:
    raise ValueError(f"heatmap mode must be one of {MODES}, got {mode!r}")
  keypoints = np.asarray(keypoints)
  if keypoints.shape != (kp.NUM_KEYPOINTS, 2):
    raise ValueError(f"expected (18, 2) keypoints, got shape {keypoints.shape}")
  present = kp.is_present(keypoints)
  out = np.zeros((height, width, kp.NUM_KEYPOINTS), np.float32)
  if mode == "spike":
    y, x = keypoints[:, 0], keypoints[:, 1]
    inside = present & (y >= 0) & (y < height) & (x >= 0) & (x < width)
    idx = np.flatnonzero(inside)
    out[y[idx], x[idx], idx] = 1.0
    return out
  if sigma <= 0:
    raise ValueError(f"heatmap sigma must be positive, got {sigma}")
  # The 2-D Gaussian is separable: exp(-(dy^2+dx^2)/2s^2) = gy * gx.
  ys = np.arange(height, dtype=np.float32)[:, None]
  xs = np.arange(width, dtype=np.float32)[:, None]
  kpf = keypoints.astype(np.float32)
  gy = np.exp(-((ys - kpf[None, :, 0]) ** 2) / (2 * sigma**2))  # (H, 18)
  gx = np.exp(-((xs - kpf[None, :, 1]) ** 2) / (2 * sigma**2))  # (W, 18)
  out = gy[:, None, :] * gx[None, :, :]
  out[..., ~present] = 0.0
  return out.astype(np.float32)
