"""`pair_source`: one reading entry for every pose dataset.

    source = pair_source("synthetic_people/128x88", "train")
    len(source)            # number of (source, target) pairs
    example = source[17]   # a dict of numpy arrays and names

Reading goes through `tfds` data sources over array_record files by random
access; it never imports TensorFlow. The synthetic dataset is built on first use
(that step does use TensorFlow, as TFDS builders do); real datasets must be
built first with `tfds build tfds_builders/<name> --manual_dir=...`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any, Sequence

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from jaxpose.data import records

# name -> (builder module, may be built automatically because nothing is downloaded)
DATASETS = {
    "synthetic_people": ("tfds_builders.synthetic_people.synthetic_people_dataset_builder", True),
    "deepfashion_pose": ("tfds_builders.deepfashion_pose.deepfashion_pose_dataset_builder", False),
    "market1501_pose": ("tfds_builders.market1501_pose.market1501_pose_dataset_builder", False),
    "anime_pose": ("tfds_builders.anime_pose.anime_pose_dataset_builder", False),
}

PAIR_KEYS = ("source_image", "target_image", "source_keypoints", "target_keypoints",
             "source_parsing", "target_parsing", "source_name", "target_name")


def default_data_dir() -> str:
  """TFDS's data directory: $TFDS_DATA_DIR or ~/tensorflow_datasets."""
  return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


@dataclasses.dataclass(frozen=True, eq=False)
class PairSource(Sequence):
  """Random-access pairs over a split's person records.

  Attributes:
    name: dataset name with config, e.g. "synthetic_people/128x88".
    split: "train" or "test".
    images: the split's TFDS data source (records as in `jaxpose.data.records`).
    pairs: (P, 2) int64 (source_index, target_index) into `images`.
    image_size: (height, width) of every image.
    parsing_labels: label set of the stored parsing maps ("lip" or "adgan8").
    has_parsing: False when the dataset carries no parsing maps (zeros then).
    directory: the built dataset's directory (for messages; caches computed
      from it live there, e.g. SPT's pseudo labels).
    pairing: how `pairs` were made: 'dataset' (the dataset's own pairs, same
      person), or one of `jaxpose.data.unpaired.PAIRINGS`.
  """
  name: str
  split: str
  images: Any
  pairs: np.ndarray
  image_size: tuple[int, int]
  parsing_labels: str
  has_parsing: bool
  directory: str = ""
  pairing: str = "dataset"

  def __len__(self) -> int:
    return len(self.pairs)

  def __getitem__(self, index: int) -> dict[str, Any]:
    if not -len(self) <= index < len(self):
      raise IndexError(f"pair index {index} out of range for {len(self)} pairs")
    source_index, target_index = (int(i) for i in self.pairs[index])
    source, target = self._record(source_index, index), self._record(target_index, index)
    return {
        "source_image": source["image"], "target_image": target["image"],
        "source_keypoints": source["keypoints"], "target_keypoints": target["keypoints"],
        "source_parsing": source["parsing"][..., 0], "target_parsing": target["parsing"][..., 0],
        "source_name": _text(source["name"]), "target_name": _text(target["name"]),
        "pair_index": np.int64(index),
    }

  def _record(self, image_index: int, pair_index: int) -> dict:
    try:
      return self.images[image_index]
    except Exception as e:  # pylint: disable=broad-except  (array_record, Riegeli and image decoding errors)
      dataset = self.name.split("/")[0]
      rebuild = (f"delete {self.directory} (synthetic data is rebuilt on first use)"
                 if DATASETS.get(dataset, ("", False))[1] else
                 f"rebuild it: tfds build tfds_builders/{dataset} --manual_dir=<dir> --overwrite")
      raise CorruptRecordError(
          f"dataset {self.name} split {self.split!r}: stored image {image_index} (of pair {pair_index}) cannot be "
          f"read ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}). The prepared files in "
          f"{self.directory or 'the TFDS data directory'} are damaged: {rebuild}.") from e

  def __repr__(self) -> str:
    return (f"PairSource({self.name!r}, split={self.split!r}, pairs={len(self)}, "
            f"images={len(self.images)}, image_size={self.image_size}, parsing={self.parsing_labels}"
            + (f", pairing={self.pairing}" if self.pairing != "dataset" else "") + ")")


