"""Reading the original pose-transfer files, robust to what real copies hold.

Shared by the TFDS builders `deepfashion_pose`, `market1501_pose` and
`anime_pose` (tfds_builders/): the official annotation and pair CSVs, images,
parsing maps, the DeepFashion name -> `semantic_merge3` path rule, the
resize+pad ("letterbox") transform, and the report of bad inputs. Plain numpy
and PIL: no TensorFlow, so every rule here is unit-tested quickly.

File formats (Def-GAN's `compute_coordinates.py` and `create_pairs_dataset.py`
wrote them; PATN and ADGAN reuse them; PATN names them `fasion-resize-...`,
ADGAN `fashion-resize-...`):
  annotation CSV  ':'-separated, header `name:keypoints_y:keypoints_x`; each
                  keypoint field a JSON list of 18 ints, (row y, column x) in the
                  stored image's pixels, -1 for a missing joint.
  pairs CSV       ','-separated, header `from,to`: image names.

Bad input policy. Real copies of these files hold truncated downloads, images
of another size, rows a spreadsheet re-saved with the wrong separator, and so
on. A problem with one item never stops a build: it is reported (file, line
where there is one, reason, what was dropped) through `BadInputReport` and that
item is skipped:
  * an image that is missing, unreadable, truncated or of the wrong size, or
    whose annotation row is malformed, or whose parsing map is missing, of the
    wrong shape or holds out-of-range labels: the image is not stored, and
    every pair naming it is dropped;
  * a joint outside the image (or with only one coordinate -1): that joint is
    marked missing (-1, -1) and the image is kept, since the other 17 joints
    and the pixels are valid. Official files can hold such joints: PATN's
    resize script shifts x by -40 for the centre crop without clipping, so a
    joint at x < 40 or x >= 216 of the 256x256 photo lands outside, and one at
    x = 39 becomes x = -1 with its y kept;
  * a pair naming an image that is not in the annotation CSV: the pair is dropped.
A directory that is not the expected layout at all is a different matter: the
builders raise `LayoutError` at once, saying what was expected and what was found.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import io
import itertools
import os
import re
import threading
from typing import Callable, Iterable, Iterator, Sequence

from absl import logging
from etils import epath
import numpy as np
from PIL import Image

from jaxpose.data import keypoints as kp

PathLike = str | os.PathLike

ANNOTATION_COLUMNS = ("name", "keypoints_y", "keypoints_x")
PAIR_COLUMNS = ("from", "to")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# ----------------------------------------------------------------------------
# Errors and the report


class LayoutError(FileNotFoundError):
  """The manual directory is not the expected layout; raised before any work."""


class BadInput(ValueError):
  """One input item is unusable. `kind` is a key of `BAD_INPUT_KINDS`."""

  def __init__(self, kind: str, reason: str):
    if kind not in BAD_INPUT_KINDS:
      raise ValueError(f"unknown bad-input kind {kind!r}")
    super().__init__(reason)
    self.kind = kind
    self.reason = reason


# kind -> what is dropped because of it ("image", "pair", "joint" or "row").
BAD_INPUT_KINDS = {
    "image_missing": "image",
    "image_unreadable": "image",
    "image_truncated": "image",
    "image_wrong_size": "image",
    "annotation_malformed_row": "image",
    "annotation_duplicate_name": "row",
    "keypoint_outside_image": "joint",
    "parsing_missing": "image",
    "parsing_unreadable": "image",
    "parsing_wrong_shape": "image",
    "parsing_bad_labels": "image",
    "parsing_path_unknown": "image",
    "pairs_malformed_row": "pair",
    "pair_unknown_image": "pair",
    "pair_image_skipped": "pair",
}

_CONSEQUENCE = {
    "image": "image skipped (and every pair naming it)",
    "pair": "pair skipped",
    "joint": "joint marked missing (-1), image kept",
    "row": "row ignored",
}


@dataclasses.dataclass
class BadInputReport:
  """Collects the problems of one split: logs each one, counts them, and says what was stored.

  Attributes:
    dataset: "name/config", for the log lines.
    split: "train" or "test".
    max_listed: how many problem lines `to_metadata` keeps (all are logged).
    problems: (kind, message) of every problem, in the order found.
    stored_images: names of the images stored, in record order (index = position).
    skipped_images: name -> kind of every image that was skipped.
    unannotated_images: image files in the split's folder that no annotation row names.
  """
  dataset: str
  split: str
  max_listed: int = 100
  problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)
  stored_images: list[str] = dataclasses.field(default_factory=list)
  skipped_images: dict[str, str] = dataclasses.field(default_factory=dict)
  unannotated_images: int = 0
  num_pairs: int = 0

  def add(self, kind: str, file: PathLike, reason: str, *, line: int | None = None) -> None:
    """Logs and records one problem with `file` (at `line`, 1-based, if given)."""
    if kind not in BAD_INPUT_KINDS:
      raise ValueError(f"unknown bad-input kind {kind!r}")
    where = f"{file}:{line}" if line is not None else f"{file}"
    message = f"{where}: {reason}; {_CONSEQUENCE[BAD_INPUT_KINDS[kind]]}"
    self.problems.append((kind, message))
    logging.warning("%s %s: bad input [%s] %s", self.dataset, self.split, kind, message)

  def skip_image(self, name: str, kind: str, file: PathLike, reason: str, *, line: int | None = None) -> None:
    """Reports a problem that drops image `name`."""
    self.add(kind, file, reason, line=line)
    self.skipped_images.setdefault(name, kind)

  def counts(self) -> dict[str, int]:
    """kind -> number of problems of that kind."""
    return dict(sorted(collections.Counter(kind for kind, _ in self.problems).items()))

  def dropped(self) -> dict[str, int]:
    """"image"/"pair"/"joint"/"row" -> how many were dropped."""
    out = {what: 0 for what in _CONSEQUENCE}
    for kind, count in self.counts().items():
      out[BAD_INPUT_KINDS[kind]] += count
    return out

  def summary(self) -> str:
    """One line: what was stored and what was skipped, by reason."""
    counts = self.counts()
    parts = []
    for what, label in (("image", "images skipped"), ("pair", "pairs skipped"),
                        ("joint", "joints marked missing"), ("row", "duplicate rows ignored")):
      kinds = {k: c for k, c in counts.items() if BAD_INPUT_KINDS[k] == what}
      if kinds:
        detail = ", ".join(f"{k} {c:,}" for k, c in kinds.items())
        parts.append(f"{sum(kinds.values()):,} {label} ({detail})")
    skipped = "; ".join(parts) if parts else "no bad input"
    unannotated = (f"; {self.unannotated_images:,} image files named in no annotation row were not stored"
                   if self.unannotated_images else "")
    return (f"{self.dataset} {self.split}: stored {len(self.stored_images):,} images and "
            f"{self.num_pairs:,} pairs; {skipped}{unannotated}")

  def to_metadata(self) -> dict:
    """The JSON-able record kept in the dataset metadata (`metadata['skipped'][split]`)."""
    dropped = self.dropped()
    return {
        "images": dropped["image"],
        "pairs": dropped["pair"],
        "joints": dropped["joint"],
        "rows": dropped["row"],
        "by_kind": self.counts(),
        "unannotated_images": self.unannotated_images,
        "problems": [message for _, message in self.problems[:self.max_listed]],
        "problems_not_listed": max(0, len(self.problems) - self.max_listed),
    }


# ----------------------------------------------------------------------------
# CSV files


@dataclasses.dataclass(frozen=True)
class Annotation:
  """One annotation row.

  Attributes:
    name: image file name, e.g. "fashionWOMENBlouses_Shirtsid0000635004_1front.jpg".
    keypoints: int32 (18, 2) (y, x) exactly as in the file (not yet checked against an image).
    line: 1-based line number in the CSV.
  """
  name: str
  keypoints: np.ndarray
  line: int


@dataclasses.dataclass(frozen=True)
class Pair:
  """One row of a pairs CSV: image names and the 1-based line number."""
  source: str
  target: str
  line: int


def _read_text(path: epath.Path, what: str) -> str:
  try:
    data = path.read_bytes()
  except FileNotFoundError as e:
    raise LayoutError(f"{what} {path} does not exist") from e
  # utf-8-sig drops the byte-order mark spreadsheet programs write.
  return data.decode("utf-8-sig", errors="replace")


def _lines(text: str) -> Iterator[tuple[int, str]]:
  for number, line in enumerate(text.splitlines(), start=1):
    if line.strip():
      yield number, line.strip()


def _header_columns(path: epath.Path, header: str | None, separator: str, expected: Sequence[str],
                    what: str) -> dict[str, int]:
  expected_line = separator.join(expected)
  if header is None:
    raise LayoutError(f"{what} {path} is empty; expected a header line {expected_line!r} and one row per image")
  fields = [f.strip().strip('"').strip() for f in header.split(separator)]
  missing = [c for c in expected if c not in fields]
  if missing:
    raise LayoutError(
        f"{what} {path}: expected the header {expected_line!r} ({separator!r}-separated, as in the "
        f"official files); found {header[:120]!r}")
  return {c: fields.index(c) for c in expected}


_INTEGER = re.compile(r"^(?:np\.\w+\()?\s*(-?\d+)(?:\.0*)?\s*\)?$")


def parse_coordinates(field: str) -> list[int]:
  """'[12, -1, 40]' -> [12, -1, 40]. Raises BadInput for anything else.

  Also takes '12.0' and numpy 2's 'np.int64(12)' (what the official
  `resize_fashion.py` writes when re-run under numpy 2).
  """
  text = field.strip().strip('"').strip()
  if not (text.startswith("[") and text.endswith("]")):
    raise BadInput("annotation_malformed_row", f"expected a JSON list of ints like [12, -1, ...], found {text[:40]!r}")
  inner = text[1:-1].strip()
  if not inner:
    return []
  values = []
  for token in inner.split(","):
    match = _INTEGER.match(token.strip())
    if not match:
      raise BadInput("annotation_malformed_row", f"non-numeric or non-integer coordinate {token.strip()[:20]!r}")
    values.append(int(match.group(1)))
  return values


def format_annotation_row(name: str, keypoints) -> str:
  """(18, 2) (y, x) keypoints -> 'name:[y0, ...]:[x0, ...]', the row `read_annotation_csv` reads."""
  points = np.asarray(keypoints)
  return ":".join([name, *("[" + ", ".join(str(int(v)) for v in points[:, i]) + "]" for i in (0, 1))])


def _valid_name(name: str) -> bool:
  # Names are joined to a folder: no separators, so none can point elsewhere.
  return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def check_annotation_header(path: PathLike) -> None:
  """Raises LayoutError unless `path` exists and starts with the official header."""
  path = epath.Path(path)
  text = _read_text(path, "annotation CSV")
  header = next((line for _, line in _lines(text)), None)
  _header_columns(path, header, ":", ANNOTATION_COLUMNS, "annotation CSV")


def read_annotation_csv(path: PathLike, report: BadInputReport) -> dict[str, Annotation]:
  """Reads an official annotation CSV; malformed rows are reported and left out.

  Args:
    path: a `*-annotation-*.csv` file: header `name:keypoints_y:keypoints_x` (the
      columns may come in any order), then one row per image.
    report: receives one problem per bad row (wrong separator or field count,
      not 18 values, non-numeric values, a name with a path separator, a repeated name).

  Returns:
    name -> Annotation, in file order (the first row of a repeated name wins).

  Raises:
    LayoutError: the file is missing or its header is not the official one.
  """
  path = epath.Path(path)
  rows = _lines(_read_text(path, "annotation CSV"))
  header = next(rows, (0, None))[1]
  columns = _header_columns(path, header, ":", ANNOTATION_COLUMNS, "annotation CSV")
  out: dict[str, Annotation] = {}
  for number, line in rows:
    fields = line.split(":")
    if len(fields) != len(ANNOTATION_COLUMNS):
      name_guess = re.split(r"[:,;\t]", line, maxsplit=1)[0].strip()
      report.skip_image(
          name_guess, "annotation_malformed_row", path,
          f"expected 3 ':'-separated fields name:keypoints_y:keypoints_x, found {len(fields)} in {line[:60]!r}",
          line=number)
      continue
    name = fields[columns["name"]].strip().strip('"').strip()
    if not _valid_name(name):
      report.add("annotation_malformed_row", path, f"invalid image name {name!r}", line=number)
      continue
    try:
      ys = parse_coordinates(fields[columns["keypoints_y"]])
      xs = parse_coordinates(fields[columns["keypoints_x"]])
      for axis, values in (("keypoints_y", ys), ("keypoints_x", xs)):
        if len(values) != kp.NUM_KEYPOINTS:
          raise BadInput("annotation_malformed_row",
                         f"{axis} has {len(values)} values, expected {kp.NUM_KEYPOINTS}")
    except BadInput as e:
      report.skip_image(name, e.kind, path, f"row of {name}: {e.reason}", line=number)
      continue
    if name in out:
      report.add("annotation_duplicate_name", path,
                 f"{name} appears again (first at line {out[name].line})", line=number)
      continue
    out[name] = Annotation(name=name, keypoints=np.stack([ys, xs], axis=-1).astype(np.int32), line=number)
  return out


def check_pairs_header(path: PathLike) -> None:
  """Raises LayoutError unless `path` exists and has a `from,to` header."""
  path = epath.Path(path)
  text = _read_text(path, "pairs CSV")
  header = next((line for _, line in _lines(text)), None)
  _header_columns(path, header, ",", PAIR_COLUMNS, "pairs CSV")


def read_pairs_csv(path: PathLike, report: BadInputReport) -> list[Pair]:
  """Reads an official pairs CSV (header `from,to`; pandas' index column is allowed).

  Rows without two non-empty names are reported and left out; names are checked later.

  Raises:
    LayoutError: the file is missing or has no `from` and `to` columns.
  """
  path = epath.Path(path)
  rows = _lines(_read_text(path, "pairs CSV"))
  header = next(rows, (0, None))[1]
  columns = _header_columns(path, header, ",", PAIR_COLUMNS, "pairs CSV")
  width = len(header.split(","))
  out = []
  for number, line in rows:
    fields = [f.strip().strip('"').strip() for f in line.split(",")]
    if len(fields) != width or not fields[columns["from"]] or not fields[columns["to"]]:
      report.add("pairs_malformed_row", path,
                 f"expected {width} ','-separated fields ({header.strip()}), found {line[:80]!r}", line=number)
      continue
    out.append(Pair(fields[columns["from"]], fields[columns["to"]], number))
  return out


def resolve_pairs(pairs: Iterable[Pair], report: BadInputReport, pairs_file: PathLike,
                  annotation_file: PathLike) -> np.ndarray:
  """Pairs of names -> (P, 2) int64 indices into `report.stored_images`.

  A pair naming an image that was skipped, or one that no annotation row names,
  is reported and dropped; the others keep their file order.
  """
  index = {name: i for i, name in enumerate(report.stored_images)}
  out = []
  for pair in pairs:
    problem = None
    for name in (pair.source, pair.target):
      if name in index:
        continue
      if name in report.skipped_images:
        problem = ("pair_image_skipped", f"pair {pair.source} -> {pair.target}: image {name} was skipped "
                   f"({report.skipped_images[name]})")
      else:
        problem = ("pair_unknown_image", f"pair {pair.source} -> {pair.target}: image {name} is in no row "
                   f"of {annotation_file}")
      break
    if problem:
      report.add(problem[0], pairs_file, problem[1], line=pair.line)
    else:
      out.append((index[pair.source], index[pair.target]))
  report.num_pairs = len(out)
  return np.asarray(out, np.int64).reshape(-1, 2)


# ----------------------------------------------------------------------------
# Keypoints


def drop_outside_joints(keypoints: np.ndarray, height: int, width: int) -> tuple[np.ndarray, list[str]]:
  """Marks joints that are not inside a height x width image missing.

  Args:
    keypoints: (18, 2) (y, x) ints, -1 for missing.

  Returns:
    int32 (18, 2) with every joint outside [0, height) x [0, width), or with
    only one coordinate -1, set to (-1, -1); and a description of each such joint.
  """
  keypoints = np.array(keypoints, np.int32).reshape(kp.NUM_KEYPOINTS, 2)
  missing = np.all(keypoints == kp.MISSING, axis=-1)
  y, x = keypoints[:, 0], keypoints[:, 1]
  inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
  dropped = []
  for i in np.flatnonzero(~missing & ~inside):
    dropped.append(f"{kp.KEYPOINT_NAMES[i]} at (y={y[i]}, x={x[i]})")
    keypoints[i] = kp.MISSING
  return keypoints, dropped


def report_outside_joints(report: BadInputReport, file: PathLike, name: str, dropped: Sequence[str],
                          frame: str, line: int | None = None) -> None:
  """One `keypoint_outside_image` problem per dropped joint of image `name`."""
  for joint in dropped:
    report.add("keypoint_outside_image", file, f"{name}: joint {joint} lies outside the {frame} image", line=line)


def crop_keypoints_x(keypoints: np.ndarray, left: int) -> np.ndarray:
  """Shifts x by -left for a crop starting at column `left`; missing joints stay -1.

  A joint with only x == -1 stays as it is (so `drop_outside_joints` drops it).
  """
  out = np.array(keypoints, np.int32)
  present_x = out[:, 1] != kp.MISSING
  out[present_x, 1] -= left
  return out


@dataclasses.dataclass(frozen=True)
class Letterbox:
  """Resize keeping the aspect ratio, then pad to the target size, centred.

  The image is scaled by s = min(H / h, W / w) to (round(h s), round(w s)) and
  placed at (top, left) in the (H, W) target; pixel (y, x) of the source goes to
  the target pixel holding its centre: (floor((y + 0.5) * nh / h) + top,
  floor((x + 0.5) * nw / w) + left), the pixel a nearest-neighbour resize of the
  parsing map samples it from.

  Attributes:
    source_size: (h, w) of the original image.
    target_size: (H, W).
    resized_size: (nh, nw) of the scaled image before padding.
    top, left: padding above and left of it.
  """
  source_size: tuple[int, int]
  target_size: tuple[int, int]
  resized_size: tuple[int, int]
  top: int
  left: int

  @classmethod
  def fit(cls, source_size: Sequence[int], target_size: Sequence[int]) -> "Letterbox":
    h, w = (int(v) for v in source_size)
    target_h, target_w = (int(v) for v in target_size)
    if min(h, w, target_h, target_w) < 1:
      raise ValueError(f"sizes must be positive, got {source_size} -> {target_size}")
    scale = min(target_h / h, target_w / w)
    nh = min(target_h, max(1, round(h * scale)))
    nw = min(target_w, max(1, round(w * scale)))
    return cls((h, w), (target_h, target_w), (nh, nw), (target_h - nh) // 2, (target_w - nw) // 2)

  def image(self, pixels: np.ndarray, pad_color: Sequence[int] | None = None) -> np.ndarray:
    """(h, w, 3) uint8 -> (H, W, 3) uint8, Lanczos-resized; padding in `pad_color`
    (default: the median colour of the resized image's border, so the padding
    continues a plain background)."""
    resized = pixels
    if tuple(pixels.shape[:2]) != self.resized_size:
      resized = np.asarray(Image.fromarray(pixels).resize(self.resized_size[::-1], Image.Resampling.LANCZOS))
    if pad_color is None:
      border = np.concatenate([resized[0], resized[-1], resized[:, 0], resized[:, -1]])
      pad_color = np.median(border, axis=0)
    out = np.empty(self.target_size + (3,), np.uint8)
    out[...] = np.asarray(pad_color, np.float64).round().astype(np.uint8)
    nh, nw = self.resized_size
    out[self.top:self.top + nh, self.left:self.left + nw] = resized
    return out

  def labels(self, labels: np.ndarray) -> np.ndarray:
    """(h, w) integer labels -> (H, W) uint8, nearest-neighbour; padding is 0 (background)."""
    labels = np.asarray(labels, np.uint8)
    nh, nw = self.resized_size
    h, w = self.source_size
    # Index arithmetic instead of PIL: the sample positions are exactly the
    # pixel-centre rule `keypoints` uses.
    rows = np.minimum(((np.arange(nh) + 0.5) * h / nh).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(nw) + 0.5) * w / nw).astype(np.int64), w - 1)
    out = np.zeros(self.target_size, np.uint8)
    out[self.top:self.top + nh, self.left:self.left + nw] = labels[rows[:, None], cols[None, :]]
    return out

  def keypoints(self, keypoints: np.ndarray) -> np.ndarray:
    """(18, 2) (y, x) in the source -> int32 (18, 2) in the target.

    Joints missing or outside the source image come out (-1, -1); every joint
    inside it lands inside the resized region.
    """
    h, w = self.source_size
    nh, nw = self.resized_size
    inside, _ = drop_outside_joints(keypoints, h, w)
    present = kp.is_present(inside)
    out = np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32)
    y = np.floor((inside[:, 0] + 0.5) * nh / h).astype(np.int64)
    x = np.floor((inside[:, 1] + 0.5) * nw / w).astype(np.int64)
    out[present, 0] = np.clip(y[present], 0, nh - 1) + self.top
    out[present, 1] = np.clip(x[present], 0, nw - 1) + self.left
    return out


# ----------------------------------------------------------------------------
# DeepFashion names


# The In-shop Clothes Retrieval benchmark's categories (img/<MEN|WOMEN>/<category>/).
# Def-GAN's split script drops their underscores from flattened names; this
# table puts them back so both naming styles find their parsing maps.
INSHOP_CATEGORIES = {
    "MEN": ("Denim", "Jackets_Vests", "Pants", "Shirts_Polos", "Shorts", "Suiting", "Sweaters",
            "Sweatshirts_Hoodies", "Tees_Tanks"),
    "WOMEN": ("Blouses_Shirts", "Cardigans", "Denim", "Dresses", "Graphic_Tees", "Jackets_Coats",
              "Leggings", "Pants", "Rompers_Jumpsuits", "Shorts", "Skirts", "Sweaters",
              "Sweatshirts_Hoodies", "Tees_Tanks"),
}

_DEEPFASHION_NAME = re.compile(
    r"^fash?ion(?P<gender>WOMEN|MEN)(?P<category>[A-Za-z_]+?)id(?P<item>\d{8})(?P<number>\d{2})"
    r"_(?P<view_number>\d)(?P<view>[A-Za-z]+)\.(?:jpg|jpeg|png)$")


def deepfashion_parsing_path(name: str) -> str:
  """Where ADGAN's parsing map of a flattened DeepFashion image name lives.

  The flattened name joins the In-shop path `img/<gender>/<category>/id_<8
  digits>/<nn>_<v>_<view>.jpg` without `img/`, the slashes and the underscores
  after "id" and after the view number, behind a "fashion" prefix (Def-GAN's
  files: "fasion", and no underscores in the category either). The parsing map
  is the In-shop path under `semantic_merge3/`, with .npy:

    fashionWOMENBlouses_Shirtsid0000635004_1front.jpg
      -> semantic_merge3/WOMEN/Blouses_Shirts/id_00006350/04_1_front.npy

  Raises:
    BadInput("parsing_path_unknown"): the name does not follow that pattern.
  """
  match = _DEEPFASHION_NAME.match(name)
  if not match:
    raise BadInput("parsing_path_unknown",
                   f"cannot locate the parsing map of {name}: expected a flattened In-shop name like "
                   "fashionWOMENBlouses_Shirtsid0000635004_1front.jpg")
  gender, category = match["gender"], match["category"]
  restored = {c.replace("_", ""): c for c in INSHOP_CATEGORIES[gender]}
  category = category if category in INSHOP_CATEGORIES[gender] else restored.get(category, category)
  return (f"semantic_merge3/{gender}/{category}/id_{match['item']}/"
          f"{match['number']}_{match['view_number']}_{match['view']}.npy")


def name_stem(name: str) -> str:
  """File name without its extension: 'a_b.jpg' -> 'a_b'."""
  return name.rsplit(".", 1)[0] if "." in name else name


# ----------------------------------------------------------------------------
# Images and label maps


@dataclasses.dataclass(frozen=True)
class LoadedImage:
  """A decoded, validated image.

  Attributes:
    pixels: (H, W, 3) uint8 RGB (transparency composited over white).
    data: the file's bytes, unchanged.
    format: PIL's format name ("JPEG", "PNG", ...).
    plain_rgb: True when `data` decodes to exactly `pixels` with no conversion
      (an RGB file), so `data` may be stored as it is.
  """
  pixels: np.ndarray
  data: bytes
  format: str
  plain_rgb: bool


def _to_rgb(image: Image.Image) -> np.ndarray:
  if image.mode == "RGB":
    return np.asarray(image)
  if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
  return np.asarray(image.convert("RGB"))


def _read_bytes(path: epath.Path, missing_kind: str, unreadable_kind: str) -> bytes:
  try:
    return path.read_bytes()
  except FileNotFoundError as e:
    raise BadInput(missing_kind, "file not found") from e
  except OSError as e:
    raise BadInput(unreadable_kind, f"cannot read the file ({e.__class__.__name__}: {e})") from e


def read_image(path: PathLike, expected_size: Sequence[int] | None = None, *,
               min_size: int = 1) -> LoadedImage:
  """Reads and fully decodes an image file, checking what can go wrong with real copies.

  Args:
    path: the image file (any format PIL reads).
    expected_size: (height, width) it must have, or None for any size.
    min_size: smallest height and width accepted when `expected_size` is None.

  Raises:
    BadInput: "image_missing", "image_unreadable" (not an image, unknown format),
      "image_truncated" (empty or cut-off file) or "image_wrong_size".
  """
  path = epath.Path(path)
  data = _read_bytes(path, "image_missing", "image_unreadable")
  if not data:
    raise BadInput("image_truncated", "empty file (0 bytes)")
  try:
    with Image.open(io.BytesIO(data)) as image:
      width, height = image.size
      if expected_size is not None and (height, width) != tuple(expected_size):
        raise BadInput("image_wrong_size", f"image is {height}x{width} (HxW), expected "
                       f"{expected_size[0]}x{expected_size[1]}")
      if expected_size is None and min(height, width) < min_size:
        raise BadInput("image_wrong_size", f"image is {height}x{width} (HxW), smaller than {min_size} pixels")
      # Decoding everything is what finds a file cut off mid-scan (a header-only check would not).
      image.load()
      return LoadedImage(pixels=_to_rgb(image), data=data, format=image.format or "",
                         plain_rgb=image.mode == "RGB")
  except BadInput:
    raise
  except Image.UnidentifiedImageError as e:
    raise BadInput("image_unreadable", f"not an image file PIL can identify ({len(data):,} bytes)") from e
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    if "truncated" in str(e).lower() or "premature" in str(e).lower():
      raise BadInput("image_truncated", f"truncated image file ({e})") from e
    raise BadInput("image_unreadable", f"cannot decode ({e.__class__.__name__}: {e})") from e


# np.load parses the .npy header with ast.literal_eval, which CPython 3.11 does
# not run safely from several threads at once ("SystemError: AST constructor
# recursion depth mismatch", about 1 file in 3,000 here): one header at a time.
_NPY_HEADER_LOCK = threading.Lock()


def read_label_map(path: PathLike, num_classes: int, shapes: Sequence[Sequence[int]],
                   label_set: str = "") -> np.ndarray:
  """Reads a parsing map: a .npy integer array, or a single-channel (L or P mode) PNG.

  Args:
    path: .npy or .png file.
    num_classes: labels must lie in [0, num_classes).
    shapes: accepted (height, width) shapes (a trailing channel of 1 is dropped).
    label_set: name used in messages ("adgan8", "lip").

  Returns:
    (H, W) uint8 labels.

  Raises:
    BadInput: "parsing_missing", "parsing_unreadable", "parsing_wrong_shape" or
      "parsing_bad_labels".
  """
  path = epath.Path(path)
  data = _read_bytes(path, "parsing_missing", "parsing_unreadable")
  if path.suffix.lower() == ".npy":
    try:
      with _NPY_HEADER_LOCK:
        labels = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
      raise BadInput("parsing_unreadable", f"not a readable .npy array ({e.__class__.__name__}: {e})") from e
  else:
    try:
      with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode not in ("L", "P", "I", "I;16"):
          raise BadInput("parsing_unreadable", f"expected a single-channel label PNG (mode L or P), found "
                         f"mode {image.mode} (a colour visualisation rather than labels?)")
        labels = np.asarray(image)
    except BadInput:
      raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
      raise BadInput("parsing_unreadable", f"cannot decode ({e.__class__.__name__}: {e})") from e
  labels = np.asarray(labels)
  if labels.ndim == 3 and labels.shape[-1] == 1:
    labels = labels[..., 0]
  accepted = [tuple(int(v) for v in s) for s in shapes]
  if labels.ndim != 2 or labels.shape not in accepted:
    expected = " or ".join(f"{h}x{w}" for h, w in accepted)
    raise BadInput("parsing_wrong_shape", f"parsing map has shape {labels.shape}, expected {expected}")
  if labels.dtype.kind == "f":
    if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
      raise BadInput("parsing_bad_labels", "parsing map holds non-integer values")
  elif labels.dtype.kind not in "iub":
    raise BadInput("parsing_unreadable", f"parsing map has dtype {labels.dtype}, expected integers")
  low, high = (labels.min(), labels.max()) if labels.size else (0, 0)
  if low < 0 or high >= num_classes:
    raise BadInput("parsing_bad_labels", f"labels span [{low}, {high}], expected 0..{num_classes - 1} "
                   f"({label_set or 'label set'} has {num_classes} classes)")
  return labels.astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
  """(H, W) or (H, W, 1) uint8 labels, or (H, W, 3) uint8 RGB -> PNG bytes."""
  array = np.asarray(array, np.uint8)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG", compress_level=6)
  return buffer.getvalue()


def encode_jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
  """(H, W, 3) uint8 RGB -> JPEG bytes (4:4:4 at quality 95 unless told)."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="JPEG", quality=quality, subsampling=0)
  return buffer.getvalue()


def image_files(folder: PathLike) -> list[str]:
  """Sorted names of the image files directly in `folder` ([] if it does not exist)."""
  folder = epath.Path(folder)
  if not folder.is_dir():
    return []
  return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())


