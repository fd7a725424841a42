"""Pictures for people: pose stick figures, coloured parsing maps, sample grids, loss curves.

All functions take and return uint8 (H, W, 3) numpy images; nothing here knows
about models.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from jaxpose.data import keypoints as kp
from jaxpose.data import parsing as parsing_lib

# OpenPose's 18 joint colours, so our stick figures read like everyone else's.
JOINT_COLORS = np.array([
    [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
    [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
    [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
], np.uint8)

# One colour per label, distinct within each label set.
_PALETTE = np.array([
    [0, 0, 0], [128, 0, 0], [255, 0, 0], [0, 85, 0], [170, 0, 51], [255, 85, 0], [0, 0, 85],
    [0, 119, 221], [85, 85, 0], [0, 85, 85], [85, 51, 0], [52, 86, 128], [0, 128, 0],
    [0, 0, 255], [51, 170, 221], [0, 255, 255], [85, 255, 170], [170, 255, 85],
    [255, 255, 0], [255, 170, 0],
], np.uint8)
_ADGAN8_PALETTE = np.array([
    [0, 0, 0], [0, 85, 85], [255, 0, 0], [0, 128, 0], [0, 0, 255], [255, 85, 0],
    [51, 170, 221], [170, 255, 85],
], np.uint8)


def to_uint8(images: np.ndarray) -> np.ndarray:
  """Float images in [-1, 1] -> uint8 in [0, 255] (rounded, clipped)."""
  images = np.asarray(images, np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def pose_image(keypoints: np.ndarray, height: int, width: int, *,
               background: np.ndarray | None = None) -> np.ndarray:
  """Draws the OpenPose stick figure (limbs and joints) of (18, 2) (y, x) keypoints.

  On black unless `background` (uint8 (H, W, 3)) is given. Missing joints and
  the limbs touching them are not drawn.
  """
  canvas = np.zeros((height, width, 3), np.uint8) if background is None else background.copy()
  image = Image.fromarray(canvas)
  draw = ImageDraw.Draw(image)
  present = kp.is_present(keypoints)
  scale = max(1, round(min(height, width) / 64))
  for a, b in kp.LIMB_INDICES:
    if present[a] and present[b]:
      (ya, xa), (yb, xb) = keypoints[a], keypoints[b]
      color = tuple(int(c) // 2 + 64 for c in JOINT_COLORS[b])
      draw.line([(int(xa), int(ya)), (int(xb), int(yb))], fill=color, width=scale)
  for j in np.flatnonzero(present):
    y, x = keypoints[j]
    r = scale
    draw.ellipse([int(x) - r, int(y) - r, int(x) + r, int(y) + r], fill=tuple(int(c) for c in JOINT_COLORS[j]))
  return np.asarray(image)


# SPT's 10 classes in the colours of the LIP classes they come from.
_SPT10_PALETTE = _PALETTE[[parsing_lib.LIP[name] for name in parsing_lib.SPT10_LABELS]]


def colorize_parsing(labels: np.ndarray, label_set: str = "lip") -> np.ndarray:
  """(H, W) integer labels -> uint8 (H, W, 3) colours."""
  palette = {"adgan8": _ADGAN8_PALETTE, "spt10": _SPT10_PALETTE}.get(label_set, _PALETTE)
  num = parsing_lib.num_classes(label_set)
  return palette[:num][np.asarray(labels).astype(np.int64) % num]


def heatmap_image(heatmaps: np.ndarray) -> np.ndarray:
  """(H, W, 18) pose heatmaps -> uint8 colour image (each joint in its colour)."""
  heatmaps = np.clip(np.asarray(heatmaps, np.float32), 0, 1)
  colored = np.einsum("hwk,kc->hwc", heatmaps, JOINT_COLORS.astype(np.float32))
  return np.clip(colored, 0, 255).astype(np.uint8)


def grid(rows: Sequence[Sequence[np.ndarray]], *, pad: int = 2, fill: int = 255,
         column_titles: Sequence[str] | None = None, min_height: int = 128) -> np.ndarray:
  """Lays out equally sized uint8 images in rows, with `pad` pixels between them.

  Images shorter than `min_height` are enlarged by an integer factor (nearest
  neighbour, so pixels stay honest) to be visible at a glance.
  """
  if not rows or not rows[0]:
    raise ValueError("grid needs at least one image")
  scale = max(1, -(-min_height // rows[0][0].shape[0]))
  if scale > 1:
    rows = [[np.repeat(np.repeat(im, scale, axis=0), scale, axis=1) for im in row] for row in rows]
  h, w = rows[0][0].shape[:2]
  ncols = max(len(r) for r in rows)
  title_h = 12 if column_titles else 0
  out = np.full((title_h + len(rows) * (h + pad) + pad, ncols * (w + pad) + pad, 3), fill, np.uint8)
  for i, row in enumerate(rows):
    for j, image in enumerate(row):
      if image.shape[:2] != (h, w):
        raise ValueError(f"grid images must share one size; got {image.shape[:2]} and {(h, w)}")
      y, x = title_h + pad + i * (h + pad), pad + j * (w + pad)
      out[y:y + h, x:x + w] = image if image.ndim == 3 else image[..., None]
  if column_titles:
    canvas = Image.fromarray(out)
    draw = ImageDraw.Draw(canvas)
    for j, title in enumerate(column_titles):
      draw.text((pad + j * (w + pad) + 1, 0), title[: max(1, w // 6)], fill=(0, 0, 0))
    out = np.asarray(canvas)
  return out


def save_png(path: str, image: np.ndarray) -> str:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(np.asarray(image, np.uint8)).save(path)
  return path


def pair_grid(examples: Mapping[str, np.ndarray], label_set: str, num: int = 8) -> np.ndarray:
  """Data sample grid: per pair, source | parsing | source pose | target | target pose.

  `examples` is a raw `pair_source` batch (uint8 images, keypoints, labels).
  """
  rows = []
  for i in range(min(num, len(examples["source_image"]))):
    source, target = examples["source_image"][i], examples["target_image"][i]
    h, w = source.shape[:2]
    rows.append([
        source,
        colorize_parsing(examples["source_parsing"][i], label_set),
        pose_image(examples["source_keypoints"][i], h, w, background=source // 3),
        target,
        pose_image(examples["target_keypoints"][i], h, w, background=target // 3),
    ])
  return grid(rows, column_titles=["source", "parsing", "src pose", "target", "tgt pose"])


def transfer_grid(source_image, source_keypoints, target_keypoints, generated, target_image,
                  num: int = 8, result_title: str = "generated") -> np.ndarray:
  """Training samples: source | source pose | target pose | generated | target (uint8).

  `generated` is (B, H, W, 3), titled `result_title`, or {column title:
  (B, h, w, 3)} for several result columns (`System.sample_columns`, e.g.
  SDGAN's scales).
  """
  columns = generated if isinstance(generated, Mapping) else {result_title: generated}
  rows = []
  for i in range(min(num, len(source_image))):
    h, w = source_image[i].shape[:2]
    rows.append([source_image[i], pose_image(source_keypoints[i], h, w), pose_image(target_keypoints[i], h, w)]
                + [images[i] for images in columns.values()] + [target_image[i]])
  return grid(rows, column_titles=["source", "src pose", "tgt pose", *columns, "target"])


def loss_curves(history: Sequence[Mapping[str, float]], path: str,
                panels: Sequence[tuple[str, Sequence[str]]]) -> str:
  """Plots logged scalars over steps, one panel per (title, metric names), to a PNG.

  `history` rows are {"step": ..., name: value, ...}; missing names are skipped.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
  for ax, (title, names) in zip(axes[0], panels):
    for name in names:
      points = [(row["step"], row[name]) for row in history if name in row]
      if points:
        steps, values = zip(*points)
        ax.plot(steps, values, label=name, linewidth=1.2)
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    if ax.lines:
      ax.legend(fontsize=7)
  fig.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
