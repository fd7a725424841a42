"""anime_pose dataset: the TFDS checks, the letterbox transform, the split rule and bad inputs.

dummy_data/ (README.md there lists every entry): characters alice, bob, carol
(train) and dave (test, by test_characters.txt); train keeps 6 images, test 2.
The synthetic anime characters (`jaxpose.data.synthetic_anime`) build here too.
"""

import hashlib
import json
import pathlib
import shutil

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import split_builder
from jaxpose.data import keypoints as kp
from jaxpose.data import pair_source
from tfds_builders import testing as builder_testing
from tfds_builders.anime_pose import anime_pose_dataset_builder as builder_lib

DUMMY = pathlib.Path(__file__).parent / "dummy_data"


_Tfrecord = builder_testing.tfrecord_test_base(builder_lib.Builder)


class AnimePoseTest(_Tfrecord, tfds.testing.DatasetBuilderTestCase):
  BUILDER_CONFIG_NAMES_TO_TEST = ["256x176", "128x88_adgan8"]
  SPLITS = {"train": 6, "test": 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp("anime_tfds")
  for config in ("256x176", "256x176_self_pairs", "128x88_adgan8", "64x44"):
    builder_testing.build(builder_lib.Builder, config, DUMMY, path)
  return str(path)


def _csv_keypoints(character: str, file_name: str) -> np.ndarray:
  for line in (DUMMY / character / "keypoints.csv").read_text().splitlines()[1:]:
    name, ys, xs = line.split(":")
    if name == file_name:
      return np.stack([json.loads(ys), json.loads(xs)], -1)
  raise KeyError(file_name)


def test_images_are_letterboxed_with_their_keypoints_and_parsing(data_dir):
  train = pair_source("anime_pose/256x176", "train", data_dir)
  assert train.image_size == (256, 176) and train.parsing_labels == "lip"
  assert builder_testing.image_names(train) == ["alice/a01.jpg", "alice/a02.png", "alice/a03.png", "bob/b01.jpg", "bob/b02.jpg",
                           "carol/c01.jpg"]
  # alice/a01.jpg is 240x180: scale min(256/240, 176/180) -> 235x176, 10 rows of padding above.
  record = train.images[0]
  source = _csv_keypoints("alice", "a01.jpg")
  expected = np.stack([np.floor((source[:, 0] + 0.5) * 235 / 240) + 10,
                       np.floor((source[:, 1] + 0.5) * 176 / 180)], -1)
  expected[~kp.is_present(source)] = -1
  np.testing.assert_array_equal(record["keypoints"], expected)
  # Padding: one colour (the image's border median), background (0) in the parsing map.
  pad = record["image"][:10].reshape(-1, 3)
  assert (pad == pad[0]).all() and (record["parsing"][:10] == 0).all() and (record["parsing"][245:] == 0).all()
  assert record["parsing"][10:245].max() > 0
  # The parsing map went through the same geometry: PIL's nearest-neighbour resize to 235x176,
  # placed at row 10 (PIL breaks exact sampling ties the other way: allow a few pixels).
  lip = Image.open(DUMMY / "alice/parsing_lip/a01.png")
  resized = np.asarray(lip.resize((176, 235), Image.Resampling.NEAREST))
  assert (record["parsing"][10:245, :, 0] == resized).mean() > 0.99
  # The transparent PNG (200x200 -> 176x176 at row 40) is composited on white.
  transparent = train.images[1]["image"]
  assert transparent[41, 2].tolist() == [255, 255, 255]
  # alice/a03.png's nose was at x = 245 of a 240-wide image: reported and missing.
  assert train.images[2]["keypoints"][kp.KEYPOINT_INDEX["nose"]].tolist() == [-1, -1]
  for i in range(len(train.images)):
    points = train.images[i]["keypoints"]
    kp.validate(points, 256, 176)


def test_pairs_split_rule_and_bad_inputs(data_dir):
  builder = builder_lib.Builder(config="256x176", data_dir=data_dir)
  metadata = builder.info.metadata
  assert metadata["characters"] == {"train": ["alice", "bob", "carol"], "test": ["dave"]}
  assert "test_characters.txt" in metadata["split_rule"]
  assert metadata["skipped"]["train"]["by_kind"] == {
      "annotation_malformed_row": 1, "image_missing": 1, "image_truncated": 1, "image_wrong_size": 1,
      "keypoint_outside_image": 1, "parsing_bad_labels": 1, "parsing_wrong_shape": 1}
  problems = "\n".join(metadata["skipped"]["train"]["problems"])
  assert "bob/keypoints.csv:7: expected 3 ':'-separated fields" in problems
  assert "bob/b05.jpg: image is 8x8 (HxW), smaller than 16 pixels" in problems
  train = pair_source("anime_pose/256x176", "train", data_dir)
  identities = [train.images[i]["identity"].decode() for i in range(len(train.images))]
  torso = [kp.has_torso(train.images[i]["keypoints"]) for i in range(len(train.images))]
  # Every ordered pair of distinct images of one character, both with a torso.
  expected = sorted((s, t) for s in range(6) for t in range(6)
                    if s != t and identities[s] == identities[t] and torso[s] and torso[t])
  assert sorted(map(tuple, train.pairs.tolist())) == expected and expected
  with_self = pair_source("anime_pose/256x176_self_pairs", "train", data_dir)
  assert sorted(map(tuple, with_self.pairs.tolist())) == sorted(expected + [(i, i) for i in range(6) if torso[i]])
  small = pair_source("anime_pose/128x88_adgan8", "test", data_dir)
  assert small.image_size == (128, 88) and small.parsing_labels == "adgan8" and len(small) == 2
  assert int(small.images[0]["parsing"].max()) < 8
  # 64x44 (the synthetic configs' size): the same images, their keypoints a quarter of 256x176's.
  smallest = pair_source("anime_pose/64x44", "train", data_dir)
  assert smallest.image_size == (64, 44) and builder_testing.image_names(smallest) == builder_testing.image_names(train)
  assert sorted(map(tuple, smallest.pairs.tolist())) == expected
  for i in range(len(train.images)):
    large, quarter = train.images[i]["keypoints"], smallest.images[i]["keypoints"]
    np.testing.assert_array_equal(kp.is_present(large), kp.is_present(quarter))
    present = kp.is_present(large)
    assert np.abs(quarter[present] * 4 - large[present]).max() <= 6  # two letterboxes' rounding and padding
    assert int(smallest.images[i]["parsing"].max()) > 8  # LIP labels, not the 8 merged ones


def test_holdout_without_test_characters_and_layout_errors(tmp_path, monkeypatch):
  no_list = tmp_path / "no_list"
  shutil.copytree(DUMMY, no_list, ignore=shutil.ignore_patterns("test_characters.txt", "bob", "carol"))
  builder = builder_testing.build(builder_lib.Builder, "128x88", no_list, tmp_path / "out")
  # Two characters: one held out, the one with the smaller SHA-256 of its name.
  held_out = min(["alice", "dave"], key=lambda n: hashlib.sha256(n.encode()).hexdigest())
  assert builder.info.metadata["characters"]["test"] == [held_out]
  assert "holdout" in builder.info.metadata["split_rule"]

  def no_generation(*args, **kwargs):
    raise AssertionError("records were generated before the layout was checked")
  monkeypatch.setattr(split_builder, "person_records", no_generation)
  typo = tmp_path / "typo"
  shutil.copytree(DUMMY, typo)
  (typo / "test_characters.txt").write_text("davе\n")  # a Cyrillic 'е'
  with pytest.raises(bad_input.LayoutError, match=r"names \['davе'\], which are not character folders"):
    builder_testing.build(builder_lib.Builder, "128x88", typo, tmp_path / "out2")
  single = tmp_path / "single"
  shutil.copytree(DUMMY / "alice", single / "alice")
  with pytest.raises(bad_input.LayoutError, match="found one character"):
    builder_testing.build(builder_lib.Builder, "128x88", single, tmp_path / "out3")
  flat = tmp_path / "flat"
  flat.mkdir()
  shutil.copy(DUMMY / "alice/a01.jpg", flat / "a01.jpg")
  with pytest.raises(bad_input.LayoutError, match=r"expected one folder per character .*found: a01.jpg"):
    builder_testing.build(builder_lib.Builder, "128x88", flat, tmp_path / "out4")


def test_finetune_config_reads_this_dataset_and_requires_init_from(data_dir):
  from configs import adgan_anime_finetune  # pylint: disable=g-import-not-at-top
  from jaxpose.data import pipeline  # pylint: disable=g-import-not-at-top
  config = adgan_anime_finetune.get_config()
  assert not pathlib.Path(config.init_from).exists() and "required" in config.init_from
  assert config.data.heatmap_mode == "spike" and config.optim.learning_rate == 1e-4
  source = pair_source(config.data.name, "train", data_dir)
  assert tuple(config.data.image_size) == source.image_size == (256, 176)
  transform = pipeline.transform_for(source, heatmap_sigma=config.data.heatmap_sigma,
                                     heatmap_mode=config.data.heatmap_mode, parsing_merge=config.data.parsing_merge)
  example = transform.map(source[0])
  assert example["source_parsing"].shape == (256, 176, 8)
  # Spike heatmaps: one pixel per present joint, where the keypoint is.
  y, x = example["source_keypoints"][1]
  assert example["source_pose"][..., 1].sum() == 1 and example["source_pose"][y, x, 1] == 1
  tiny = adgan_anime_finetune.get_config("tiny")
  assert tiny.data.name == "anime_pose/128x88" and tiny.data.name.split("/")[1] in [
      c.name for c in builder_lib.Builder.BUILDER_CONFIGS]

def test_synthetic_anime_characters_build_into_their_splits_and_pairs(tmp_path):
  from jaxpose.data import synthetic_anime  # pylint: disable=g-import-not-at-top
  manual = tmp_path / "manual"
  characters = synthetic_anime.write_anime_characters(manual, seed=0)
  builder = builder_testing.build(builder_lib.Builder, "64x44", manual, tmp_path / "tfds")
  expected = synthetic_anime.summary(characters)
  assert {split: expected[split]["pictures"] for split in expected} == {"train": 11, "test": 3}
  assert {split: expected[split]["pairs"] for split in expected} == {"train": 30, "test": 6}
  metadata = builder.info.metadata
  assert "test_characters.txt" in metadata["split_rule"]
  by_name = {c.name: c for c in characters}
  for split in ("train", "test"):
    assert metadata["characters"][split] == sorted(expected[split]["characters"])
    assert metadata["skipped"][split]["by_kind"] == {}
    source = pair_source("anime_pose/64x44", split, str(tmp_path / "tfds"))
    assert source.image_size == (64, 44) and source.parsing_labels == "lip"
    assert len(source.images) == expected[split]["pictures"] and len(source) == expected[split]["pairs"]
    # 256x176 -> 64x44 is an exact 4x reduction: every keypoint maps to the pixel holding its centre.
    for i, name in enumerate(builder_testing.image_names(source)):
      character, file_name = name.split("/")
      written = annotation_csv.read_annotation_csv(manual / character / "keypoints.csv",
                                                bad_input.BadInputReport("anime", split))[file_name].keypoints
      present = kp.is_present(written)
      record = source.images[i]
      np.testing.assert_array_equal(record["keypoints"][present], (written[present] + 0.5) // 4)
      assert (record["keypoints"][~present] == -1).all() and file_name in by_name[character].pictures


if __name__ == "__main__":
  tfds.testing.test_main()
