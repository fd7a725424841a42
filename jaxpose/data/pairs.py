"""Pair construction: "same person and outfit, different pose".

As the official DeepFashion/Market scripts build them (`create_pairs_dataset.py`):
keep images whose four torso joints are present, then take every ordered pair of
distinct images within one identity (person-outfit id). Train and test are split
by identity before this, so no identity appears in both.
"""

from __future__ import annotations

import collections
from typing import Hashable, Sequence

import numpy as np

from jaxpose.data import keypoints as kp


def ordered_pairs_within_identity(identities: Sequence[Hashable],
                                  keypoints: Sequence[np.ndarray] | None = None,
                                  *, require_torso: bool = True,
                                  include_self_pairs: bool = False) -> np.ndarray:
  """All ordered (source, target) index pairs of images that share an identity.

  Args:
    identities: identity of each image, in dataset order.
    keypoints: (18, 2) keypoints of each image; needed when `require_torso`.
    require_torso: drop images missing a shoulder or hip (the official filter).
    include_self_pairs: also pair each image with itself.

  Returns:
    (P, 2) int64 array of (source_index, target_index), sorted.
  """
  if require_torso and keypoints is None:
    raise ValueError("require_torso=True needs the keypoints of every image")
  if keypoints is not None and len(keypoints) != len(identities):
    raise ValueError(f"{len(identities)} identities but {len(keypoints)} keypoint arrays")
  groups: dict[Hashable, list[int]] = collections.defaultdict(list)
  for index, identity in enumerate(identities):
    if require_torso and not kp.has_torso(keypoints[index]):
      continue
    groups[identity].append(index)
  pairs = [(s, t) for members in groups.values() for s in members for t in members
           if include_self_pairs or s != t]
  if not pairs:
    return np.zeros((0, 2), np.int64)
  return np.array(sorted(pairs), np.int64)
