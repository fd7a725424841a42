"""Weight files of the pose detector jaxpose trains itself (`jaxpose.systems.pose_detector`).

A learned detector travels as a directory of two files:

  detector.npz    its Flax variables, one array per '/'-joined path
                  ('params/stem/kernel', ...), float32; read with
                  allow_pickle=False, so loading never runs code;
  detector.json   what it is and how it was made: the module's
                  hyperparameters, the image size and heatmap sigma it was
                  trained at, the read-out threshold, the training config,
                  the exact commands, seed, steps, training time, final test
                  metrics, and the SHA-256 of detector.npz.

jaxpose ships one, trained on the synthetic people at 64x44
(`jaxpose/weights/synthetic_pose_detector/`). `load(None)` or `load("synthetic")` returns
it; `load(path)` reads such a directory, a detector.npz, or a training run of
the pose_detector system (its latest checkpoint; image size then unknown).
`jaxpose.pretrained.load("pose_detector", path)` is the public entry.

Export a run (how the shipped detector was made):

  python -m jaxpose.pose.learned --workdir runs/synthetic_pose_detector \\
      --config configs/synthetic_pose_detector.py --output jaxpose/weights/synthetic_pose_detector
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.resources
import json
import os
import sys
from typing import Any, Sequence

from flax import traverse_util
import numpy as np

from jaxpose import weights as weights_lib
from jaxpose.models import pose_detector as detector_lib

WEIGHTS_FILE = "detector.npz"
INFO_FILE = "detector.json"
FORMAT = 1


def shipped_directory() -> str:
  """The installed package's synthetic detector directory."""
  return str(importlib.resources.files("jaxpose") / "weights" / "synthetic_pose_detector")


@dataclasses.dataclass(frozen=True)
class LearnedDetector:
  """A loaded detector.

  Attributes:
    model: the `ResnetPoseDetector` (hyperparameters read off the weights).
    variables: its Flax variables (numpy).
    image_size: (height, width) it was trained at, or None when unknown.
    threshold: its keypoint read-out threshold.
    info: detector.json's content ({} for a training run).
    description: one log line: which weights, from where.
  """
  model: detector_lib.ResnetPoseDetector
  variables: Any
  image_size: tuple[int, int] | None
  threshold: float
  info: dict
  description: str

  def keypoint_detector(self) -> detector_lib.LearnedKeypointDetector:
    """As a `KeypointDetector` (uint8 images -> (B, 18, 2)), e.g. for the metric suite's `pckh_learned`."""
    return detector_lib.keypoint_detector(self.model, self.variables, self.threshold, self.image_size)