def describe_dir(folder: PathLike, limit: int = 12) -> str:
  """What a folder holds, for layout errors: 'a/, b.csv, ... (40 entries)'."""
  folder = epath.Path(folder)
  if not folder.exists():
    return "the directory does not exist"
  if not folder.is_dir():
    return "it is a file, not a directory"
  entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
  if not entries:
    return "nothing (empty directory)"
  shown = ", ".join(entries[:limit])
  return shown + (f", ... ({len(entries)} entries)" if len(entries) > limit else "")


def first_existing(root: PathLike, candidates: Sequence[str]) -> epath.Path | None:
  """The first of root/candidate that exists, or None."""
  root = epath.Path(root)
  for candidate in candidates:
    if (root / candidate).exists():
      return root / candidate
  return None


def check_image_size_sample(folder: PathLike, names: Sequence[str], expected_size: Sequence[int],
                            hint: str = "", sample: int = 5) -> None:
  """Raises LayoutError when none of the first `sample` readable images has `expected_size`.

  One wrong image is bad input; a folder of wrong images is the wrong folder
  (the uncropped 256x256 files given for the 256x176 layout, say), and would
  otherwise end in an empty dataset after a full pass.
  """
  folder = epath.Path(folder)
  sizes = {}
  for name in names:
    try:
      with Image.open(io.BytesIO((folder / name).read_bytes())) as image:
        sizes[name] = image.size[::-1]
    except Exception:  # noqa: BLE001  (unreadable files are reported later, one by one)
      continue
    if len(sizes) >= sample:
      break
  if sizes and all(tuple(s) != tuple(expected_size) for s in sizes.values()):
    found = ", ".join(f"{n} is {h}x{w}" for n, (h, w) in list(sizes.items())[:3])
    raise LayoutError(f"expected {expected_size[0]}x{expected_size[1]} (HxW) images in {folder}; found: "
                      f"{found}{'. ' + hint if hint else ''}")


