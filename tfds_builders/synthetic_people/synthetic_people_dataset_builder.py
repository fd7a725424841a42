"""synthetic_people: procedural people in many poses, the embedded default dataset.

Build from the command line (any config, e.g. the default 128x88):

  tfds build tfds_builders/synthetic_people --config 128x88 --file_format array_record

or from Python through `jaxpose.data.pair_source("synthetic_people/128x88", "train")`,
which builds it on first use.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import pairs as pairs_lib
from jaxpose.data import records
from jaxpose.data import synthetic


@dataclasses.dataclass
class SyntheticPeopleConfig(tfds.core.BuilderConfig):
  """Image size and counts; train and test identities are disjoint by construction.

  Identities are numbered: train takes `train_identities` from
  `first_train_identity`, test `test_identities` from `first_test_identity`
  (None: right after the train identities). Identity k always looks the same for
  a seed, so two configs with one test range test on the same people.
  """
  height: int = 128
  width: int = 88
  train_identities: int = 400
  test_identities: int = 50
  poses_per_identity: int = 6
  seed: int = 0
  first_train_identity: int = 0
  first_test_identity: int | None = None

  @property
  def train_range(self) -> range:
    return range(self.first_train_identity, self.first_train_identity + self.train_identities)

  @property
  def test_range(self) -> range:
    start = self.train_range.stop if self.first_test_identity is None else self.first_test_identity
    return range(start, start + self.test_identities)

  def __post_init__(self):
    train, test = self.train_range, self.test_range
    if min(train.stop, test.stop) > max(train.start, test.start):
      raise ValueError(f"{self.name}: train identities {train.start}..{train.stop - 1} overlap test identities "
                       f"{test.start}..{test.stop - 1}")


def _config(name, description, **kwargs):
  return SyntheticPeopleConfig(name=name, description=description, **kwargs)


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for synthetic_people."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      _config("128x88", "DeepFashion's aspect at half size (the default): 2,400 train / 300 test images.",
              height=128, width=88),
      _config("256x176", "DeepFashion's full size: 2,400 train / 300 test images.", height=256, width=176),
      _config("64x44", "Quarter size, for the fastest CPU runs.", height=64, width=44),
      _config("128x64", "Market-1501's size.", height=128, width=64),
      _config("64x32", "Market-1501's aspect at half size: halves 5 times (Deformable GAN's and SPT's U-Nets), "
              "where 64x44 halves twice.", height=64, width=32),
      _config("64x44_5000people", "64x44 with 5,000 train people (identities 1000-5999), too many for a model "
              "to learn by heart (the shipped ADGAN base's second stage); its test split is 64x44's (identities "
              "400-449): 30,000 train / 300 test images.",
              height=64, width=44, train_identities=5000, first_train_identity=1000, first_test_identity=400),
      _config("tiny", "For tests: 32x24, 8 train and 3 test identities, 3 poses each.",
              height=32, width=24, train_identities=8, test_identities=3, poses_per_identity=3),
  ]
  DEFAULT_CONFIG_NAME = "128x88"

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return self.dataset_info_from_configs(
        features=records.person_features(config.height, config.width),
        supervised_keys=None,
        homepage="https://github.com/jaxpose/jaxpose",
        metadata=tfds.core.MetadataDict(records.make_metadata(
            height=config.height, width=config.width, parsing_labels="lip", has_parsing=True)),
        # Pairs are stored as indices into each split: record order must be generation order.
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download: everything is rendered from the seed.
    config = self.builder_config
    return {
        "train": self._generate_examples("train", config.train_range.start, len(config.train_range)),
        "test": self._generate_examples("test", config.test_range.start, len(config.test_range)),
    }

  def _generate_examples(self, split: str, first_identity: int, num_identities: int):
    config = self.builder_config
    identities, keypoints = [], []
    people = synthetic.generate_people(
        seed=config.seed, num_identities=num_identities, poses_per_identity=config.poses_per_identity,
        height=config.height, width=config.width, first_identity=first_identity)
    for index, person in enumerate(people):
      identity = f"id{person['identity']:05d}"
      identities.append(identity)
      keypoints.append(person["keypoints"])
      yield index, {
          "image": person["image"],
          "parsing": person["parsing"][..., None],
          "keypoints": person["keypoints"].astype(np.int32),
          "name": person["name"],
          "identity": identity,
      }
    # Runs once the writer has consumed every example, before the metadata is saved.
    pairs = pairs_lib.ordered_pairs_within_identity(identities, keypoints, require_torso=True)
    self.info.metadata[records.METADATA_PAIRS][split] = pairs.tolist()
