"""What the web demo does, without the web: people, poses, uploads and timed generation.

Everything the page shows lives in the model's frame: gallery people and
uploads are letterboxed to the model's (H, W) once, when they enter, so the
joints a user edits are the joints the model sees, and a picture already at the
model's size passes through unchanged (`Pipeline.transfer` on it is then exactly
what the page returns). Generation goes through the public `jaxpose.load`
surface only: `Pipeline.transfer` and `Pipeline.swap`, each one jitted call.

Bad input raises `ValueError` with a message meant for the page (what was
wrong, what was expected); the web layer shows it and keeps serving.
"""

from __future__ import annotations

import dataclasses
import io
import os
import time
from typing import Any, Callable, Mapping, Sequence

from absl import logging
import numpy as np
from PIL import Image

from jaxpose import visualize
from jaxpose.data import keypoints as kp
from jaxpose.data import letterbox
from jaxpose.data import parsing as parsing_lib

# Label sets an uploaded parsing map may use (Pipeline.transfer's `labels`).
UPLOAD_LABELS = ("lip", "adgan8")
# What the page calls the person of an upload.
UPLOADED_NAME = "uploaded picture"


@dataclasses.dataclass(frozen=True)
class Person:
  """A person in the model's frame.

  Attributes:
    name: what the page calls them.
    image: uint8 (H, W, 3) at the model's size.
    parsing: uint8 (H, W) labels of the set `labels` (None: no parsing map).
    labels: 'lip' or 'adgan8'.
    keypoints: int32 (18, 2) (y, x) in the model's frame, -1 missing (all -1
      when unknown, as for uploads).
  """
  name: str
  image: np.ndarray
  parsing: np.ndarray | None
  labels: str
  keypoints: np.ndarray


@dataclasses.dataclass(frozen=True)
class Result:
  """One generation: the picture (uint8 (H, W, 3)), how long the call took, and what was done."""
  image: np.ndarray
  seconds: float
  swapped: dict[str, str]


def _fit(image: np.ndarray, parsing: np.ndarray | None, keypoints: np.ndarray | None, size: tuple[int, int]):
  """Letterboxes a picture, its labels and joints to `size` (unchanged when already that size)."""
  box = letterbox.Letterbox.fit(image.shape[:2], size)
  joints = (np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32) if keypoints is None
            else box.keypoints(np.asarray(keypoints)))
  return box.image(image), None if parsing is None else box.labels(parsing), joints


def decode_picture(data: bytes | str, what: str) -> np.ndarray:
  """An uploaded picture (file bytes or path) -> uint8 (h, w, 3) RGB; ValueError if it is no picture."""
  try:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
      image.load()
      if image.mode in ("RGBA", "LA", "P"):
        image = image.convert("RGBA").convert("RGB")
      return np.asarray(image.convert("RGB"))
  except (OSError, SyntaxError, ValueError) as e:  # PIL raises these for files that are not pictures
    name = os.path.basename(data) if isinstance(data, str) else "the upload"
    raise ValueError(f"{what}: {name} is not a picture PIL can read ({type(e).__name__}); expected a PNG or JPEG "
                     "file") from e


def decode_parsing(data: bytes | str, what: str) -> np.ndarray:
  """An uploaded parsing map -> integer (h, w) labels; ValueError unless it is a one-channel label picture.

  A parsing map stores each pixel's label as its value (LIP: 0..19, ADGAN: 0..7),
  as a grayscale ('L'), 16-bit ('I;16', 'I') or palette ('P', the LIP
  annotations' format: the palette index is the label) PNG.
  """
  try:
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
      image.load()
      mode = image.mode
      labels = np.asarray(image)
  except (OSError, SyntaxError, ValueError) as e:
    name = os.path.basename(data) if isinstance(data, str) else "the upload"
    raise ValueError(f"{what}: {name} is not a picture PIL can read ({type(e).__name__}); expected a "
                     "one-channel PNG whose pixel values are the labels") from e
  if mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L") or labels.ndim != 2:
    raise ValueError(f"{what}: expected a one-channel label PNG (each pixel's value is its label: LIP 0..19, "
                     f"ADGAN 0..7), got a {mode} picture of shape {labels.shape}; a coloured visualisation of a "
                     "parsing is not a label map")
  return labels.astype(np.int32)