def holdout(names: Sequence[str], fraction: float = 0.1) -> list[str]:
  """A deterministic held-out subset: the max(1, round(fraction * n)) names with
  the smallest SHA-256 digest (n >= 2; none for fewer). Independent of listing
  order and of the names' spelling order."""
  names = sorted(set(names))
  if len(names) < 2:
    return []
  count = min(len(names) - 1, max(1, round(fraction * len(names))))
  return sorted(sorted(names, key=lambda n: hashlib.sha256(n.encode("utf-8")).hexdigest())[:count])


# ----------------------------------------------------------------------------
# Driving a split


@dataclasses.dataclass(frozen=True)
class Person:
  """One annotated image to turn into a record.

  Attributes:
    name: the record's name (file name, or character/file for anime).
    identity: person-outfit id (character for anime).
    image_path: the image file.
    keypoints: (18, 2) int32 (y, x) as in the annotation CSV.
    annotation_file, line: where the keypoints come from.
    parsing_path: the parsing map file, or None.
  """
  name: str
  identity: str
  image_path: epath.Path
  keypoints: np.ndarray
  annotation_file: epath.Path
  line: int
  parsing_path: epath.Path | None = None


# A loader turns a Person into (record, non-fatal problems) or raises BadInput;
# each non-fatal problem is (kind, file, reason).
Loader = Callable[[Person], tuple[dict, list[tuple[str, PathLike, str]]]]


