"""Orbax checkpoints of the training state and the input position.

Layout of a run's directory:

  <workdir>/checkpoints/<step>/state   TrainState: step, rng, nets, opt, frozen, aux, nonfinite_step
  <workdir>/checkpoints/<step>/data    the Grain iterator position (JSON)

Saves are atomic (Orbax writes to a temporary directory and renames it), the
last `keep` are kept. Weights-only reads (`read_weights`) serve fine-tuning and
generation from another run's directory or from `python -m jaxpose.convert`
output.

Checkpoints of jaxpose 0.1 (before systems: TrainState fields `generator`,
`discriminator_pb`, `generator_opt`, `pool_pb`, `loss_vgg`, ...) restore
too: `restore` reads them in their own layout and moves every field to its
place in the current one (`LEGACY_FIELDS`).
"""

from __future__ import annotations

import ast
import json
import os
from typing import Any

from absl import logging
import grain.python as grain
import orbax.checkpoint as ocp

from jaxpose.systems.base import TrainState

# A run's config beside its checkpoints (written by `train`, read by `jaxpose.inference.load`).
CONFIG_FILE = "config.json"

# jaxpose 0.1 TrainState field -> (current TrainState field, key).
LEGACY_FIELDS = {
    "generator": ("nets", "generator"),
    "discriminator_pb": ("nets", "discriminator_pb"),
    "discriminator_pp": ("nets", "discriminator_pp"),
    "generator_opt": ("opt", "generator"),
    "discriminator_pb_opt": ("opt", "discriminator_pb"),
    "discriminator_pp_opt": ("opt", "discriminator_pp"),
    "pool_pb": ("aux", "pool_pb"),
    "pool_pp": ("aux", "pool_pp"),
    "loss_vgg": ("frozen", "loss_vgg"),
    "cx_vgg": ("frozen", "cx_vgg"),
}


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), "checkpoints"),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


def save(mngr: ocp.CheckpointManager, step: int, state: Any, iterator) -> None:
  """Saves state and iterator position at `step` (asynchronously; see wait)."""
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state), data=grain.PyGrainCheckpointSave(iterator)), force=True)


def _top_level_keys(state_dir: str) -> set[str]:
  """The first path component of every leaf recorded in an Orbax item's _METADATA."""
  path = os.path.join(state_dir, "_METADATA")
  if not os.path.exists(path):
    return set()
  with open(path) as f:
    tree = json.load(f).get("tree_metadata", {})
  return {ast.literal_eval(key)[0] for key in tree}


def is_legacy(state_dir: str) -> bool:
  """True for a jaxpose 0.1 TrainState (fields `generator`, `generator_opt`, ...)."""
  return "generator_opt" in _top_level_keys(state_dir)


def _legacy_target(abstract_state: TrainState) -> dict:
  target = {"step": abstract_state.step, "rng": abstract_state.rng,
            "nonfinite_step": abstract_state.nonfinite_step}
  for old, (field, key) in LEGACY_FIELDS.items():
    group = getattr(abstract_state, field)
    if key in group:
      target[old] = group[key]
  return target


def _from_legacy(tree: dict, abstract_state: TrainState) -> TrainState:
  groups = {field: dict(getattr(abstract_state, field)) for field in ("nets", "opt", "frozen", "aux")}
  for old, (field, key) in LEGACY_FIELDS.items():
    if old in tree:
      groups[field][key] = tree[old]
  return TrainState(step=tree["step"], rng=tree["rng"], nonfinite_step=tree["nonfinite_step"], **groups)


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any, iterator=None) -> Any:
  """Restores state (sharded as `abstract_state` says) and, given an iterator, its position in place."""
  state_dir = os.path.join(str(mngr.directory), str(step), "state")
  legacy = is_legacy(state_dir)
  target = _legacy_target(abstract_state) if legacy else abstract_state
  items = {"state": ocp.args.StandardRestore(target)}
  if iterator is not None:
    items["data"] = grain.PyGrainCheckpointRestore(iterator)
  restored = mngr.restore(step, args=ocp.args.Composite(**items))
  if legacy:
    logging.info("%s holds a jaxpose 0.1 TrainState; its fields were moved to the current layout", state_dir)
    return _from_legacy(restored.state, abstract_state)
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
  """The trained networks' variables of a checkpoint, as numpy-backed arrays, without a target.

  Returns ({network name: variables}, step directory). Reads our training
  checkpoints (current and jaxpose 0.1 layouts) and `jaxpose.convert` outputs
  ({network name: variables} at the top level). The caller picks what it
  needs and checks shapes.
  """
  step_dir = _find_step_dir(path)
  tree = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "state"))
  if "nets" in tree and "opt" in tree:
    nets = dict(tree["nets"])
  else:  # a convert output, or a jaxpose 0.1 TrainState: networks are the top-level dicts with 'params'
    nets = {k: v for k, v in tree.items() if isinstance(v, dict) and "params" in v}
  logging.info("Read weights of %s from %s", sorted(nets), step_dir)
  return nets, step_dir
