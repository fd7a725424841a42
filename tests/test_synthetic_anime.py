"""The synthetic anime characters: the anime_pose manual layout, split counts, distinct and
consistent characters, determinism and the command. (The build with the real builder is
tested beside it, in tfds_builders/anime_pose.)"""

import itertools
import pathlib

import numpy as np
from PIL import Image
import pytest

from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import image_io
from jaxpose.data import keypoints as kp
from jaxpose.data import parsing
from jaxpose.data import synthetic
from jaxpose.data import synthetic_anime
from jaxpose.data.parsing import LIP


@pytest.fixture(scope="module")
def written(tmp_path_factory):
  root = tmp_path_factory.mktemp("anime") / "characters"
  return root, synthetic_anime.write_anime_characters(root, seed=0)


def _modal_color(image: np.ndarray, mask: np.ndarray) -> tuple[int, ...]:
  colours, counts = np.unique(image[mask], axis=0, return_counts=True)
  return tuple(int(c) for c in colours[counts.argmax()])


def test_the_folder_is_the_anime_pose_manual_layout(written):
  root, characters = written
  assert [len(c.pictures) for c in characters] == [4, 4, 3, 3]
  assert [c.split for c in characters] == ["train", "train", "train", "test"]
  assert sorted(p.name for p in root.iterdir()) == sorted([c.name for c in characters] + ["test_characters.txt"])
  listed = [line for line in (root / "test_characters.txt").read_text().splitlines() if not line.startswith("#")]
  assert listed == [characters[-1].name]
  assert synthetic_anime.summary(characters) == {
      "train": {"characters": [c.name for c in characters[:3]], "pictures": 11, "pairs": 30},
      "test": {"characters": [characters[3].name], "pictures": 3, "pairs": 6}}
  for character in characters:
    folder = root / character.name
    annotation_csv.check_annotation_header(folder / "keypoints.csv")
    report = bad_input.BadInputReport("synthetic_anime", character.split)
    rows = annotation_csv.read_annotation_csv(folder / "keypoints.csv", report)
    assert not report.problems and list(rows) == list(character.pictures)
    assert image_io.image_files(folder) == list(character.pictures)
    for picture, j in zip(character.pictures, character.pose_indices):
      stem = pathlib.Path(picture).stem
      image = np.asarray(Image.open(folder / picture))
      lip = np.asarray(Image.open(folder / "parsing_lip" / f"{stem}.png"))
      adgan8 = np.asarray(Image.open(folder / "parsing_adgan8" / f"{stem}.png"))
      assert image.shape == (256, 176, 3) and image.dtype == np.uint8 and lip.shape == (256, 176)
      np.testing.assert_array_equal(adgan8, parsing.merge(lip, "lip", "adgan8"))
      # Exactly the renderer's output for that identity and pose, keypoints included.
      pose = synthetic.sample_pose(synthetic.pose_rng(0, character.identity_index, j))
      person = synthetic.render(character.identity, pose, 256, 176)
      np.testing.assert_array_equal(image, person["image"])
      np.testing.assert_array_equal(lip, person["parsing"])
      np.testing.assert_array_equal(rows[picture].keypoints, person["keypoints"])
      assert kp.has_torso(person["keypoints"]) and pose.body_height <= 1.05


def test_characters_are_distinct_and_each_keeps_its_look_across_its_poses(written):
  root, characters = written
  assert len({c.name for c in characters}) == len(characters)
  assert len({c.identity.hair_style for c in characters}) == len(characters)
  for a, b in itertools.combinations(characters, 2):
    assert np.linalg.norm(np.subtract(a.identity.hair_color, b.identity.hair_color)) > 60, (a.name, b.name)
  for character in characters:
    assert character.name == f"{synthetic.anime_hair_name(character.identity)}_{character.identity.hair_style}"
    keypoints = []
    for picture in character.pictures:
      image = np.asarray(Image.open(root / character.name / picture))
      lip = np.asarray(Image.open(root / character.name / "parsing_lip" / picture))
      # Flat colours: the hair and the upper garment show exactly the character's own colours.
      assert _modal_color(image, lip == LIP["hair"]) == character.identity.hair_color
      assert _modal_color(image, np.isin(lip, synthetic.UPPER_CLOTHES_LABELS)) == character.identity.upper_color
      keypoints.append(annotation_csv.read_annotation_csv(
          root / character.name / "keypoints.csv", bad_input.BadInputReport("a", "b"))[picture].keypoints)
    for a, b in itertools.combinations(keypoints, 2):  # different poses
      both = kp.is_present(a) & kp.is_present(b)
      assert np.abs(a[both] - b[both]).max() > 8


def test_the_command_is_deterministic_and_never_writes_into_a_used_folder(written, tmp_path):
  root, _ = written
  again = tmp_path / "again"
  result = synthetic_anime.main(["--output", str(again), "--contact_sheet", str(tmp_path / "sheet.png")])
  assert result["train"]["pairs"] == 30 and result["test"]["pictures"] == 3 and result["size"] == [256, 176]
  files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
  assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file()) and len(files) == 14 * 3 + 5
  for name in files:
    assert (root / name).read_bytes() == (again / name).read_bytes(), name
  sheet = Image.open(tmp_path / "sheet.png")
  assert sheet.size == (8 * 178 + 2, 4 * 258 + 2)  # 4 pictures of a character a row, each with its parsing
  assert (tmp_path / "sheet.png").stat().st_size < 300_000
  with pytest.raises(FileExistsError, match="not empty"):
    synthetic_anime.write_anime_characters(again)
  with pytest.raises(ValueError, match="2 or more pictures"):
    synthetic_anime.write_anime_characters(tmp_path / "one", pictures_per_character=(3, 1))
  with pytest.raises(ValueError, match="both splits"):
    synthetic_anime.write_anime_characters(tmp_path / "all_test", pictures_per_character=(2, 2), num_test_characters=2)
  # Another seed, size and roster.
  other = synthetic_anime.write_anime_characters(tmp_path / "other", seed=1, image_size=(128, 88),
                                                 pictures_per_character=(2, 2, 2, 2, 2), num_test_characters=2)
  assert [c.split for c in other] == ["train"] * 3 + ["test"] * 2
  assert Image.open(tmp_path / "other" / other[0].name / "01.png").size == (88, 128)