def _guarded(load: Loader, person: Person):
  try:
    return load(person), None
  except BadInput as e:
    return None, e


def ordered_map(fn: Callable, items: Iterable, workers: int) -> Iterator:
  """map(fn, items) in order, computed by `workers` threads (decoding and
  zlib release the GIL), with a bounded number of items in flight."""
  items = iter(items)
  if workers <= 1:
    yield from map(fn, items)
    return
  with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
    window = collections.deque(pool.submit(fn, item) for item in itertools.islice(items, 4 * workers))
    while window:
      result = window.popleft().result()
      for item in itertools.islice(items, 1):
        window.append(pool.submit(fn, item))
      yield result


def default_workers() -> int:
  """Loader threads: 4 per core (reading waits on the disk; decoding and zlib
  release the GIL), at most 16, beyond which the writer thread is the limit."""
  return max(1, min(16, 4 * (os.cpu_count() or 1)))


def person_records(people: Sequence[Person], load: Loader, report: BadInputReport,
                   workers: int | None = None) -> Iterator[tuple[int, dict]]:
  """Loads every person in order; yields (index, record) for the valid ones.

  Index i is the i-th stored image (TFDS keys, and the pair indices); its name
  is `report.stored_images[i]`. Bad images are reported and skipped.
  """
  workers = default_workers() if workers is None else workers
  for person, (result, error) in zip(people, ordered_map(lambda p: _guarded(load, p), people, workers)):
    if error is not None:
      file = person.annotation_file if error.kind.startswith("annotation") else (
          person.parsing_path if error.kind.startswith("parsing") and person.parsing_path else person.image_path)
      report.skip_image(person.name, error.kind, file, f"{person.name}: {error.reason}")
      continue
    record, notes = result
    for kind, file, reason in notes:
      line = person.line if epath.Path(file) == person.annotation_file else None
      report.add(kind, file, reason, line=line)
    index = len(report.stored_images)
    report.stored_images.append(person.name)
    yield index, record


