"""Synthetic anime characters written as a user's `anime_pose` folder: the offline transfer workflow.

The users' central workflow fine-tunes an ADGAN trained on real people on about 14
pictures of 3D-anime characters (every ordered pair within a character), then
transfers pose and clothes between real and anime people. Offline, the real people
are `synthetic_people`; this module writes the anime characters, drawn in the anime
style of `jaxpose.data.synthetic`, in exactly the manual layout the real
`tfds_builders/anime_pose` builder reads:

  <output>/
    test_characters.txt          the held-out characters (the test split)
    <character>/                 e.g. pink_twin_tails: hair colour and style say who it is
      keypoints.csv              name:keypoints_y:keypoints_x (`annotation_csv.format_annotation_row`)
      01.png, 02.png, ...        the pictures
      parsing_lip/<stem>.png     LIP labels of every pixel
      parsing_adgan8/<stem>.png  the same merged to ADGAN's 8 (for the *_adgan8 configs)

  python -m jaxpose.data.synthetic_anime --output /tmp/anime
  tfds build tfds_builders/anime_pose --config 64x44 --manual_dir /tmp/anime

By default 4 characters with 4, 4, 3 and 3 pictures; the last is the test split:
train 11 pictures in 12 + 12 + 6 = 30 ordered pairs, test 3 pictures in 6 pairs.
Every picture shows the character whole (feet in frame or nearly) with both
shoulders and hips annotated, so every picture is in its character's pairs.

Pictures are rendered at 256x176, DeepFashion's size and the largest builder
config, and the builder letterboxes them like a user's pictures: its resize,
nearest-neighbour parsing and keypoint mapping are exercised, and the anime detail
(eyes, ink lines) is drawn at a size where it exists and then filtered down by
Lanczos, as a real 3D render would be. 256x176 has the configs' aspect
(176/256 = 88/128 = 44/64), so the 128x88 and 64x44 configs are exact 2x and 4x
reductions with no padding bars, and the characters fill the frame as the
synthetic people at the same size do.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from jaxpose import visualize
from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import image_io
from jaxpose.data import keypoints as kp
from jaxpose.data import parsing
from jaxpose.data import synthetic

DEFAULT_PICTURES = (4, 4, 3, 3)
DEFAULT_IMAGE_SIZE = (256, 176)
KEYPOINTS_CSV = "keypoints.csv"
TEST_CHARACTERS = "test_characters.txt"
ANNOTATION_HEADER = "name:keypoints_y:keypoints_x"
_MAX_POSE_DRAWS = 200


@dataclasses.dataclass(frozen=True)
class AnimeCharacter:
  """One written character.

  Attributes:
    name: its folder, "<hair colour>_<hair style>".
    identity_index: k of `synthetic.identity_rng(seed, k, "anime")`.
    identity: its appearance.
    pose_indices: j of `synthetic.pose_rng(seed, k, j)` of each picture.
    pictures: the picture file names, in order.
    split: "train" or "test".
  """
  name: str
  identity_index: int
  identity: synthetic.Identity
  pose_indices: tuple[int, ...]
  pictures: tuple[str, ...]
  split: str

  @property
  def num_pairs(self) -> int:
    """Ordered pairs of distinct pictures (all have the torso joints the builder requires)."""
    return len(self.pictures) * (len(self.pictures) - 1)


def choose_characters(seed: int, count: int) -> list[tuple[int, synthetic.Identity]]:
  """The first `count` anime identities of `seed` that look clearly unlike each other.

  Walks k = 0, 1, ... and keeps an identity whose hair colour name and hair style
  no kept one has (styles may repeat only beyond five characters), and whose upper
  garment kind is not already over-represented, so a handful of characters shows
  the style's range.
  """
  if count < 1:
    raise ValueError(f"need at least one character, got {count}")
  chosen: list[tuple[int, synthetic.Identity]] = []
  per_kind = math.ceil(count / len(synthetic.ANIME_UPPER_KINDS))
  k = 0
  while len(chosen) < count:
    identity = synthetic.sample_identity(synthetic.identity_rng(seed, k, "anime"), "anime")
    names = {synthetic.anime_hair_name(other) for _, other in chosen}
    styles = [other.hair_style for _, other in chosen]
    kinds = [other.upper_kind for _, other in chosen]
    repeats_style = identity.hair_style in styles and len(chosen) < len(synthetic.ANIME_HAIR_STYLES)
    if (synthetic.anime_hair_name(identity) not in names and not repeats_style and
        kinds.count(identity.upper_kind) < per_kind):
      chosen.append((k, identity))
    k += 1
    if k > 1000 + 50 * count:
      raise ValueError(f"found only {len(chosen)} distinct characters for {count}")
  return chosen


def character_pictures(seed: int, identity_index: int, identity: synthetic.Identity, count: int,
                       height: int, width: int) -> list[tuple[int, dict]]:
  """The character's first `count` usable poses, as (pose index j, `synthetic.render` dict).

  Usable: the whole figure is framed (no close-up), and both shoulders and both hips
  are annotated, so the builder pairs the picture.
  """
  pictures = []
  for j in range(_MAX_POSE_DRAWS):
    pose = synthetic.sample_pose(synthetic.pose_rng(seed, identity_index, j))
    if pose.body_height > 1.05:
      continue
    person = synthetic.render(identity, pose, height, width)
    if kp.has_torso(person["keypoints"]):
      pictures.append((j, person))
      if len(pictures) == count:
        return pictures
  raise ValueError(f"character {identity_index} has fewer than {count} usable poses in {_MAX_POSE_DRAWS}")


def _save_png(path: pathlib.Path, array: np.ndarray) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(image_io.encode_png(array))


def write_anime_characters(root, seed: int = 0, image_size: Sequence[int] = DEFAULT_IMAGE_SIZE,
                           pictures_per_character: Sequence[int] = DEFAULT_PICTURES,
                           num_test_characters: int = 1) -> list[AnimeCharacter]:
  """Writes anime characters in the `anime_pose` manual layout (see the module docstring).

  Args:
    root: the folder to write; it must not exist yet or be empty (a stale character
      folder would silently join the dataset).
    seed: everything is a function of it.
    image_size: (height, width) of the pictures.
    pictures_per_character: one entry per character, its number of pictures (2 or more,
      so that it has pairs).
    num_test_characters: the last this many characters form the test split
      (`test_characters.txt`); at least one, and at least one character stays in train.

  Returns:
    The characters, in writing order.
  """
  root = pathlib.Path(root)
  counts = [int(n) for n in pictures_per_character]
  if any(n < 2 for n in counts):
    raise ValueError(f"every character needs 2 or more pictures to have pairs, got {counts}")
  if not 1 <= num_test_characters < len(counts):
    raise ValueError(f"num_test_characters must leave both splits a character: {num_test_characters} "
                     f"of {len(counts)}")
  if root.exists() and any(root.iterdir()):
    raise FileExistsError(f"{root} is not empty; write the characters into a new folder")
  height, width = (int(v) for v in image_size)

  characters = []
  for number, ((k, identity), count) in enumerate(zip(choose_characters(seed, len(counts)), counts)):
    name = f"{synthetic.anime_hair_name(identity)}_{identity.hair_style}"
    folder = root / name
    rows, pose_indices, pictures = [ANNOTATION_HEADER], [], []
    for i, (j, person) in enumerate(character_pictures(seed, k, identity, count, height, width)):
      picture = f"{i + 1:02d}.png"
      stem = picture[:-len(".png")]
      _save_png(folder / picture, person["image"])
      _save_png(folder / "parsing_lip" / f"{stem}.png", person["parsing"])
      _save_png(folder / "parsing_adgan8" / f"{stem}.png", parsing.merge(person["parsing"], "lip", "adgan8"))
      rows.append(annotation_csv.format_annotation_row(picture, person["keypoints"]))
      pose_indices.append(j)
      pictures.append(picture)
    (folder / KEYPOINTS_CSV).write_text("\n".join(rows) + "\n")
    split = "test" if number >= len(counts) - num_test_characters else "train"
    characters.append(AnimeCharacter(name, k, identity, tuple(pose_indices), tuple(pictures), split))
  test_names = [c.name for c in characters if c.split == "test"]
  (root / TEST_CHARACTERS).write_text("# synthetic anime characters held out for testing\n" +
                                      "".join(f"{n}\n" for n in test_names))
  return characters


def summary(characters: Sequence[AnimeCharacter]) -> dict:
  """Per split: the characters, how many pictures and how many ordered pairs the builder will make."""
  out = {}
  for split in ("train", "test"):
    members = [c for c in characters if c.split == split]
    out[split] = {"characters": [c.name for c in members], "pictures": sum(len(c.pictures) for c in members),
                  "pairs": sum(c.num_pairs for c in members)}
  return out


def contact_sheet(root) -> np.ndarray:
  """A picture of a written folder, read back from disk: one row per character (test last).

  Per picture: the picture, then its LIP parsing with the keypoints' stick figure on it;
  the character's name and split are written on its first parsing panel.
  """
  root = pathlib.Path(root)
  test = {line.split("#", 1)[0].strip() for line in (root / TEST_CHARACTERS).read_text().splitlines()} - {""}
  folders = sorted((p for p in root.iterdir() if (p / KEYPOINTS_CSV).exists()), key=lambda p: (p.name in test, p.name))
  rows = []
  for folder in folders:
    report = bad_input.BadInputReport(f"synthetic_anime/{folder.name}", "test" if folder.name in test else "train")
    row = []
    for name, annotation in annotation_csv.read_annotation_csv(folder / KEYPOINTS_CSV, report).items():
      image = np.asarray(Image.open(folder / name).convert("RGB"))
      labels = np.asarray(Image.open(folder / "parsing_lip" / f"{pathlib.Path(name).stem}.png"))
      height, width = labels.shape
      overlay = visualize.pose_image(annotation.keypoints, height, width,
                                     background=visualize.colorize_parsing(labels))
      if not row:
        canvas = Image.fromarray(overlay)
        ImageDraw.Draw(canvas).text((3, 2), f"{folder.name} ({report.split})", fill=(255, 255, 255))
        overlay = np.asarray(canvas)
      row += [image, overlay]
    rows.append(row)
  return visualize.grid(rows)


def save_contact_sheet(root, path) -> str:
  """Writes `contact_sheet(root)` as a small palette PNG (flat colours need few)."""
  sheet = Image.fromarray(contact_sheet(root)).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                                         dither=Image.Dither.NONE)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  sheet.save(path, format="PNG", optimize=True)
  return str(path)


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(
      prog="python -m jaxpose.data.synthetic_anime",
      description="Write synthetic anime characters in the anime_pose manual layout (then: tfds build "
                  "tfds_builders/anime_pose --config 64x44 --manual_dir OUTPUT).")
  parser.add_argument("--output", required=True, help="folder to create (must be new or empty)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--size", default="x".join(map(str, DEFAULT_IMAGE_SIZE)), help="HxW of the pictures")
  parser.add_argument("--pictures", default=",".join(map(str, DEFAULT_PICTURES)),
                      help="pictures per character, comma-separated (one entry per character)")
  parser.add_argument("--test_characters", type=int, default=1, help="how many of the last characters are test")
  parser.add_argument("--contact_sheet", default=None, help="also write a PNG of the pictures, parsing and poses")
  args = parser.parse_args(argv)
  size = tuple(int(v) for v in args.size.lower().split("x"))
  if len(size) != 2:
    parser.error(f"--size must be HxW, got {args.size!r}")
  characters = write_anime_characters(args.output, args.seed, size, [int(n) for n in args.pictures.split(",")],
                                      args.test_characters)
  result = {"output": args.output, "seed": args.seed, "size": list(size), **summary(characters)}
  if args.contact_sheet:
    result["contact_sheet"] = save_contact_sheet(args.output, args.contact_sheet)
  print(json.dumps(result))
  return result


if __name__ == "__main__":
  main()
