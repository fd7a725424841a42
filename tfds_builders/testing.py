"""Helpers shared by the real-data builders' tests and the tests that train on their dummy_data."""

from __future__ import annotations

import tensorflow_datasets as tfds


def tfrecord_test_base(builder_class: type) -> type:
  """A mixin for `tfds.testing.DatasetBuilderTestCase` that builds `builder_class` as tfrecord.

  The stock TFDS checks read through tf.data, which array_record (our default) does not offer.
  """

  class TfrecordBase:
    DATASET_CLASS = builder_class
    SKIP_CHECKSUMS = True  # nothing is downloaded

    def _make_builder(self, config=None):
      return self.dataset_class(data_dir=self.tmp_dir, config=config, version=self.VERSION, file_format="tfrecord")

  return TfrecordBase


def build(builder_class: type, config: str, manual_dir, data_dir) -> tfds.core.DatasetBuilder:
  """Builds `config` of `builder_class` from `manual_dir` into `data_dir` (the builders' default format)."""
  builder = builder_class(config=config, data_dir=str(data_dir))
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual_dir)))
  return builder


def image_names(source) -> list[str]:
  """The stored image names of a `pair_source`, in storage order."""
  return [source.images[i]["name"].decode() for i in range(len(source.images))]