def count_unannotated(report: BadInputReport, folder: PathLike, annotated: Iterable[str]) -> None:
  """Counts (and logs once, with examples) image files that no annotation row names
  (a file whose row was malformed is reported as that, not counted here)."""
  annotated = set(annotated) | set(report.skipped_images)
  extra = [n for n in image_files(folder) if n not in annotated]
  report.unannotated_images += len(extra)
  if extra:
    logging.info("%s %s: %d image files in %s are named in no annotation row and are not stored (e.g. %s)",
                 report.dataset, report.split, len(extra), folder, ", ".join(extra[:3]))


def finish_split(report: BadInputReport, metadata: dict, pairs: np.ndarray) -> None:
  """Stores the split's pairs and bad-input record in `metadata` and logs the summary.

  Raises:
    RuntimeError: no image at all was valid (a wrong layout that passed the
      quick checks); the problems logged above say why.
  """
  metadata.setdefault("pairs", {})[report.split] = np.asarray(pairs, np.int64).reshape(-1, 2).tolist()
  metadata.setdefault("skipped", {})[report.split] = report.to_metadata()
  summary = report.summary()
  if not report.stored_images:
    raise RuntimeError(f"{summary}: not one valid image; see the bad-input warnings above")
  (logging.warning if report.problems else logging.info)("%s", summary)
  if not len(pairs):
    logging.warning("%s %s: no valid pairs", report.dataset, report.split)