def pose_picture(keypoints: np.ndarray, size: tuple[int, int], scale: int) -> np.ndarray:
  """The stick figure of (18, 2) model-frame joints as in our sample grids, `scale` times enlarged.

  Drawn at the enlarged size (so lines stay thin and joints round) on black.
  Returns uint8 (H * scale, W * scale, 3).
  """
  joints = np.asarray(keypoints)
  present = kp.is_present(joints)
  # Joint (y, x) covers pixels [y * s, (y + 1) * s): draw at the block's centre.
  scaled = np.where(present[:, None], joints * scale + scale // 2, kp.MISSING)
  return visualize.pose_image(scaled, size[0] * scale, size[1] * scale)


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
  """Nearest-neighbour enlargement, so small pictures are visible and their pixels stay honest."""
  return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1) if scale > 1 else image


class Backend:
  """One pipeline, the people of its test split, and timed calls.

  Attributes:
    pipeline: the `jaxpose.inference.Pipeline`.
    size: (H, W) of the model.
    components: the style code's components ((): no swaps).
    people: gallery people (model frame), in test-split order.
    display_scale: integer enlargement for the page (pictures about 384 px high).
    compile_seconds: time of the warm-up calls (tracing and compiling).
    detect_keypoints: uint8 (h, w, 3) picture -> (18, 2) (y, x) joints in its
      pixels (e.g. `jaxpose.pose.PoseEstimator.keypoints`), run on uploads; None:
      an upload's own joints stay unknown.
  """

  def __init__(self, pipeline, people: Sequence[Person] = (),
               detect_keypoints: Callable[[np.ndarray], np.ndarray] | None = None):
    self.pipeline = pipeline
    self.detect_keypoints = detect_keypoints
    self.size = tuple(int(v) for v in pipeline.image_size)
    self.components = tuple(pipeline.components)
    self.people = list(people)
    self.display_scale = max(1, round(384 / self.size[0]))
    self.compile_seconds = 0.0

  @property
  def system_name(self) -> str:
    return self.pipeline.system.name

  @property
  def needs_parsing(self) -> bool:
    """Whether the model reads the person's parsing map (ADGAN does, PATN does not)."""
    return "source_parsing" in self.pipeline.keys

  # ------------------------------------------------------------------ people

  def person(self, name: str) -> Person:
    for person in self.people:
      if person.name == name:
        return person
    raise ValueError(f"no person named {name!r} in the gallery; choose one of {[p.name for p in self.people][:5]}...")

  def upload(self, image: bytes | str, parsing: bytes | str | None, labels: str = "lip") -> Person:
    """A user's picture and parsing map (files) -> a `Person` in the model's frame; ValueError if unusable."""
    if labels not in UPLOAD_LABELS:
      raise ValueError(f"label set {labels!r}: expected one of {list(UPLOAD_LABELS)}")
    if image is None:
      raise ValueError("no picture uploaded: upload the person's picture (PNG or JPEG)")
    pixels = decode_picture(image, "picture")
    labels_map = None if parsing is None else decode_parsing(parsing, "parsing map")
    if labels_map is None and self.needs_parsing:
      raise ValueError(f"{self.system_name} needs the person's parsing map: upload a label PNG of the picture's "
                       f"size {pixels.shape[0]}x{pixels.shape[1]}")
    # The pipeline's own checks: sizes agree, labels within the label set.
    self.pipeline.person(pixels, labels_map, labels=labels, name="uploaded picture")
    detected = None if self.detect_keypoints is None else self.detect_keypoints(pixels)
    image_fit, parsing_fit, joints = _fit(pixels, labels_map, detected, self.size)
    return Person(UPLOADED_NAME, image_fit, parsing_fit, labels, joints)

  def keypoints_from_rows(self, rows: Any) -> np.ndarray:
    """Joint table rows [name, y, x] (18 of them) -> int32 (18, 2); ValueError saying which joint is wrong."""
    rows = [list(r) for r in (rows.values.tolist() if hasattr(rows, "values") else rows)]
    if len(rows) != kp.NUM_KEYPOINTS:
      raise ValueError(f"target pose: expected {kp.NUM_KEYPOINTS} joints (one row each), got {len(rows)} rows")
    if sorted(str(r[0]) for r in rows if r) == sorted(kp.KEYPOINT_NAMES):
      # The page lets people sort the table by a column: the joint's name says which row is which.
      rows = sorted(rows, key=lambda r: kp.KEYPOINT_INDEX[str(r[0])])
    out = np.empty((kp.NUM_KEYPOINTS, 2), np.float64)
    for j, row in enumerate(rows):
      if len(row) != 3:
        raise ValueError(f"target pose, joint {kp.KEYPOINT_NAMES[j]}: expected a row [joint, y, x], got {row}")
      for c, value in enumerate(row[1:]):
        try:
          out[j, c] = float(value)
        except (TypeError, ValueError):
          raise ValueError(f"target pose, joint {kp.KEYPOINT_NAMES[j]}: {'yx'[c]}={value!r} is not a number "
                           "(pixels in the model's frame, -1 for a missing joint)") from None
    return kp.validate(out, *self.size, what="target pose")

  @staticmethod
  def rows_from_keypoints(keypoints: np.ndarray) -> list[list]:
    return [[name, int(y), int(x)] for name, (y, x) in zip(kp.KEYPOINT_NAMES, np.asarray(keypoints))]

  # ------------------------------------------------------------------ calls

  @staticmethod
  def _common_labels(people: Sequence[Person]) -> tuple[str, list[np.ndarray | None]]:
    """One label set for a call: LIP maps are merged to ADGAN's 8 when any map is ADGAN-8."""
    if all(p.labels == "lip" for p in people):
      return "lip", [p.parsing for p in people]
    return "adgan8", [p.parsing if p.labels == "adgan8" or p.parsing is None
                      else parsing_lib.merge(p.parsing, "lip", "adgan8") for p in people]

  def generate(self, person: Person, target_keypoints: np.ndarray,
               donors: Mapping[str, Person] | None = None) -> Result:
    """The person in the target pose (model frame), with `donors` {component: Person} swapped in.

    No donors: `Pipeline.transfer`; donors: `Pipeline.swap`. Timed on the host
    around the whole call (letterboxing, heatmaps, the jitted function, the copy back).
    """
    donors = {c: d for c, d in (donors or {}).items() if d is not None}
    if donors and not self.components:
      raise ValueError(f"{self.system_name} has no per-component style code, so nothing to swap")
    labels, maps = self._common_labels([person, *donors.values()])
    start = time.perf_counter()
    if donors:
      image = self.pipeline.swap(person.image, maps[0], target_keypoints,
                                 {c: (d.image, m) for (c, d), m in zip(donors.items(), maps[1:])}, labels=labels)
    else:
      source_keypoints = person.keypoints if kp.is_present(person.keypoints).any() else None
      image = self.pipeline.transfer(person.image, maps[0], target_keypoints, labels=labels,
                                     source_keypoints=source_keypoints)
    seconds = time.perf_counter() - start
    return Result(image, seconds, {c: d.name for c, d in donors.items()})

  def warm_up(self) -> float:
    """Compiles every call the page makes (transfer, and swap where there is one); returns the seconds it took."""
    person = self.people[0] if self.people else Person(
        "blank", np.full(self.size + (3,), 128, np.uint8), np.zeros(self.size, np.uint8), "lip",
        np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32))
    start = time.perf_counter()
    self.generate(person, person.keypoints)
    if self.components:
      self.generate(person, person.keypoints, {self.components[0]: person})
    self.compile_seconds = time.perf_counter() - start
    return self.compile_seconds