class CorruptRecordError(RuntimeError):
  """A prepared record cannot be read; the message names the dataset, split and index, and says to rebuild."""


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _builder(name: str, data_dir: str | None):
  dataset, _, config = name.partition("/")
  if dataset not in DATASETS:
    raise ValueError(f"unknown dataset {dataset!r}; known datasets: {sorted(DATASETS)}")
  module_name, auto_build = DATASETS[dataset]
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    raise ValueError(f"dataset {dataset!r}: its builder module {module_name} is not available ({e})") from e
  configs = [c.name for c in module.Builder.BUILDER_CONFIGS]
  if config and configs and config not in configs:
    raise ValueError(f"dataset {dataset!r} has no config {config!r}; available configs: {configs}")
  kwargs = {"config": config} if config else {}
  builder = module.Builder(data_dir=data_dir or default_data_dir(), file_format="array_record", **kwargs)
  return builder, auto_build


def build(name: str, data_dir: str | None, manual_dir: str) -> bool:
  """Builds dataset `name` ("dataset/config") from the files in `manual_dir`, unless already built.

  The Python form of `tfds build tfds_builders/<dataset> --config <config>
  --manual_dir <manual_dir> --data_dir <data_dir>`. Returns True if it built.
  """
  builder, _ = _builder(name, data_dir)
  if builder.is_prepared():
    return False
  logging.info("Building %s in %s from %s", name, builder.data_dir, manual_dir)
  builder.download_and_prepare(file_format="array_record",
                               download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return True


def render_seed(source: PairSource) -> int | None:
  """The seed `jaxpose.data.synthetic` rendered `source`'s people from (a synthetic_people
  dataset: `synthetic.render_named` redraws any of its pictures, swapped or not), else None."""
  dataset, _, config_name = source.name.partition("/")
  if dataset != "synthetic_people":
    return None
  module = importlib.import_module(DATASETS[dataset][0])
  configs = {c.name: c for c in module.Builder.BUILDER_CONFIGS}
  config = configs.get(config_name or module.Builder.BUILDER_CONFIGS[0].name)
  return None if config is None else int(config.seed)


def pair_source(name: str, split: str, data_dir: str | None = None) -> PairSource:
  """Opens split `split` of dataset `name` ("dataset" or "dataset/config") as pairs.

  Args:
    name: one of `DATASETS`, optionally with a builder config.
    split: "train" or "test".
    data_dir: TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets).

  Returns:
    A `PairSource`: `len()` pairs, and `source[i]` a dict with `source_image`,
    `target_image` uint8 (H, W, 3); `source_keypoints`, `target_keypoints` int32
    (18, 2) (y, x), -1 missing; `source_parsing`, `target_parsing` uint8 (H, W)
    labels of the set `parsing_labels`; `source_name`, `target_name`; `pair_index`.
  """
  builder, auto_build = _builder(name, data_dir)
  full_name = f"{builder.name}/{builder.builder_config.name}" if builder.builder_config else builder.name
  if not builder.is_prepared():
    if not auto_build:
      raise FileNotFoundError(
          f"dataset {full_name!r} is not prepared in {builder.data_dir_root}. Build it from the "
          f"original files first: tfds build tfds_builders/{builder.name} --manual_dir=<dir> "
          f"--data_dir={builder.data_dir_root} (see tfds_builders/{builder.name}/README.md and the "
          "README's Datasets section for where the files come from).")
    logging.info("Building %s in %s (first use; rendered procedurally, nothing is downloaded).",
                 full_name, builder.data_dir)
    builder.download_and_prepare(file_format="array_record")
  metadata = builder.info.metadata or {}
  all_pairs = metadata.get(records.METADATA_PAIRS, {})
  if split not in builder.info.splits or split not in all_pairs:
    raise ValueError(f"dataset {full_name!r} has no split {split!r} with pairs; "
                     f"splits: {sorted(builder.info.splits)}")
  pairs = np.asarray(all_pairs[split], np.int64).reshape(-1, 2)
  images = builder.as_data_source(split)
  if len(pairs) and (pairs.min() < 0 or pairs.max() >= len(images)):
    raise ValueError(f"{full_name} {split}: pair indices exceed the {len(images)} stored images; "
                     "the dataset is corrupt, rebuild it")
  height, width = metadata[records.METADATA_IMAGE_SIZE]
  return PairSource(name=full_name, split=split, images=images, pairs=pairs,
                    image_size=(int(height), int(width)),
                    parsing_labels=metadata[records.METADATA_PARSING_LABELS],
                    has_parsing=bool(metadata[records.METADATA_HAS_PARSING]), directory=str(builder.data_dir))
