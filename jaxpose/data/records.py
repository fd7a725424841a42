"""The on-disk contract between jaxpose's TFDS builders and `pair_source`.

Every pose dataset (synthetic_people, deepfashion_pose, market1501_pose,
anime_pose) is a TFDS dataset whose splits hold *person images*, each stored
once, with these features:

  image      uint8 (H, W, 3)
  parsing    uint8 (H, W, 1) human-parsing labels (all zeros if the dataset has none)
  keypoints  int32 (18, 2)   (y, x) in COCO-18/OpenPose order, -1 for missing
  name       text            file name in the official layout (or a synthetic name)
  identity   text            person-outfit id; pairs never cross identities

Pairs are not records: `metadata.json` holds, per split, the (source, target)
index pairs into that split (about 52k DeepFashion images serve about 110k
pairs), plus the parsing label set. Builders set `disable_shuffling=True` so
that record order is generation order and the indices stay valid.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import keypoints as kp
from jaxpose.data import parsing as parsing_lib

METADATA_PAIRS = "pairs"
METADATA_PARSING_LABELS = "parsing_labels"
METADATA_HAS_PARSING = "has_parsing"
METADATA_IMAGE_SIZE = "image_size"


def person_features(height: int, width: int, image_encoding: str = "png") -> tfds.features.FeaturesDict:
  """The FeaturesDict every pose builder declares."""
  return tfds.features.FeaturesDict({
      "image": tfds.features.Image(shape=(height, width, 3), encoding_format=image_encoding),
      "parsing": tfds.features.Image(shape=(height, width, 1), encoding_format="png"),
      "keypoints": tfds.features.Tensor(shape=(kp.NUM_KEYPOINTS, 2), dtype=np.int32),
      "name": tfds.features.Text(),
      "identity": tfds.features.Text(),
  })


def make_metadata(*, height: int, width: int, parsing_labels: str, has_parsing: bool,
                  pairs: Mapping[str, np.ndarray] | None = None) -> dict:
  """Metadata dict content shared by all pose builders (pairs may be filled later)."""
  parsing_lib.num_classes(parsing_labels)  # validates the name
  return {
      METADATA_IMAGE_SIZE: [int(height), int(width)],
      METADATA_PARSING_LABELS: parsing_labels,
      METADATA_HAS_PARSING: bool(has_parsing),
      METADATA_PAIRS: {split: np.asarray(p, np.int64).tolist() for split, p in (pairs or {}).items()},
  }