def test_split_people(pipeline, data_dir: str | None = None, max_people: int = 24) -> list[Person]:
  """Up to `max_people` pictures of the test split of the dataset the model was trained on, named '<index>: <name>'.

  [] (with a log line) when that dataset is not built here: the page then
  works from uploads alone.
  """
  from jaxpose.data import pair_source  # pylint: disable=g-import-not-at-top (reading TFDS is slow to import)
  config = pipeline.config
  name = config.data.name
  data_dir = data_dir or config.data.get("data_dir") or None
  try:
    source = pair_source(name, "test", data_dir)
  except (FileNotFoundError, ValueError) as e:
    logging.warning("No gallery: the test split of %s is not available (%s). Upload pictures instead.", name, e)
    return []
  size = tuple(int(v) for v in pipeline.image_size)
  people = []
  # Spread over the split (it lists each person's poses together): more people, fewer repeats.
  for i in np.unique(np.linspace(0, len(source.images) - 1, min(max_people, len(source.images))).round().astype(int)):
    i = int(i)
    record = source.images[i]
    raw_name = record["name"]
    raw_name = raw_name.decode("utf-8") if isinstance(raw_name, bytes) else str(raw_name)
    parsing = record["parsing"][..., 0] if source.has_parsing else None
    image, labels_map, joints = _fit(record["image"], parsing, record["keypoints"], size)
    people.append(Person(f"{i}: {raw_name}", image, labels_map, source.parsing_labels, joints))
  return people
