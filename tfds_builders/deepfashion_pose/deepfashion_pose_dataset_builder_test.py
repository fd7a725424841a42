"""deepfashion_pose dataset: the TFDS checks, and what pair_source reads back, bad inputs included.

dummy_data/ holds the official layouts with good and bad entries; its README.md
lists them. Train keeps 6 of its images (8 without parsing), test 3.
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
from tfds_builders.deepfashion_pose import deepfashion_pose_dataset_builder as builder_lib

DUMMY = pathlib.Path(__file__).parent / "dummy_data"
A1 = "fashionWOMENBlouses_Shirtsid0000635004_1front.jpg"
A2 = "fashionWOMENBlouses_Shirtsid0000635004_2side.jpg"
B2 = "fashionMENDenimid0000008001_2side.jpg"
C1 = "fashionWOMENDressesid0000123402_1front.jpg"
D1 = "fashionMENTees_Tanksid0000432103_1front.jpg"
D2 = "fashionMENTees_Tanksid0000432103_2side.jpg"


_Tfrecord = builder_testing.tfrecord_test_base(builder_lib.Builder)


class DeepFashionPoseParsingTest(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["adgan8", "lip"]
  SPLITS = {"train": 6, "test": 3}


class DeepFashionPoseNoParsingTest(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  # The two images with bad parsing maps are valid without parsing.
  BUILDER_CONFIG_NAMES_TO_TEST = ["no_parsing"]
  SPLITS = {"train": 8, "test": 3}


class DeepFashionPoseUncroppedTest(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["uncropped_adgan8", "uncropped_lip"]
  SPLITS = {"train": 6, "test": 3}


class DeepFashionPoseUncropped256Test(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  # Def-GAN's own 256x256 frame, without parsing.
  BUILDER_CONFIG_NAMES_TO_TEST = ["uncropped_256x256"]
  SPLITS = {"train": 6, "test": 3}


class DeepFashionPoseFullFrameTest(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["fullframe_lip"]
  SPLITS = {"train": 6, "test": 3}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """adgan8, no_parsing and uncropped_adgan8 built once from dummy_data, in array_record."""
  path = tmp_path_factory.mktemp("deepfashion_tfds")
  for config in ("adgan8", "no_parsing", "uncropped_adgan8"):
    builder_testing.build(builder_lib.Builder, config, DUMMY, path)
  return str(path)


def test_pair_source_reads_the_build_and_bad_inputs_are_skipped_with_reasons(data_dir):
  train = pair_source("deepfashion_pose/adgan8", "train", data_dir)
  assert train.image_size == (256, 176) and train.parsing_labels == "adgan8" and train.has_parsing
  # Exactly the six valid images, in annotation order; every bad one is gone.
  assert builder_testing.image_names(train) == [A1, A2, "fashionMENDenimid0000008001_1front.jpg", B2, C1,
                           "fashionWOMENDressesid0000123402_2side.jpg"]
  # The pairs CSV has 32 rows (one malformed); only the six between valid images survive, in file order.
  pairs = [(train[i]["source_name"], train[i]["target_name"]) for i in range(len(train))]
  assert pairs[:2] == [(A1, A2), (A2, A1)] and len(pairs) == 6
  for i in range(len(train)):
    assert train[i]["source_name"].rsplit("_", 1)[0] == train[i]["target_name"].rsplit("_", 1)[0]
  skipped = tfds.builder_from_directory(f"{data_dir}/deepfashion_pose/adgan8/1.0.0").info.metadata["skipped"]
  assert skipped["train"]["by_kind"] == {
      "annotation_duplicate_name": 1, "annotation_malformed_row": 3, "image_missing": 1,
      "image_truncated": 1, "image_unreadable": 1, "image_wrong_size": 1, "keypoint_outside_image": 2,
      "pair_image_skipped": 24, "pair_unknown_image": 1, "pairs_malformed_row": 1,
      "parsing_bad_labels": 1, "parsing_path_unknown": 1, "parsing_wrong_shape": 1}
  assert skipped["train"]["images"] == 10 and skipped["train"]["pairs"] == 26
  assert skipped["train"]["unannotated_images"] == 1  # stray_unannotated.jpg
  problems = "\n".join(skipped["train"]["problems"])
  for file, reason in [("fashionMENDenimid0000008001_3back.jpg", "truncated"),
                       ("fashionWOMENDressesid0000123402_4full.jpg", "128x88 (HxW), expected 256x176"),
                       ("fashionMENTees_Tanksid0000432103_3back.jpg", "not an image file"),
                       ("03_1_front.npy", "shape (10, 10), expected 256x176"),
                       ("03_2_side.npy", "labels span [0, 9], expected 0..7"),
                       ("fashion-resize-annotation-train.csv:", "found 1"),
                       ("fashion-resize-annotation-train.csv:", "keypoints_y has 17 values"),
                       ("fashion-resize-annotation-train.csv:", "non-numeric or non-integer coordinate 'nan'"),
                       ("fashion-resize-annotation-train.csv:", "img_00001.jpg: expected a flattened In-shop name")]:
    assert any(file in line and reason in line for line in problems.splitlines()), (file, reason)
  test = pair_source("deepfashion_pose/adgan8", "test", data_dir)
  assert len(test.images) == 3 and len(test) == 6


def test_records_keep_the_jpeg_bytes_and_the_keypoints_and_parsing_of_the_files(data_dir):
  train = pair_source("deepfashion_pose/adgan8", "train", data_dir)
  record = train.images[0]
  # Decoding the stored image gives the file's own pixels: its bytes were not re-encoded.
  original = np.asarray(Image.open(DUMMY / "fashion_resize/train" / A1))
  np.testing.assert_array_equal(record["image"], original)
  np.testing.assert_array_equal(
      record["parsing"][..., 0],
      np.load(DUMMY / "semantic_merge3/WOMEN/Blouses_Shirts/id_00006350/04_1_front.npy"))
  rows = {line.split(":")[0]: line for line in (DUMMY / "fashion-resize-annotation-train.csv").read_text().splitlines()}
  _, ys, xs = rows[A1].split(":")
  np.testing.assert_array_equal(record["keypoints"], np.stack([eval(ys), eval(xs)], -1))  # noqa: S307 (test data)
  # The joints outside the image (C1's wrist at x = 180; B2's wrist with only x = -1) became missing.
  names = builder_testing.image_names(train)
  assert train.images[names.index(C1)]["keypoints"][kp.KEYPOINT_INDEX["right_wrist"]].tolist() == [-1, -1]
  assert train.images[names.index(B2)]["keypoints"][kp.KEYPOINT_INDEX["left_wrist"]].tolist() == [-1, -1]
  assert train.images[names.index(C1)]["keypoints"][kp.KEYPOINT_INDEX["neck"]].min() >= 0


def test_no_parsing_keeps_the_images_whose_parsing_is_bad_and_stores_zero_maps(data_dir):
  train = pair_source("deepfashion_pose/no_parsing", "train", data_dir)
  assert not train.has_parsing
  assert D1 in builder_testing.image_names(train) and D2 in builder_testing.image_names(train) and len(train) == 8
  assert all(int(train.images[i]["parsing"].max()) == 0 for i in range(len(train.images)))


def test_uncropped_config_applies_the_official_centre_crop(data_dir):
  cropped = pair_source("deepfashion_pose/uncropped_adgan8", "train", data_dir)
  resized = pair_source("deepfashion_pose/adgan8", "train", data_dir)
  # Def-GAN names ("fasion", no '_' in the category) still find semantic_merge3/WOMEN/Blouses_Shirts/.
  assert builder_testing.image_names(cropped)[0] == "fasionWOMENBlousesShirtsid0000635004_1front.jpg"
  for i in range(len(cropped.images)):
    a, b = cropped.images[i], resized.images[i]
    assert a["image"].shape == (256, 176, 3)
    # Same person: pixels equal up to JPEG noise, parsing and (x - 40) keypoints exactly.
    assert np.abs(a["image"].astype(int) - b["image"].astype(int)).mean() < 3
    np.testing.assert_array_equal(a["parsing"], b["parsing"])
    np.testing.assert_array_equal(a["keypoints"], b["keypoints"])
  assert len(cropped) == 6


def test_wrong_layouts_fail_at_once_saying_what_was_expected_and_found(tmp_path, monkeypatch):
  def no_generation(*args, **kwargs):
    raise AssertionError("records were generated before the layout was checked")
  monkeypatch.setattr(split_builder, "person_records", no_generation)
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "readme.txt").write_text("hello")
  with pytest.raises(bad_input.LayoutError, match=r"expected fashion_resize/train/ .*256x176 JPEGs.*"
                     r"fashion-resize-annotation-train.csv.*found: readme.txt"):
    builder_testing.build(builder_lib.Builder, "adgan8", empty, tmp_path / "out")
  # The uncropped 256x256 images handed to the 256x176 config: a hint, not 48,000 skipped images.
  wrong = tmp_path / "wrong"
  shutil.copytree(DUMMY, wrong)
  shutil.rmtree(wrong / "fashion_resize/train")
  shutil.copytree(DUMMY / "fasion-dataset/train", wrong / "fashion_resize/train")
  with pytest.raises(bad_input.LayoutError, match=r"expected 256x176 \(HxW\) images .* is 256x256.*uncropped"):
    builder_testing.build(builder_lib.Builder, "adgan8", wrong, tmp_path / "out")
  # A comma-separated annotation file is not the official format.
  commas = tmp_path / "commas"
  shutil.copytree(DUMMY, commas)
  csv = commas / "fashion-resize-annotation-test.csv"
  csv.write_text(csv.read_text().replace(":", ","))
  with pytest.raises(bad_input.LayoutError, match="expected the header 'name:keypoints_y:keypoints_x'"):
    builder_testing.build(builder_lib.Builder, "adgan8", commas, tmp_path / "out")
  # Missing parsing for the lip config.
  no_lip = tmp_path / "no_lip"
  shutil.copytree(DUMMY, no_lip, ignore=shutil.ignore_patterns("parsing_lip"))
  with pytest.raises(bad_input.LayoutError, match=r"parsing_lip/train/ \(parsing for config lip\)"):
    builder_testing.build(builder_lib.Builder, "lip", no_lip, tmp_path / "out")


def test_patn_spelling_and_layout_are_found(tmp_path):
  # PATN: fashion_data/ given as the manual dir, train/ and test/ inside, "fasion-resize-" files.
  patn = tmp_path / "fashion_data"
  patn.mkdir()
  for split in ("train", "test"):
    shutil.copytree(DUMMY / "fashion_resize" / split, patn / split)
    for kind in ("annotation", "pairs"):
      shutil.copy(DUMMY / f"fashion-resize-{kind}-{split}.csv", patn / f"fasion-resize-{kind}-{split}.csv")
  builder = builder_testing.build(builder_lib.Builder, "no_parsing", patn, tmp_path / "out")
  assert builder.info.splits["train"].num_examples == 8
  assert builder.info.metadata["source_files"]["train"]["annotation_csv"].endswith("fasion-resize-annotation-train.csv")


def test_adgan_deepfashion_config_names_the_default_config_of_this_builder(data_dir):
  from configs import adgan_deepfashion  # pylint: disable=g-import-not-at-top
  config = adgan_deepfashion.get_config()
  source = pair_source(config.data.name, "test", data_dir)
  assert source.name == "deepfashion_pose/adgan8" and source.image_size == tuple(config.data.image_size)
  assert source.parsing_labels == config.data.parsing_merge == "adgan8"

if __name__ == "__main__":
  tfds.testing.test_main()


def test_fullframe_config_keeps_the_256x256_frame(tmp_path):
  """fullframe_lip = uncropped_lip before its centre crop: pixels, parsing and keypoints (x + 40)."""
  for config in ("fullframe_lip", "uncropped_lip"):
    builder_testing.build(builder_lib.Builder, config, DUMMY, tmp_path)
  full = pair_source("deepfashion_pose/fullframe_lip", "train", str(tmp_path))
  cropped = pair_source("deepfashion_pose/uncropped_lip", "train", str(tmp_path))
  assert full.image_size == (256, 256) and full.parsing_labels == "lip" and len(full) == len(cropped)
  assert builder_testing.image_names(full) == builder_testing.image_names(cropped)
  for i in range(len(full.images)):
    a, b = full.images[i], cropped.images[i]
    assert a["image"].shape == (256, 256, 3)
    np.testing.assert_array_equal(a["image"][:, 40:216], b["image"])
    np.testing.assert_array_equal(a["parsing"][:, 40:216], b["parsing"])
    inside = b["keypoints"][:, 0] >= 0
    np.testing.assert_array_equal(a["keypoints"][inside], b["keypoints"][inside] + np.array([0, 40]))
