"""Writes deepfashion_pose's dummy_data: tiny fixtures in the official formats, good and bad.

  .venv/bin/python tfds_builders/deepfashion_pose/dummy_data/make_fixtures.py

rewrites this folder (the committed fixtures; README.md here lists every case and
the counts the builder test expects). With --out, writes a clean, scaled-up copy
of the 256x176 layout instead (no bad inputs), for timing a build:

  .venv/bin/python tfds_builders/deepfashion_pose/dummy_data/make_fixtures.py \
      --out /tmp/deepfashion_big --identities 1000 --views 3

People are rendered by `jaxpose.data.synthetic` (deterministic), so a re-run
writes the same files. Nothing here uses the builder's own reading code: the
file names and the semantic_merge3 paths are spelled out from the In-shop layout.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil

import numpy as np
from PIL import Image

from jaxpose.data import annotation_csv
from jaxpose.data import parsing
from jaxpose.data import synthetic

HERE = pathlib.Path(__file__).resolve().parent
HEIGHT, WIDTH = 256, 176
MARGIN = 40  # each side of the 256x256 originals
VIEWS = ("1front", "2side", "3back", "4full")
SEED = 7


def flat_name(gender: str, category: str, item: int, number: int, view: str, *, defgan: bool = False) -> str:
  """The flattened In-shop name: PATN/ADGAN style, or Def-GAN style ("fasion", no '_' in the category)."""
  if defgan:
    return f"fasion{gender}{category.replace('_', '')}id{item:08d}{number:02d}_{view}.jpg"
  return f"fashion{gender}{category}id{item:08d}{number:02d}_{view}.jpg"


def semantic_path(gender: str, category: str, item: int, number: int, view: str) -> str:
  """img/WOMEN/Blouses_Shirts/id_00006350/04_1_front.jpg's map under semantic_merge3/."""
  return f"semantic_merge3/{gender}/{category}/id_{item:08d}/{number:02d}_{view[0]}_{view[1:]}.npy"


def render(identity_index: int, view_index: int) -> dict:
  identity = synthetic.sample_identity(synthetic.identity_rng(SEED, identity_index))
  person = synthetic.render(identity, synthetic.sample_pose(synthetic.pose_rng(SEED, identity_index, view_index)),
                            HEIGHT, WIDTH)
  person["background"] = identity.background_color
  return person


def write_csv(path: pathlib.Path, header: str, rows) -> None:
  path.write_text("\n".join([header, *rows]) + "\n")


def save_jpeg(path: pathlib.Path, pixels: np.ndarray, quality: int = 85) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(pixels).save(path, format="JPEG", quality=quality)


def save_png(path: pathlib.Path, labels: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.asarray(labels, np.uint8)).save(path, format="PNG", optimize=True)


