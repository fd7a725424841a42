"""Writes market1501_pose's dummy_data: tiny fixtures in the official formats, good and bad.

  .venv/bin/python tfds_builders/market1501_pose/dummy_data/make_fixtures.py

rewrites this folder; README.md here lists every case and the counts the builder
test expects. People are rendered by `jaxpose.data.synthetic` at 128x64
(deterministic), named like Market-1501's bounding boxes (<id>_c<cam>s<seq>_<frame>_<box>.jpg).
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
from PIL import Image

from jaxpose.data import annotation_csv
from jaxpose.data import synthetic

HERE = pathlib.Path(__file__).resolve().parent
HEIGHT, WIDTH = 128, 64
SEED = 11


def render(identity_index: int, view_index: int, height: int = HEIGHT, width: int = WIDTH) -> dict:
  identity = synthetic.sample_identity(synthetic.identity_rng(SEED, identity_index))
  pose = synthetic.sample_pose(synthetic.pose_rng(SEED, identity_index, view_index))
  return synthetic.render(identity, pose, height, width)


def save_jpeg(path: pathlib.Path, pixels: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(pixels).save(path, format="JPEG", quality=90)


def save_png(path: pathlib.Path, labels: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.asarray(labels, np.uint8)).save(path, format="PNG", optimize=True)


def main() -> None:
  root = HERE
  for entry in ("bounding_box_train", "bounding_box_test", "parsing_lip"):
    shutil.rmtree(root / entry, ignore_errors=True)
  for csv in root.glob("*.csv"):
    csv.unlink()
  rows = {"train": [], "test": []}
  groups = {"train": [], "test": []}

  def good(split: str, name: str, person: dict, *, keypoints=None, lip=None) -> str:
    save_jpeg(root / f"bounding_box_{split}" / name, person["image"])
    save_png(root / "parsing_lip" / split / name.replace(".jpg", ".png"),
             person["parsing"] if lip is None else lip)
    rows[split].append(annotation_csv.format_annotation_row(name, person["keypoints"] if keypoints is None else keypoints))
    return name

  # 0002: three good images; the first has its left ankle below the image (y = 130 >= 128).
  p = render(2, 0)
  below = p["keypoints"].copy()
  below[13] = (130, 30)
  g0002 = [good("train", "0002_c1s1_000451_03.jpg", p, keypoints=below),
           good("train", "0002_c2s1_000301_01.jpg", render(2, 1)),
           good("train", "0002_c3s1_000551_02.jpg", render(2, 2))]
  # 0007: two good images and a truncated one.
  g0007 = [good("train", "0007_c1s6_028546_01.jpg", render(7, 0)),
           good("train", "0007_c2s3_070952_01.jpg", render(7, 1))]
  truncated = "0007_c3s3_064744_01.jpg"
  save_jpeg(root / "bounding_box_train" / truncated, render(7, 2)["image"])
  data = (root / "bounding_box_train" / truncated).read_bytes()
  (root / "bounding_box_train" / truncated).write_bytes(data[:len(data) // 2])
  rows["train"].append(annotation_csv.format_annotation_row(truncated, render(7, 2)["keypoints"]))
  g0007.append(truncated)
  # 0010: one good image, one 256x128 (an upscaled copy), one missing, one row with 17 values.
  g0010 = [good("train", "0010_c1s1_002301_02.jpg", render(10, 0))]
  wrong_size = "0010_c2s1_002351_01.jpg"
  big = render(10, 1, 256, 128)
  save_jpeg(root / "bounding_box_train" / wrong_size, big["image"])
  rows["train"].append(annotation_csv.format_annotation_row(wrong_size, big["keypoints"]))
  missing = "0010_c3s1_002401_01.jpg"
  rows["train"].append(annotation_csv.format_annotation_row(missing, render(10, 2)["keypoints"]))
  short = "0010_c4s1_002451_01.jpg"
  points = render(10, 3)["keypoints"]
  rows["train"].append(annotation_csv.format_annotation_row(short, points[:17]))
  g0010 += [wrong_size, missing, short]
  # 0011: valid images whose LIP maps are bad (64x32; a label 20 of 20): skipped only by config lip.
  q = render(11, 1)
  bad_labels = q["parsing"].copy()
  bad_labels[60:64, 30:34] = 20
  g0011 = [good("train", "0011_c1s1_002501_01.jpg", render(11, 0), lip=np.zeros((64, 32), np.uint8)),
           good("train", "0011_c2s1_002551_01.jpg", q, lip=bad_labels)]
  groups["train"] = [g0002, g0007, g0010, g0011]

  # Test: two identities and the two kinds of distractor (annotated, never paired).
  groups["test"] = [
      [good("test", "0001_c1s1_001051_00.jpg", render(1, 0)), good("test", "0001_c2s1_000301_00.jpg", render(1, 1))],
      [good("test", "0003_c1s6_015971_00.jpg", render(3, 0)), good("test", "0003_c3s3_064744_00.jpg", render(3, 1))],
  ]
  good("test", "0000_c1s1_000151_01.jpg", render(100, 0))
  good("test", "-1_c1s1_000401_03.jpg", render(101, 0))

  for split in ("train", "test"):
    (root / f"market-annotation-{split}.csv").write_text(
        "\n".join(["name:keypoints_y:keypoints_x", *rows[split]]) + "\n")
    pairs = [(a, b) for group in groups[split] for a in group for b in group if a != b]
    if split == "train":
      pairs.append(("0002_c1s1_000451_03.jpg", "9999_c1s1_000000_01.jpg"))  # an image in no row
    (root / f"market-pairs-{split}.csv").write_text("\n".join(["from,to", *[f"{a},{b}" for a, b in pairs]]) + "\n")
  size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
  print(json.dumps({"out": str(root), "bytes": size}))


if __name__ == "__main__":
  main()
