"""Driving one split of a dataset build: people -> records in parallel, bad-input bookkeeping,
held-out names, and the split's metadata."""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import itertools
import os
from typing import Callable, Iterable, Iterator, Sequence

from absl import logging
from etils import epath
import numpy as np

from jaxpose.data import bad_input
from jaxpose.data import image_io


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


# A loader turns a Person into (record, non-fatal problems) or raises bad_input.BadInput;
# each non-fatal problem is (kind, file, reason).


Loader = Callable[[Person], tuple[dict, list[tuple[str, bad_input.PathLike, str]]]]


def _guarded(load: Loader, person: Person):
  try:
    return load(person), None
  except bad_input.BadInput as e:
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


def person_records(people: Sequence[Person], load: Loader, report: bad_input.BadInputReport,
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


def count_unannotated(report: bad_input.BadInputReport, folder: bad_input.PathLike, annotated: Iterable[str]) -> None:
  """Counts (and logs once, with examples) image files that no annotation row names
  (a file whose row was malformed is reported as that, not counted here)."""
  annotated = set(annotated) | set(report.skipped_images)
  extra = [n for n in image_io.image_files(folder) if n not in annotated]
  report.unannotated_images += len(extra)
  if extra:
    logging.info("%s %s: %d image files in %s are named in no annotation row and are not stored (e.g. %s)",
                 report.dataset, report.split, len(extra), folder, ", ".join(extra[:3]))


def finish_split(report: bad_input.BadInputReport, metadata: dict, pairs: np.ndarray) -> None:
  """Stores the split's pairs and bad-input record in `metadata` and logs the summary.

  Raises:
    RuntimeError: the split ends up empty: not one valid image (a wrong layout
      that passed the quick checks), or not one pair (e.g. every identity left
      with a single valid image). The build fails rather than prepare a
      dataset that training cannot use; the problems logged above say why.
  """
  metadata.setdefault("pairs", {})[report.split] = np.asarray(pairs, np.int64).reshape(-1, 2).tolist()
  metadata.setdefault("skipped", {})[report.split] = report.to_metadata()
  summary = report.summary()
  if not report.stored_images:
    raise RuntimeError(f"{summary}: not one valid image; see the bad-input warnings above")
  if not len(pairs):
    raise RuntimeError(
        f"{summary}: the {report.split} split has no pair, so training or evaluation could not use it. Pairs "
        "join two valid images of one person (with a torso where the builder requires one); see the "
        "bad-input warnings above for what was dropped, fix those files, and build again")
  (logging.warning if report.problems else logging.info)("%s", summary)
