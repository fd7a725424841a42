"""market1501_pose dataset: the TFDS checks, and what pair_source reads back, bad inputs included.

dummy_data/ (README.md there lists every entry): train keeps 8 images without
parsing, 6 with the lip config (two LIP maps are bad); test 6 (two distractors).
"""

import pathlib
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from jaxpose.data import bad_input
from jaxpose.data import split_builder
from jaxpose.data import keypoints as kp
from jaxpose.data import pair_source
from tfds_builders import testing as builder_testing
from tfds_builders.market1501_pose import market1501_pose_dataset_builder as builder_lib

DUMMY = pathlib.Path(__file__).parent / "dummy_data"


_Tfrecord = builder_testing.tfrecord_test_base(builder_lib.Builder)


class Market1501PoseNoParsingTest(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["no_parsing"]
  SPLITS = {"train": 8, "test": 6}


class Market1501PoseLipTest(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["lip"]
  SPLITS = {"train": 6, "test": 6}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("market_tfds")
  for config in ("no_parsing", "lip"):
    builder_testing.build(builder_lib.Builder, config, DUMMY, path)
  return str(path)


def test_pair_source_reads_the_build_and_bad_inputs_are_skipped(data_dir):
  train = pair_source("market1501_pose/no_parsing", "train", data_dir)
  assert train.image_size == (128, 64) and not train.has_parsing
  assert builder_testing.image_names(train) == ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0002_c3s1_000551_02.jpg",
                           "0007_c1s6_028546_01.jpg", "0007_c2s3_070952_01.jpg", "0010_c1s1_002301_02.jpg",
                           "0011_c1s1_002501_01.jpg", "0011_c2s1_002551_01.jpg"]
  # 0002: 6 ordered pairs, 0007: 2, 0011: 2; 0010 has one valid image left.
  assert len(train) == 10
  identities = [train.images[i]["identity"].decode() for i in range(len(train.images))]
  assert identities[:3] == ["0002"] * 3
  for i in range(len(train)):
    assert train[i]["source_name"].split("_")[0] == train[i]["target_name"].split("_")[0]
  metadata = tfds.builder_from_directory(f"{data_dir}/market1501_pose/no_parsing/1.0.0").info.metadata
  assert metadata["skipped"]["train"]["by_kind"] == {
      "annotation_malformed_row": 1, "image_missing": 1, "image_truncated": 1, "image_wrong_size": 1,
      "keypoint_outside_image": 1, "pair_image_skipped": 16, "pair_unknown_image": 1}
  problems = "\n".join(metadata["skipped"]["train"]["problems"])
  assert "0010_c2s1_002351_01.jpg: image is 256x128 (HxW), expected 128x64" in problems
  assert "left_ankle at (y=130, x=30) lies outside the 128x64 image" in problems
  # The ankle below the image is missing now; the rest of that image's joints are kept.
  first = train.images[0]["keypoints"]
  assert first[kp.KEYPOINT_INDEX["left_ankle"]].tolist() == [-1, -1] and kp.has_torso(first)
  # JPEG bytes kept: decoding the record gives the file's pixels exactly.
  np.testing.assert_array_equal(train.images[0]["image"],
                                np.asarray(Image.open(DUMMY / "bounding_box_train/0002_c1s1_000451_03.jpg")))
  assert int(train.images[0]["parsing"].max()) == 0
  # Test: distractors stored (annotated), never paired.
  test = pair_source("market1501_pose/no_parsing", "test", data_dir)
  assert len(test.images) == 6 and len(test) == 4
  paired = {test[i]["source_name"] for i in range(len(test))}
  assert "0000_c1s1_000151_01.jpg" in builder_testing.image_names(test) and "0000_c1s1_000151_01.jpg" not in paired


def test_lip_config_stores_the_parsing_maps_and_skips_bad_ones(data_dir):
  train = pair_source("market1501_pose/lip", "train", data_dir)
  assert train.has_parsing and train.parsing_labels == "lip"
  assert "0011_c1s1_002501_01.jpg" not in builder_testing.image_names(train) and len(train.images) == 6
  np.testing.assert_array_equal(train.images[0]["parsing"][..., 0],
                                np.asarray(Image.open(DUMMY / "parsing_lip/train/0002_c1s1_000451_03.png")))
  metadata = tfds.builder_from_directory(f"{data_dir}/market1501_pose/lip/1.0.0").info.metadata
  assert metadata["skipped"]["train"]["by_kind"]["parsing_wrong_shape"] == 1
  assert metadata["skipped"]["train"]["by_kind"]["parsing_bad_labels"] == 1
  assert any("labels span [0, 20], expected 0..19" in p for p in metadata["skipped"]["train"]["problems"])


def test_patn_folder_names_and_layout_errors(tmp_path, monkeypatch):
  # PATN renames bounding_box_train/test to train/ and test/.
  renamed = tmp_path / "market_data"
  shutil.copytree(DUMMY, renamed, ignore=shutil.ignore_patterns("bounding_box_*"))
  for split in ("train", "test"):
    shutil.copytree(DUMMY / f"bounding_box_{split}", renamed / split)
  assert builder_testing.build(builder_lib.Builder, "no_parsing", renamed, tmp_path / "out").info.splits["test"].num_examples == 6

  def no_generation(*args, **kwargs):
    raise AssertionError("records were generated before the layout was checked")
  monkeypatch.setattr(split_builder, "person_records", no_generation)
  no_csv = tmp_path / "no_csv"
  shutil.copytree(DUMMY, no_csv, ignore=shutil.ignore_patterns("market-pairs-test.csv"))
  with pytest.raises(bad_input.LayoutError,
                     match=r"expected market-pairs-test.csv in .*; found: .*bounding_box_test/, bounding_box_train/"):
    builder_testing.build(builder_lib.Builder, "no_parsing", no_csv, tmp_path / "out2")
  with pytest.raises(bad_input.LayoutError, match=r"parsing_lip/train/ \(LIP parsing PNGs"):
    builder_testing.build(builder_lib.Builder, "lip", _without(tmp_path, "parsing_lip"), tmp_path / "out3")


def _without(tmp_path, pattern: str) -> pathlib.Path:
  out = tmp_path / f"without_{pattern}"
  shutil.copytree(DUMMY, out, ignore=shutil.ignore_patterns(pattern))
  return out


def test_adgan_market_config_reads_this_dataset_through_the_pipeline(data_dir):
  from configs import adgan_market  # pylint: disable=g-import-not-at-top
  from jaxpose.data import pipeline  # pylint: disable=g-import-not-at-top
  config = adgan_market.get_config("tiny")
  source = pair_source(config.data.name, "train", data_dir)
  assert tuple(config.data.image_size) == source.image_size and source.has_parsing
  transform = pipeline.transform_for(source, heatmap_sigma=config.data.heatmap_sigma,
                                     heatmap_mode=config.data.heatmap_mode, parsing_merge=config.data.parsing_merge)
  example = transform.map(source[0])
  assert example["source_pose"].shape == (128, 64, 18) and example["target_parsing"].shape == (128, 64, 8)
  # Gaussian heatmaps: more than one non-zero pixel per present joint.
  assert (example["source_pose"][..., 1] > 0).sum() > 1
  np.testing.assert_allclose(example["source_parsing"].sum(-1), 1.0)

if __name__ == "__main__":
  tfds.testing.test_main()
