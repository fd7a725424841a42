"""The official annotation and pair CSVs: reading, writing, and keypoint clean-up.

File formats (Def-GAN's `compute_coordinates.py` and `create_pairs_dataset.py`
wrote them; PATN and ADGAN reuse them; PATN names them `fasion-resize-...`,
ADGAN `fashion-resize-...`):
  annotation CSV  ':'-separated, header `name:keypoints_y:keypoints_x`; each
                  keypoint field a JSON list of 18 ints, (row y, column x) in the
                  stored image's pixels, -1 for a missing joint.
  pairs CSV       ','-separated, header `from,to`: image names.
A malformed row or a pair naming an unknown image is reported and skipped
(`jaxpose.data.bad_input`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable, Iterator, Sequence

from etils import epath
import numpy as np

from jaxpose.data import bad_input
from jaxpose.data import keypoints as kp


ANNOTATION_COLUMNS = ("name", "keypoints_y", "keypoints_x")


PAIR_COLUMNS = ("from", "to")


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
    raise bad_input.LayoutError(f"{what} {path} does not exist") from e
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
    raise bad_input.LayoutError(f"{what} {path} is empty; expected a header line {expected_line!r} and one row per image")
  fields = [f.strip().strip('"').strip() for f in header.split(separator)]
  missing = [c for c in expected if c not in fields]
  if missing:
    raise bad_input.LayoutError(
        f"{what} {path}: expected the header {expected_line!r} ({separator!r}-separated, as in the "
        f"official files); found {header[:120]!r}")
  return {c: fields.index(c) for c in expected}


_INTEGER = re.compile(r"^(?:np\.\w+\()?\s*(-?\d+)(?:\.0*)?\s*\)?$")


def parse_coordinates(field: str) -> list[int]:
  """'[12, -1, 40]' -> [12, -1, 40]. Raises bad_input.BadInput for anything else.

  Also takes '12.0' and numpy 2's 'np.int64(12)' (what the official
  `resize_fashion.py` writes when re-run under numpy 2).
  """
  text = field.strip().strip('"').strip()
  if not (text.startswith("[") and text.endswith("]")):
    raise bad_input.BadInput("annotation_malformed_row", f"expected a JSON list of ints like [12, -1, ...], found {text[:40]!r}")
  inner = text[1:-1].strip()
  if not inner:
    return []
  values = []
  for token in inner.split(","):
    match = _INTEGER.match(token.strip())
    if not match:
      raise bad_input.BadInput("annotation_malformed_row", f"non-numeric or non-integer coordinate {token.strip()[:20]!r}")
    values.append(int(match.group(1)))
  return values


def format_annotation_row(name: str, keypoints) -> str:
  """(18, 2) (y, x) keypoints -> 'name:[y0, ...]:[x0, ...]', the row `read_annotation_csv` reads."""
  points = np.asarray(keypoints)
  return ":".join([name, *("[" + ", ".join(str(int(v)) for v in points[:, i]) + "]" for i in (0, 1))])


def _valid_name(name: str) -> bool:
  # Names are joined to a folder: no separators, so none can point elsewhere.
  return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def check_annotation_header(path: bad_input.PathLike) -> None:
  """Raises bad_input.LayoutError unless `path` exists and starts with the official header."""
  path = epath.Path(path)
  text = _read_text(path, "annotation CSV")
  header = next((line for _, line in _lines(text)), None)
  _header_columns(path, header, ":", ANNOTATION_COLUMNS, "annotation CSV")


def read_annotation_csv(path: bad_input.PathLike, report: bad_input.BadInputReport) -> dict[str, Annotation]:
  """Reads an official annotation CSV; malformed rows are reported and left out.

  Args:
    path: a `*-annotation-*.csv` file: header `name:keypoints_y:keypoints_x` (the
      columns may come in any order), then one row per image.
    report: receives one problem per bad row (wrong separator or field count,
      not 18 values, non-numeric values, a name with a path separator, a repeated name).

  Returns:
    name -> Annotation, in file order (the first row of a repeated name wins).

  Raises:
    bad_input.LayoutError: the file is missing or its header is not the official one.
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
          raise bad_input.BadInput("annotation_malformed_row",
                         f"{axis} has {len(values)} values, expected {kp.NUM_KEYPOINTS}")
    except bad_input.BadInput as e:
      report.skip_image(name, e.kind, path, f"row of {name}: {e.reason}", line=number)
      continue
    if name in out:
      report.add("annotation_duplicate_name", path,
                 f"{name} appears again (first at line {out[name].line})", line=number)
      continue
    out[name] = Annotation(name=name, keypoints=np.stack([ys, xs], axis=-1).astype(np.int32), line=number)
  return out


def check_pairs_header(path: bad_input.PathLike) -> None:
  """Raises bad_input.LayoutError unless `path` exists and has a `from,to` header."""
  path = epath.Path(path)
  text = _read_text(path, "pairs CSV")
  header = next((line for _, line in _lines(text)), None)
  _header_columns(path, header, ",", PAIR_COLUMNS, "pairs CSV")


def read_pairs_csv(path: bad_input.PathLike, report: bad_input.BadInputReport) -> list[Pair]:
  """Reads an official pairs CSV (header `from,to`; pandas' index column is allowed).

  Rows without two non-empty names are reported and left out; names are checked later.

  Raises:
    bad_input.LayoutError: the file is missing or has no `from` and `to` columns.
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


def resolve_pairs(pairs: Iterable[Pair], report: bad_input.BadInputReport, pairs_file: bad_input.PathLike,
                  annotation_file: bad_input.PathLike) -> np.ndarray:
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


def report_outside_joints(report: bad_input.BadInputReport, file: bad_input.PathLike, name: str, dropped: Sequence[str],
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
