"""Annotate a folder of photos with OpenPose keypoints, in the datasets' annotation-CSV format.

  python -m jaxpose.annotate --images DIR --weights FILE --output keypoints.csv [--protocol patn]

Writes the file every pose-transfer dataset ships (`fasion-resize-annotation-
*.csv`, `market-annotation-*.csv`, and jaxpose's `anime_pose`): header
`name:keypoints_y:keypoints_x`, then one row per image, `name:[y0, ..., y17]:
[x0, ..., x17]`, (y, x) in the image's pixels, -1 for a joint not found (all
-1 when no person is found). So users can build a DeepFashion-style dataset
from their own photos: resize or crop them to the training size first (e.g.
256x176), then annotate, then pair them.

--weights is the OpenPose COCO body model, Hzzone's body_pose_model.pth or
pose-gan/PATN's pose_estimator.h5 (CMU licence: non-commercial research only;
jaxpose cannot ship it). --protocol patn (the default) computes keypoints as
the scripts that annotated DeepFashion and Market-1501 did; 'original' as
CMU's demo (jaxpose.pose.estimate explains both; 'patn' refuses images taller
than 368 pixels, on which the original script crashed).

As the original script, an existing --output file is continued: images it
already lists are skipped and new rows appended (--overwrite starts afresh).
A bad image (unreadable, truncated, a name with ':' or a path separator, ...)
is reported with the reason and skipped; a summary ends the run. Exit status
0, or 1 when every image failed (and none was already in the output).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
import sys
from typing import Sequence

from absl import logging
import numpy as np
import tqdm

from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import image_io
from jaxpose.data import keypoints as kp

HEADER = ":".join(annotation_csv.ANNOTATION_COLUMNS)


@dataclasses.dataclass
class AnnotationSummary:
  """What one run did.

  Attributes:
    written: rows written (images annotated).
    people_found: of those, rows with at least one joint.
    joints_found: joints found over all written rows.
    already_present: images skipped because the output already listed them.
    skipped: (image name, kind, reason) of every image that was not annotated.
  """
  written: int = 0
  people_found: int = 0
  joints_found: int = 0
  already_present: int = 0
  skipped: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)

  def lines(self, output: str) -> list[str]:
    nobody = self.written - self.people_found
    mean = self.joints_found / self.people_found if self.people_found else 0.0
    out = [f"Wrote {self.written} rows to {output}: a person found in {self.people_found} "
           f"({mean:.1f} of 18 joints on average), nobody found in {nobody} (all joints -1)."]
    if self.already_present:
      out.append(f"{self.already_present} images were already in {output} and were kept as they are.")
    if self.skipped:
      kinds = collections.Counter(kind for _, kind, _ in self.skipped)
      out.append(f"{len(self.skipped)} images skipped ("
                 + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) + "):")
      out += [f"  {name}: {reason}" for name, _, reason in self.skipped]
    return out


def _existing_names(output: str) -> set[str]:
  """Names already in an annotation CSV being continued (its header must be the official one)."""
  report = bad_input.BadInputReport(dataset="annotate", split=os.path.basename(output))
  return set(annotation_csv.read_annotation_csv(output, report))


def annotate_folder(images_dir: str, estimator, output: str, *, overwrite: bool = False,
                    progress: bool = True) -> AnnotationSummary:
  """Runs `estimator.keypoints` on every image file directly in `images_dir` and writes the CSV.

  Args:
    images_dir: folder of photos (.jpg, .jpeg, .png, .bmp, .webp), read in sorted name order.
    estimator: anything with `keypoints((H, W, 3) uint8 RGB) -> (18, 2)` (a jaxpose.pose.PoseEstimator).
    output: the CSV to write or continue.
    overwrite: start a new file even if `output` exists.
    progress: show a tqdm progress bar.
  """
  if not os.path.isdir(images_dir):
    raise FileNotFoundError(f"--images {images_dir} is not a directory ({image_io.describe_dir(images_dir)})")
  names = image_io.image_files(images_dir)
  summary = AnnotationSummary()
  done: set[str] = set()
  continuing = os.path.exists(output) and not overwrite and os.path.getsize(output) > 0
  if continuing:
    done = _existing_names(output)
    logging.info("%s exists with %d rows: continuing it (pass --overwrite to start afresh)", output, len(done))
    with open(output, "rb") as f:
      f.seek(-1, os.SEEK_END)
      needs_newline = f.read(1) != b"\n"
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, "a" if continuing else "w") as f:
    if not continuing:
      f.write(HEADER + "\n")
    elif needs_newline:
      f.write("\n")
    for name in tqdm.tqdm(names, desc="annotate", unit="image", disable=not progress):
      if name in done:
        summary.already_present += 1
        continue
      if ":" in name or "/" in name or "\\" in name:
        summary.skipped.append((name, "bad_name", "the name contains ':' or a path separator, which the "
                                                 "':'-separated annotation CSV cannot hold; rename the file"))
        continue
      try:
        pixels = image_io.read_image(os.path.join(images_dir, name), min_size=1).pixels
        keypoints = np.asarray(estimator.keypoints(pixels))
      except bad_input.BadInput as e:
        summary.skipped.append((name, e.kind, e.reason))
        continue
      except ValueError as e:  # e.g. the 'patn' protocol on an image taller than 368 pixels
        summary.skipped.append((name, "unsupported_image", str(e)))
        continue
      f.write(annotation_csv.format_annotation_row(name, keypoints) + "\n")
      f.flush()
      found = int(np.sum(kp.is_present(keypoints)))
      summary.written += 1
      summary.people_found += found > 0
      summary.joints_found += found
  return summary


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m jaxpose.annotate",
      description="Write OpenPose keypoints of a folder of photos as a name:keypoints_y:keypoints_x CSV.")
  parser.add_argument("--images", required=True, help="folder of photos")
  parser.add_argument("--weights", required=True,
                      help="OpenPose COCO body weights: body_pose_model.pth (Hzzone/pytorch-openpose) or "
                           "pose_estimator.h5 (pose-gan / PATN)")
  parser.add_argument("--output", required=True, help="CSV to write (an existing one is continued)")
  parser.add_argument("--protocol", default="patn", choices=["patn", "original"],
                      help="'patn': as the field's compute_coordinates.py (default); 'original': CMU's demo")
  parser.add_argument("--overwrite", action="store_true", help="start a new CSV even if --output exists")
  parser.add_argument("--no_progress", action="store_true", help="no progress bar")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  from jaxpose.pose import estimate  # pylint: disable=g-import-not-at-top
  estimator = estimate.PoseEstimator.from_file(args.weights, protocol=args.protocol)
  summary = annotate_folder(args.images, estimator, args.output, overwrite=args.overwrite,
                            progress=not args.no_progress)
  print("\n".join(summary.lines(args.output)))
  return 1 if summary.skipped and not summary.written and not summary.already_present else 0


if __name__ == "__main__":
  sys.exit(main())
