"""Writes anime_pose's dummy_data: a tiny folder of "characters", good and bad.

  .venv/bin/python tfds_builders/anime_pose/dummy_data/make_fixtures.py

rewrites this folder; README.md here lists every case and the counts the builder
test expects. The characters are `jaxpose.data.synthetic` people rendered at
assorted sizes and aspect ratios (deterministic), saved as JPEG, RGB PNG and
transparent PNG, each with LIP parsing PNGs and ADGAN-8 maps (.png, one .npy).
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
from PIL import Image

from jaxpose.data import annotation_csv
from jaxpose.data import parsing
from jaxpose.data import synthetic

HERE = pathlib.Path(__file__).resolve().parent
SEED = 23
CHARACTERS = ("alice", "bob", "carol", "dave")


def render(identity_index: int, view_index: int, height: int, width: int) -> dict:
  identity = synthetic.sample_identity(synthetic.identity_rng(SEED, identity_index))
  pose = synthetic.sample_pose(synthetic.pose_rng(SEED, identity_index, view_index))
  return synthetic.render(identity, pose, height, width)


def save_labels(path: pathlib.Path, labels: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  if path.suffix == ".npy":
    np.save(path, np.asarray(labels, np.uint8))
  else:
    Image.fromarray(np.asarray(labels, np.uint8)).save(path, format="PNG", optimize=True)


class Character:
  """Writes one character folder."""

  def __init__(self, root: pathlib.Path, name: str, identity_index: int):
    self.folder = root / name
    self.folder.mkdir(parents=True)
    self.identity_index = identity_index
    self.rows: list[str] = []
    self.views = 0

  def image(self, file_name: str, height: int, width: int, *, keypoints=None, lip=None, adgan8=None,
            adgan8_suffix: str = ".png", transparent: bool = False) -> dict:
    person = render(self.identity_index, self.views, height, width)
    self.views += 1
    path = self.folder / file_name
    if transparent:
      rgba = np.concatenate([person["image"], np.where(person["parsing"] > 0, 255, 0)[..., None]], -1)
      Image.fromarray(rgba.astype(np.uint8), "RGBA").save(path, format="PNG", optimize=True)
    elif path.suffix == ".png":
      Image.fromarray(person["image"]).save(path, format="PNG", optimize=True)
    else:
      Image.fromarray(person["image"]).save(path, format="JPEG", quality=85)
    stem = path.stem
    save_labels(self.folder / "parsing_lip" / f"{stem}.png", person["parsing"] if lip is None else lip)
    merged = parsing.merge(person["parsing"], "lip", "adgan8")
    save_labels(self.folder / "parsing_adgan8" / f"{stem}{adgan8_suffix}", merged if adgan8 is None else adgan8)
    self.rows.append(annotation_csv.format_annotation_row(file_name, person["keypoints"] if keypoints is None else keypoints))
    return person

  def write_csv(self, extra_rows=()) -> None:
    (self.folder / "keypoints.csv").write_text(
        "\n".join(["name:keypoints_y:keypoints_x", *self.rows, *extra_rows]) + "\n")


def main() -> None:
  root = HERE
  for entry in (*CHARACTERS, "notes"):
    shutil.rmtree(root / entry, ignore_errors=True)
  (root / "test_characters.txt").write_text("# the test split\ndave\n")

  # alice: a portrait JPEG, a square transparent PNG (one .npy 8-class map), a
  # landscape PNG with a joint right of the image.
  alice = Character(root, "alice", 0)
  alice.image("a01.jpg", 240, 180)
  alice.image("a02.png", 200, 200, transparent=True, adgan8_suffix=".npy")
  wide = render(0, 2, 180, 240)
  outside = wide["keypoints"].copy()
  outside[0] = (20, 245)  # nose at x = 245 in a 240-wide image
  alice.views = 2
  alice.image("a03.png", 180, 240, keypoints=outside)
  alice.write_csv()

  # bob: two good images; a truncated JPEG; a LIP/8-class map with an out-of-range
  # label; a row with the wrong separator; a row for a file that is not there; an 8x8 image.
  bob = Character(root, "bob", 1)
  bob.image("b01.jpg", 260, 160)
  bob.image("b02.jpg", 220, 170)
  bob.image("b03.jpg", 240, 160)
  data = (bob.folder / "b03.jpg").read_bytes()
  (bob.folder / "b03.jpg").write_bytes(data[:len(data) // 3])
  person = render(1, 9, 200, 150)
  lip_bad, adgan8_bad = person["parsing"].copy(), parsing.merge(person["parsing"], "lip", "adgan8").copy()
  lip_bad[:4, :4], adgan8_bad[:4, :4] = 30, 12
  bob.image("b04.jpg", 200, 150, lip=lip_bad, adgan8=adgan8_bad)
  bob.image("b05.jpg", 8, 8)
  points = render(1, 0, 240, 160)["keypoints"]
  bob.write_csv(extra_rows=[annotation_csv.format_annotation_row("b06.jpg", points).replace(":", ";"), annotation_csv.format_annotation_row("b07.jpg", points)])

  # carol: one good image; one whose parsing maps are 10x10.
  carol = Character(root, "carol", 2)
  carol.image("c01.jpg", 256, 176)
  carol.image("c02.jpg", 230, 170, lip=np.zeros((10, 10), np.uint8), adgan8=np.zeros((10, 10), np.uint8))
  carol.write_csv()

  # dave (the test split, by test_characters.txt): two good images.
  dave = Character(root, "dave", 3)
  dave.image("d01.jpg", 250, 170)
  dave.image("d02.jpg", 210, 180)
  dave.write_csv()

  # A folder that is not a character (no keypoints.csv): ignored with a warning.
  (root / "notes").mkdir()
  (root / "notes" / "todo.txt").write_text("label more characters\n")
  size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
  print(json.dumps({"out": str(root), "bytes": size}))


if __name__ == "__main__":
  main()