def save_npy(path: pathlib.Path, labels: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  np.save(path, np.asarray(labels, np.uint8))


def uncropped(pixels: np.ndarray, background) -> np.ndarray:
  """Pads a 256x176 image back to the 256x256 original the official crop came from."""
  out = np.empty((HEIGHT, WIDTH + 2 * MARGIN, 3), np.uint8)
  out[...] = background
  out[:, MARGIN:MARGIN + WIDTH] = pixels
  return out


class Writer:
  """Writes people in both layouts and remembers their CSV rows."""

  def __init__(self, root: pathlib.Path, *, with_uncropped: bool = True, with_lip: bool = True):
    self.root = root
    self.with_uncropped = with_uncropped
    self.with_lip = with_lip
    self.rows = {"resized": {"train": [], "test": []}, "uncropped": {"train": [], "test": []}}
    self.defgan_names: dict[str, str] = {}  # 256x176 name -> Def-GAN name of the same person

  def person(self, split: str, person: dict, gender: str, category: str, item: int, number: int, view: str,
             *, keypoints: np.ndarray | None = None, uncropped_keypoints: np.ndarray | None = None,
             parsing_npy: np.ndarray | None = None, parsing_lip: np.ndarray | None = None,
             in_uncropped: bool = True) -> str:
    """Writes one good person (parsing overridable for bad cases); returns the 256x176 name."""
    name = flat_name(gender, category, item, number, view)
    keypoints = person["keypoints"] if keypoints is None else keypoints
    save_jpeg(self.root / "fashion_resize" / split / name, person["image"])
    self.rows["resized"][split].append(annotation_csv.format_annotation_row(name, keypoints))
    adgan8 = parsing.merge(person["parsing"], "lip", "adgan8")
    save_npy(self.root / semantic_path(gender, category, item, number, view),
             adgan8 if parsing_npy is None else parsing_npy)
    if self.with_lip:
      save_png(self.root / "parsing_lip" / split / name.replace(".jpg", ".png"),
               person["parsing"] if parsing_lip is None else parsing_lip)
    if self.with_uncropped and in_uncropped:
      defgan = flat_name(gender, category, item, number, view, defgan=True)
      self.defgan_names[name] = defgan
      save_jpeg(self.root / "fasion-dataset" / split / defgan, uncropped(person["image"], person["background"]))
      if uncropped_keypoints is None:
        uncropped_keypoints = person["keypoints"].copy()
        present = uncropped_keypoints[:, 1] != -1
        uncropped_keypoints[present, 1] += MARGIN
      self.rows["uncropped"][split].append(annotation_csv.format_annotation_row(defgan, uncropped_keypoints))
      if self.with_lip:
        # A parser run on the 256x256 originals gives 256x256 maps: the builder crops them too.
        lip256 = np.zeros((HEIGHT, WIDTH + 2 * MARGIN), np.uint8)
        lip256[:, MARGIN:MARGIN + WIDTH] = person["parsing"]
        save_png(self.root / "parsing_lip" / split / defgan.replace(".jpg", ".png"), lip256)
    return name

  def write_csvs(self, pairs: dict, defgan_pairs: dict, extra_rows: dict | None = None) -> None:
    extra_rows = extra_rows or {}
    for split in ("train", "test"):
      write_csv(self.root / f"fashion-resize-annotation-{split}.csv", "name:keypoints_y:keypoints_x",
                self.rows["resized"][split] + extra_rows.get(split, []))
      write_csv(self.root / f"fashion-resize-pairs-{split}.csv", "from,to", [f"{a},{b}" for a, b in pairs[split]])
      if self.with_uncropped:
        write_csv(self.root / f"fasion-annotation-{split}.csv", "name:keypoints_y:keypoints_x",
                  self.rows["uncropped"][split])
        write_csv(self.root / f"fasion-pairs-{split}.csv", "from,to",
                  [f"{a},{b}" for a, b in defgan_pairs[split]])


def permutations(names) -> list[tuple[str, str]]:
  return [(a, b) for a in names for b in names if a != b]


def make_committed_fixtures(root: pathlib.Path) -> None:
  """The committed fixtures; README.md in this folder describes every entry."""
  for entry in ("fashion_resize", "fasion-dataset", "semantic_merge3", "parsing_lip"):
    shutil.rmtree(root / entry, ignore_errors=True)
  for csv in root.glob("*.csv"):
    csv.unlink()
  w = Writer(root)
  train_groups: list[list[str]] = []
  defgan_groups: dict[str, list[list[str]]] = {"train": [], "test": []}

  # A: two good views, and a third whose file is missing.
  a = [w.person("train", render(0, j), "WOMEN", "Blouses_Shirts", 6350, 4, VIEWS[j]) for j in range(2)]
  a_missing = flat_name("WOMEN", "Blouses_Shirts", 6350, 4, "3back")
  w.rows["resized"]["train"].append(annotation_csv.format_annotation_row(a_missing, render(0, 2)["keypoints"]))
  train_groups.append(a + [a_missing])
  defgan_groups["train"].append([w.defgan_names[n] for n in a])

  # B: the second view has a joint with only x == -1; the third file is truncated.
  b1 = w.person("train", render(1, 0), "MEN", "Denim", 80, 1, "1front")
  b2_person = render(1, 1)
  half_missing = b2_person["keypoints"].copy()
  half_missing[7] = (100, -1)  # left_wrist: y kept, x -1 (what the official -40 shift makes of x = 39)
  b2 = w.person("train", b2_person, "MEN", "Denim", 80, 1, "2side", keypoints=half_missing)
  b3 = flat_name("MEN", "Denim", 80, 1, "3back")
  b3_person = render(1, 2)
  save_jpeg(root / "fashion_resize/train" / b3, b3_person["image"])
  data = (root / "fashion_resize/train" / b3).read_bytes()
  (root / "fashion_resize/train" / b3).write_bytes(data[:len(data) // 2])  # a download cut off halfway
  w.rows["resized"]["train"].append(annotation_csv.format_annotation_row(b3, b3_person["keypoints"]))
  train_groups.append([b1, b2, b3])
  defgan_groups["train"].append([w.defgan_names[b1], w.defgan_names[b2]])

  # C: the first view's right wrist lies right of the image; the 4full file is 128x88.
  c1_person = render(2, 0)
  outside = c1_person["keypoints"].copy()
  outside[4] = (120, 180)  # right_wrist at x = 180 >= 176
  outside256 = c1_person["keypoints"].copy()
  outside256[:, 1] = np.where(outside256[:, 1] != -1, outside256[:, 1] + MARGIN, -1)
  outside256[4] = (120, 20)  # x = 20 in the 256x256 frame: left of the crop's x = 40
  c1 = w.person("train", c1_person, "WOMEN", "Dresses", 1234, 2, "1front", keypoints=outside,
                uncropped_keypoints=outside256)
  c2 = w.person("train", render(2, 1), "WOMEN", "Dresses", 1234, 2, "2side")
  c4 = flat_name("WOMEN", "Dresses", 1234, 2, "4full")
  c4_person = synthetic.render(synthetic.sample_identity(synthetic.identity_rng(SEED, 2)),
                               synthetic.sample_pose(synthetic.pose_rng(SEED, 2, 3)), 128, 88)
  save_jpeg(root / "fashion_resize/train" / c4, c4_person["image"])
  w.rows["resized"]["train"].append(annotation_csv.format_annotation_row(c4, c4_person["keypoints"] * 2))
  train_groups.append([c1, c2, c4])
  defgan_groups["train"].append([w.defgan_names[c1], w.defgan_names[c2]])

  # D: valid images with bad parsing maps (wrong shape; label 9 of 8), and a file that is not an image.
  d1_person, d2_person = render(3, 0), render(3, 1)
  d1 = w.person("train", d1_person, "MEN", "Tees_Tanks", 4321, 3, "1front", in_uncropped=False,
                parsing_npy=np.zeros((10, 10), np.uint8), parsing_lip=np.zeros((10, 10), np.uint8))
  bad_labels = parsing.merge(d2_person["parsing"], "lip", "adgan8").copy()
  bad_labels[100:110, 80:90] = 9
  lip_bad = d2_person["parsing"].copy()
  lip_bad[100:110, 80:90] = 25
  d2 = w.person("train", d2_person, "MEN", "Tees_Tanks", 4321, 3, "2side", in_uncropped=False,
                parsing_npy=bad_labels, parsing_lip=lip_bad)
  d3 = flat_name("MEN", "Tees_Tanks", 4321, 3, "3back")
  (root / "fashion_resize/train" / d3).write_bytes(b"<html>403 Forbidden</html>\n")
  w.rows["resized"]["train"].append(annotation_csv.format_annotation_row(d3, render(3, 2)["keypoints"]))
  train_groups.append([d1, d2, d3])

  # Malformed rows (no files): wrong separator, 17 values, a non-numeric value;
  # a repeated row; a name that is no flattened In-shop name; and a stray file no row names.
  e = [flat_name("WOMEN", "Skirts", 5555, 1, v) for v in VIEWS[:3]]
  e_points = render(4, 0)["keypoints"]
  extra_rows = [
      annotation_csv.format_annotation_row(e[0], e_points).replace(":", ",", 2),
      annotation_csv.format_annotation_row(e[1], e_points[:17]),
      annotation_csv.format_annotation_row(e[2], e_points).replace(f"[{e_points[0, 0]},", "[nan,", 1),
      annotation_csv.format_annotation_row(a[0], render(0, 0)["keypoints"]),
      annotation_csv.format_annotation_row("img_00001.jpg", e_points),
  ]
  train_groups.append(e)
  save_jpeg(root / "fashion_resize/train/stray_unannotated.jpg", np.full((16, 16, 3), 200, np.uint8))

  train_pairs = [p for group in train_groups for p in permutations(group)]
  train_pairs.append((a[0], flat_name("MEN", "Shorts", 9999, 1, "1front")))  # names an unknown image
  # The test split: one identity, three good views; one pair names a train image.
  f = [w.person("test", render(5, j), "WOMEN", "Graphic_Tees", 2468, 1, VIEWS[j]) for j in range(3)]
  defgan_groups["test"].append([w.defgan_names[n] for n in f])
  test_pairs = permutations(f) + [(a[0], a[1])]
  w.write_csvs({"train": train_pairs, "test": test_pairs},
               {s: [p for g in groups for p in permutations(g)] for s, groups in defgan_groups.items()},
               extra_rows={"train": extra_rows})
  # A pairs row with one field (hand-edited file).
  with open(root / "fashion-resize-pairs-train.csv", "a") as fh:
    fh.write("onlyonefield.jpg\n")


def make_scaled_copy(root: pathlib.Path, identities: int, views: int, test_fraction: float = 0.1) -> None:
  """A clean 256x176 layout (adgan8 parsing) of identities x views people, for timing builds."""
  w = Writer(root, with_uncropped=False, with_lip=False)
  categories = ("Blouses_Shirts", "Dresses", "Tees_Tanks", "Skirts")
  pairs = {"train": [], "test": []}
  num_test = max(1, int(identities * test_fraction))
  for k in range(identities):
    split = "test" if k >= identities - num_test else "train"
    names = [w.person(split, render(k, j), "WOMEN", categories[k % len(categories)], 10000 + k, 1, VIEWS[j])
             for j in range(views)]
    pairs[split] += permutations(names)
  w.write_csvs(pairs, {})


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", type=pathlib.Path, help="write a clean scaled-up copy here instead")
  parser.add_argument("--identities", type=int, default=1000)
  parser.add_argument("--views", type=int, default=3, choices=range(1, len(VIEWS) + 1))
  args = parser.parse_args()
  if args.out:
    make_scaled_copy(args.out, args.identities, args.views)
    files = sum(1 for _ in args.out.rglob("*.jpg"))
    print(json.dumps({"out": str(args.out), "images": files}))
  else:
    make_committed_fixtures(HERE)
    size = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file())
    print(json.dumps({"out": str(HERE), "bytes": size}))


if __name__ == "__main__":
  main()
