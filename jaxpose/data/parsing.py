"""Human-parsing label sets and the merge tables between them.

Datasets store parsing maps in one of two label sets:
  * `lip`: the 20 classes of the LIP human parser (what a parser outputs);
  * `adgan8`: ADGAN's `semantic_merge3` files, 8 merged components.
Models consume one-hot maps of a merged set: ADGAN's 8 components (default) or
SPT's 10 classes. The LIP -> 8 table is the one ADGAN's author gave
(menyifang/ADGAN#10, odd `Jumpsuits -> Face` included).
"""

from __future__ import annotations

import numpy as np

LIP_LABELS = (
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress",
    "coat", "socks", "pants", "jumpsuits", "scarf", "skirt", "face", "left_arm",
    "right_arm", "left_leg", "right_leg", "left_shoe", "right_shoe",
)
LIP = {name: i for i, name in enumerate(LIP_LABELS)}

ADGAN8_LABELS = (
    "background", "pants", "hair", "skirt", "face", "upper_clothes", "arm", "leg",
)
"""ADGAN's component order: component i owns style-code dims [64i, 64i+64)."""
ADGAN8 = {name: i for i, name in enumerate(ADGAN8_LABELS)}

SPT10_LABELS = (
    "background", "face", "hair", "upper_clothes", "pants", "skirt",
    "left_arm", "right_arm", "left_leg", "right_leg",
)
SPT10 = {name: i for i, name in enumerate(SPT10_LABELS)}

_LIP_TO_ADGAN8 = {
    "background": "background",
    "pants": "pants",
    "hat": "hair", "hair": "hair",
    "skirt": "skirt",
    "face": "face", "sunglasses": "face", "jumpsuits": "face",
    "upper_clothes": "upper_clothes", "dress": "upper_clothes", "coat": "upper_clothes",
    "scarf": "upper_clothes",
    "glove": "arm", "left_arm": "arm", "right_arm": "arm",
    "socks": "leg", "left_leg": "leg", "right_leg": "leg", "left_shoe": "leg",
    "right_shoe": "leg",
}

# SPT's merge script was never released (shared/reference/peers.md 4.1). This
# table follows its README's class list; LIP's side-less classes go where their
# garment sits: gloves and socks to the left limb class, shoes to their leg.
_LIP_TO_SPT10 = {
    "background": "background",
    "face": "face", "sunglasses": "face",
    "hat": "hair", "hair": "hair",
    "upper_clothes": "upper_clothes", "dress": "upper_clothes", "coat": "upper_clothes",
    "scarf": "upper_clothes", "jumpsuits": "upper_clothes",
    "pants": "pants",
    "skirt": "skirt",
    "left_arm": "left_arm", "glove": "left_arm",
    "right_arm": "right_arm",
    "left_leg": "left_leg", "left_shoe": "left_leg", "socks": "left_leg",
    "right_leg": "right_leg", "right_shoe": "right_leg",
}

LIP_TO_ADGAN8 = np.array([ADGAN8[_LIP_TO_ADGAN8[n]] for n in LIP_LABELS], np.uint8)
"""Lookup table: `LIP_TO_ADGAN8[lip_label] -> adgan8 label`."""
LIP_TO_SPT10 = np.array([SPT10[_LIP_TO_SPT10[n]] for n in LIP_LABELS], np.uint8)
"""Lookup table: `LIP_TO_SPT10[lip_label] -> spt10 label`."""

LABEL_SETS = {"lip": LIP_LABELS, "adgan8": ADGAN8_LABELS, "spt10": SPT10_LABELS}

_MERGES = {
    ("lip", "adgan8"): LIP_TO_ADGAN8,
    ("lip", "spt10"): LIP_TO_SPT10,
    ("lip", "lip"): np.arange(len(LIP_LABELS), dtype=np.uint8),
    ("adgan8", "adgan8"): np.arange(len(ADGAN8_LABELS), dtype=np.uint8),
    ("spt10", "spt10"): np.arange(len(SPT10_LABELS), dtype=np.uint8),
}


def num_classes(label_set: str) -> int:
  if label_set not in LABEL_SETS:
    raise ValueError(f"unknown parsing label set {label_set!r}; expected one of {sorted(LABEL_SETS)}")
  return len(LABEL_SETS[label_set])


def merge(labels: np.ndarray, source: str, target: str) -> np.ndarray:
  """Maps a label map from label set `source` to label set `target`."""
  key = (source, target)
  if key not in _MERGES:
    raise ValueError(
        f"cannot turn {source!r} parsing into {target!r}; available merges: "
        f"{sorted(f'{a}->{b}' for a, b in _MERGES)}")
  labels = np.asarray(labels)
  n = num_classes(source)
  if labels.size and (labels.min() < 0 or labels.max() >= n):
    raise ValueError(f"{source!r} parsing labels must lie in [0, {n}), got [{labels.min()}, {labels.max()}]")
  return _MERGES[key][labels]


def one_hot(labels: np.ndarray, num: int, dtype=np.float32) -> np.ndarray:
  """(..., H, W) integer labels -> (..., H, W, num) one-hot."""
  labels = np.asarray(labels)
  return (labels[..., None] == np.arange(num, dtype=labels.dtype)).astype(dtype)
