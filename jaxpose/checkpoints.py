"""Orbax checkpoints of the training state and the input position.

Layout of a run's directory:

  <workdir>/checkpoints/<step>/state   TrainState: params, optimizer states, step, RNG
  <workdir>/checkpoints/<step>/data    the Grain iterator position (JSON)

Saves are atomic (Orbax writes to a temporary directory and renames it), the
last `keep` are kept. Weights-only reads (`read_weights`) serve fine-tuning
from another run's directory or from `python -m jaxpose.convert` output.
"""

from __future__ import annotations

import os
from typing import Any

import grain.python as grain
import orbax.checkpoint as ocp
from absl import logging


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save(mngr: ocp.CheckpointManager, step: int, state: Any, iterator) -> None:
  """Saves state and iterator position at `step` (asynchronously; see wait)."""
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.PyGrainCheckpointSave(iterator)), force=True)


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any, iterator) -> Any:
  """Restores state (sharded as `abstract_state` says) and the iterator position in place."""
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract_state), data=grain.PyGrainCheckpointRestore(iterator)))
  return restored.state


def _find_step_dir(path: str) -> str:
  """A run dir, its checkpoints/ dir, or one step dir -> the directory holding `state`."""
  path = os.path.abspath(path)
  if os.path.isdir(os.path.join(path, "state")):
    return path
  for root in (os.path.join(path, "checkpoints"), path):
    if os.path.isdir(root):
      steps = [int(n) for n in os.listdir(root) if n.isdigit() and os.path.isdir(os.path.join(root, n, "state"))]
      if steps:
        return os.path.join(root, str(max(steps)))
  raise FileNotFoundError(
      f"no checkpoint found at {path}: expected a training run directory (with checkpoints/<step>/state), "
      "a step directory, or the output of `python -m jaxpose.convert`")


def read_weights(path: str) -> tuple[dict, str]:
  """Reads a checkpoint's saved tree as numpy-backed arrays, without a target.

  Returns (tree, step directory). Used for weights-only starts; the caller picks
  what it needs and checks shapes.
  """
  step_dir = _find_step_dir(path)
  tree = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "state"))
  logging.info("Read weights from %s", step_dir)
  return tree, step_dir
