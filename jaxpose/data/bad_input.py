"""Bad inputs of dataset builds: the error kinds, and the report every builder keeps.

Bad input policy. Real copies of the original files hold truncated downloads,
images of another size, rows a spreadsheet re-saved with the wrong separator,
and so on. A problem with one item never stops a build: it is reported (file,
line where there is one, reason, what was dropped) through `BadInputReport`
and that item is skipped:
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
import dataclasses
import os


from absl import logging


PathLike = str | os.PathLike


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