def save(directory: str, variables: Any, info: dict) -> dict:
  """Writes detector.npz and detector.json (info plus format, hyperparameters, size, checksum) -> the JSON dict."""
  os.makedirs(directory, exist_ok=True)
  flat = {"/".join(path): np.asarray(value, np.float32)
          for path, value in traverse_util.flatten_dict(dict(variables)).items()}
  weights_path = os.path.join(directory, WEIGHTS_FILE)
  np.savez(weights_path, **flat)
  info = {"format": FORMAT, "module": "jaxpose.models.pose_detector.ResnetPoseDetector",
          "hyperparameters": detector_lib.hparams_from_variables(variables),
          "parameters": int(sum(v.size for v in flat.values())), **info,
          "sha256": {WEIGHTS_FILE: weights_lib.file_sha256(weights_path)}}
  with open(os.path.join(directory, INFO_FILE), "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
    f.write("\n")
  return info


def _read_npz(path: str) -> dict:
  with np.load(path, allow_pickle=False) as data:
    flat = {tuple(key.split("/")): np.asarray(data[key]) for key in data.files}
  return traverse_util.unflatten_dict(flat)


def _from_directory(directory: str) -> LearnedDetector:
  info_path = os.path.join(directory, INFO_FILE)
  weights_path = os.path.join(directory, WEIGHTS_FILE)
  with open(info_path) as f:
    info = json.load(f)
  if info.get("format") != FORMAT:
    raise ValueError(f"{info_path}: format {info.get('format')!r}, expected {FORMAT}")
  expected = info.get("sha256", {}).get(WEIGHTS_FILE)
  actual = weights_lib.file_sha256(weights_path)
  if expected != actual:
    raise ValueError(f"{weights_path}: SHA-256 {actual} does not match {expected} recorded in {info_path} "
                     "(a damaged or replaced file)")
  variables = _read_npz(weights_path)
  model = detector_lib.ResnetPoseDetector(**detector_lib.hparams_from_variables(variables))
  size = tuple(info["image_size"]) if info.get("image_size") else None
  steps = info.get("steps")
  return LearnedDetector(
      model=model, variables=variables, image_size=size,
      threshold=float(info.get("threshold", detector_lib.DEFAULT_THRESHOLD)), info=info,
      description=(f"learned pose detector from {directory} ({info.get('dataset', '?')}, "
                   f"{size[0]}x{size[1]}, {steps} steps)" if size else f"learned pose detector from {directory}"))


SHIPPED_NAME = "synthetic"  # what configs write for the shipped detector (a path field can't hold None)


def load(path: str | None = None) -> LearnedDetector:
  """The shipped synthetic detector (path None or "synthetic"), or one from `path` (see the module docstring)."""
  if path is None or path == SHIPPED_NAME:
    return _from_directory(shipped_directory())
  if not os.path.exists(path):
    raise FileNotFoundError(f"no learned pose detector at {path}: expected a directory with {INFO_FILE} and "
                            f"{WEIGHTS_FILE} (python -m jaxpose.pose.learned), a {WEIGHTS_FILE}, or a "
                            "pose_detector training run")
  if os.path.isdir(path) and os.path.exists(os.path.join(path, INFO_FILE)):
    return _from_directory(path)
  if path.endswith(".npz"):
    sibling = os.path.join(os.path.dirname(os.path.abspath(path)), INFO_FILE)
    if os.path.basename(path) == WEIGHTS_FILE and os.path.exists(sibling):
      return _from_directory(os.path.dirname(os.path.abspath(path)))
    variables = _read_npz(path)
    model = detector_lib.ResnetPoseDetector(**detector_lib.hparams_from_variables(variables))
    return LearnedDetector(model, variables, None, detector_lib.DEFAULT_THRESHOLD, {},
                           f"learned pose detector from {path} (trained image size unknown)")
  from jaxpose import checkpoints  # pylint: disable=g-import-not-at-top
  nets, step_dir = checkpoints.read_weights(path)
  if "detector" not in nets:
    raise ValueError(f"{step_dir} holds no pose detector (it holds {sorted(nets)}): train one with "
                     "configs/synthetic_pose_detector.py or a pose-detector config of your dataset")
  variables = nets["detector"]
  model = detector_lib.ResnetPoseDetector(**detector_lib.hparams_from_variables(variables))
  return LearnedDetector(model, variables, None, detector_lib.DEFAULT_THRESHOLD, {},
                         f"learned pose detector from {step_dir} (trained image size unknown)")


# ----------------------------------------------------------------------------
# Export of a training run


def export(workdir: str, config, output: str, *, config_spec: str, command: str | None = None) -> dict:
  """A pose_detector run's latest weights and its metrics.json -> `save(output, ...)`."""
  from jaxpose import checkpoints  # pylint: disable=g-import-not-at-top
  nets, step_dir = checkpoints.read_weights(workdir)
  if "detector" not in nets:
    raise ValueError(f"{step_dir} holds no pose detector (it holds {sorted(nets)})")
  metrics_path = os.path.join(workdir, "metrics.json")
  with open(metrics_path) as f:
    metrics = json.load(f)
  steps = int(os.path.basename(step_dir))
  if metrics.get("train_steps") != steps:
    raise ValueError(f"{metrics_path} is of step {metrics.get('train_steps')}, the latest checkpoint of step "
                     f"{steps}: evaluate it first (--mode=evaluate)")
  train_command = (f"python -m jaxpose.main --config {config_spec} --workdir {os.path.relpath(workdir)}")
  info = {
      "dataset": config.data.name, "image_size": list(config.data.image_size),
      "heatmap_sigma": config.data.heatmap_sigma, "threshold": config.detector.threshold,
      "seed": config.seed, "steps": steps, "batch_size": config.batch_size,
      "training_seconds": weights_lib.training_seconds(workdir),
      "commands": {"train": train_command,
                   "export": command or " ".join(["python -m jaxpose.pose.learned"] + sys.argv[1:])},
      "metrics": metrics, "config": json.loads(config.to_json()),
  }
  return save(output, nets["detector"], info)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description="Export a pose_detector training run as detector.npz + detector.json.")
  parser.add_argument("--workdir", required=True, help="the training run (its latest checkpoint and metrics.json)")
  parser.add_argument("--config", required=True, help="the run's config, e.g. configs/synthetic_pose_detector.py")
  parser.add_argument("--output", required=True, help="directory to write")
  args = parser.parse_args(argv)
  file_name, _, variant = args.config.partition(":")
  # Configs are code that imports `configs.*`: run from the repository root, as python -m jaxpose.main.
  module = importlib.import_module(os.path.splitext(os.path.normpath(file_name))[0].replace(os.sep, "."))
  config = module.get_config(variant)
  info = export(args.workdir, config, args.output, config_spec=args.config)
  print(f"Wrote {args.output}: {info['parameters']:,} parameters, {info['steps']} steps, "
        f"pckh_learned {info['metrics'].get('pckh_learned')}, sha256 {info['sha256'][WEIGHTS_FILE]}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
