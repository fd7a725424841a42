"""Orbax checkpoints of the training state and the input position, verified on restore.

Layout of a run's directory:

  <workdir>/checkpoints/<step>/state   TrainState: step, rng, nets, opt, frozen, aux, nonfinite_step
  <workdir>/checkpoints/<step>/data    the Grain iterator position (JSON)
  <workdir>/checkpoints_set_aside/     damaged, diverged or superseded steps, moved here (never
                                       deleted), with SET_ASIDE.txt saying when and why

Saves are atomic (Orbax writes to a temporary directory and renames it), the
last `keep` are kept. Each save records, in the step's Orbax metadata
(`_CHECKPOINT_METADATA`), a SHA-256 checksum of every part of the state
(`nets/<network>`, `opt/<network>`, `step`, ...) and of the input position,
computed from the values saved. `restore_intact` restores the newest step
whose values match their checksums, and falls back past a damaged one
(truncated, deleted or overwritten files, unreadable metadata) with one log
line naming the step and why, setting the damaged step aside. A step saved
before checksums existed is restored unverified (a warning says so) and
refused if it holds NaN. A checkpoint of another model or shape is not
"damaged": it raises `WorkdirMismatch`, naming the differing parts.

Weights-only reads (`read_weights`) serve fine-tuning and generation from
another run's directory or from `python -m jaxpose.convert` output; they check
the networks' checksums too.

Checkpoints of jaxpose 0.1 (before systems: TrainState fields `generator`,
`discriminator_pb`, `generator_opt`, `pool_pb`, `loss_vgg`, ...) restore
too: `restore` reads them in their own layout and moves every field to its
place in the current one (`LEGACY_FIELDS`).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import datetime
import hashlib
import json
import os
from typing import Any, Sequence

from absl import logging
import grain.python as grain
import jax
import numpy as np
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


CHECKPOINTS_DIR = "checkpoints"
SET_ASIDE_DIR = "checkpoints_set_aside"
SET_ASIDE_LOG = "SET_ASIDE.txt"
METADATA_KEY = "jaxpose"  # our entry in Orbax's per-step custom metadata


class CheckpointCorrupt(Exception):
  """A checkpoint step cannot be restored as saved; `reason` says why in one line."""

  def __init__(self, step_dir: str, reason: str):
    self.step_dir = step_dir
    self.reason = reason
    super().__init__(f"checkpoint {step_dir} is damaged: {reason}")


class WorkdirMismatch(ValueError):
  """The run directory holds checkpoints of another model or shape than the config builds."""


class NoIntactCheckpoint(RuntimeError):
  """Every checkpoint of the run directory is damaged (they were set aside)."""


def manager(workdir: str, keep: int) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.join(os.path.abspath(workdir), CHECKPOINTS_DIR),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))


# ----------------------------------------------------------------------------
# Checksums of what was saved


def _host_array(x) -> np.ndarray:
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(x.addressable_data(0))  # the state is replicated: any local copy is the whole array
  return np.asarray(x)


def _to_host(tree: Any) -> Any:
  if all(not isinstance(x, jax.Array) or x.is_fully_addressable for x in jax.tree.leaves(tree)):
    return jax.device_get(tree)  # one batched transfer
  return jax.tree.map(_host_array, tree)


def _path_name(entry) -> str:
  for attr in ("key", "name", "idx"):
    if hasattr(entry, attr):
      return str(getattr(entry, attr))
  return str(entry)


def tree_digest(tree: Any) -> str:
  """SHA-256 over a pytree's leaves (path, dtype, shape, bytes), in path order."""
  leaves = [("/".join(_path_name(e) for e in path), leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(_to_host(tree))]
  digest = hashlib.sha256()
  for name, leaf in sorted(leaves, key=lambda item: item[0]):
    array = np.ascontiguousarray(_host_array(leaf))
    digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def state_parts(state: Any) -> dict[str, Any]:
  """A TrainState (or a dict of its fields) -> {'step': .., 'nets/generator': .., 'opt/generator': .., ...}."""
  fields = state if isinstance(state, dict) else {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
  parts = {}
  for field, value in fields.items():
    if isinstance(value, dict):
      for name, sub in value.items():
        parts[f"{field}/{name}"] = sub
    else:
      parts[field] = value
  return parts


def state_digests(state: Any) -> dict[str, str]:
  """{part: SHA-256} of every part of `state` (`state_parts`); parts without arrays are skipped."""
  return {name: tree_digest(part) for name, part in state_parts(state).items() if jax.tree.leaves(part)}


def _iterator_digest(state_bytes: bytes) -> str:
  try:
    canonical = json.dumps(json.loads(state_bytes), sort_keys=True).encode()
  except (ValueError, TypeError):
    canonical = bytes(state_bytes)
  return hashlib.sha256(canonical).hexdigest()


def save(mngr: ocp.CheckpointManager, step: int, state: Any, iterator, *, metadata: dict | None = None) -> None:
  """Saves state and iterator position at `step` (asynchronously; see wait), with their checksums.

  `metadata` (JSON-able) is recorded beside the checksums in the step's Orbax
  metadata (`read_metadata`).
  """
  record = dict(metadata or {})
  # Orbax writes the step metadata from process 0 only; the state is replicated, so its copy is the state.
  if jax.process_index() == 0:
    record["digests"] = state_digests(state)
    if iterator is not None:
      record["data_digest"] = _iterator_digest(iterator.get_state())
  record["saved"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  items = {"state": ocp.args.StandardSave(state)}
  if iterator is not None:
    items["data"] = grain.PyGrainCheckpointSave(iterator)
  mngr.save(step, args=ocp.args.Composite(**items), force=True, custom_metadata={METADATA_KEY: record})


def read_metadata(step_dir: str) -> dict | None:
  """What `save` recorded for a step (checksums, ...), or None (saved before checksums, or unreadable)."""
  try:
    with open(os.path.join(step_dir, "_CHECKPOINT_METADATA")) as f:
      record = (json.load(f).get("custom_metadata") or {}).get(METADATA_KEY)
  except (OSError, ValueError, AttributeError):
    return None
  return record if isinstance(record, dict) and isinstance(record.get("digests"), dict) else None


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


def _restore_state(mngr: ocp.CheckpointManager, step: int, abstract_state: Any) -> Any:
  state_dir = os.path.join(str(mngr.directory), str(step), "state")
  legacy = is_legacy(state_dir)
  target = _legacy_target(abstract_state) if legacy else abstract_state
  restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
  if legacy:
    logging.info("%s holds a jaxpose 0.1 TrainState; its fields were moved to the current layout", state_dir)
    return _from_legacy(restored.state, abstract_state)
  return restored.state


def _restore_position(mngr: ocp.CheckpointManager, step: int, iterator) -> None:
  mngr.restore(step, args=ocp.args.Composite(data=grain.PyGrainCheckpointRestore(iterator)))


def restore(mngr: ocp.CheckpointManager, step: int, abstract_state: Any, iterator=None) -> Any:
  """Restores state (sharded as `abstract_state` says) and, given an iterator, its position in place.

  Unverified: `restore_intact` is what training and evaluation use.
  """
  state = _restore_state(mngr, step, abstract_state)
  if iterator is not None:
    _restore_position(mngr, step, iterator)
  return state


# ----------------------------------------------------------------------------
# Verified restore, fallback and setting steps aside


def _one_line(error: BaseException, limit: int = 240) -> str:
  """An exception as one short line: its type and the start of its first line (TensorStore specs cut)."""
  text = str(error).strip().splitlines()[0] if str(error).strip() else ""
  text = text.split(" See full TensorStore details")[0].split(" [tensorstore_spec=")[0]
  if len(text) > limit:
    text = text[:limit] + "..."
  return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _flat_shapes(tree: Any) -> dict[tuple[str, ...], tuple[int, ...]]:
  return {tuple(_path_name(e) for e in path): tuple(getattr(leaf, "shape", np.shape(leaf)))
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def _saved_shapes(state_dir: str) -> dict[tuple[str, ...], tuple[int, ...]]:
  from etils import epath  # pylint: disable=g-import-not-at-top
  metadata = ocp.StandardCheckpointHandler().metadata(epath.Path(state_dir))
  return _flat_shapes(getattr(metadata, "tree", metadata))


def _layout_problems(expected: Any, state_dir: str) -> list[tuple[str, tuple[str, ...], str]]:
  """(kind, path, text) of every array missing, unexpected or of another shape in the saved state.

  Raises whatever Orbax raises when the saved metadata cannot be read.
  """
  want, have = _flat_shapes(expected), _saved_shapes(state_dir)
  problems = [("missing", p, f"missing {'/'.join(p)} {want[p]}") for p in sorted(want.keys() - have.keys())]
  problems += [("unexpected", p, f"unexpected {'/'.join(p)} {have[p]}") for p in sorted(have.keys() - want.keys())]
  problems += [("shape", p, f"{'/'.join(p)}: saved {have[p]}, model {want[p]}")
               for p in sorted(want.keys() & have.keys()) if want[p] != have[p]]
  return problems


def _mismatch_message(workdir: str, step: int, problems, saved_model: str | None, model: str | None) -> str:
  parts = collections.Counter("/".join(p[:2]) if p[0] in ("nets", "opt", "aux", "frozen") else p[0]
                              for _, p, _ in problems)
  kinds = collections.Counter(kind for kind, _, _ in problems)
  who = ""
  if saved_model and model and saved_model != model:
    who = f" (it was written with config.model={saved_model!r}; this config has {model!r})"
  elif saved_model:
    who = (f" (config.model={saved_model!r} in both, so another shape: widths, blocks, image size, norm or "
           "pretrained networks)")
  examples = "\n  ".join(text for _, _, text in problems[:6])
  return (f"{workdir} holds a run of another model or shape than this config builds{who}: its checkpoint "
          f"{step} has {kinds['missing']} arrays fewer than the model needs, {kinds['unexpected']} it does not "
          f"know and {kinds['shape']} of other shapes; the differing parts: "
          + ", ".join(f"{name} ({n})" for name, n in sorted(parts.items()))
          + f".\n  {examples}\nUse another --workdir for this config, or the config that wrote this run.")


def _agree(bad: bool) -> bool:
  """True when any process of a multi-host run found the step bad (all processes take the same decision)."""
  if jax.process_count() == 1:
    return bad
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.any(multihost_utils.process_allgather(np.asarray(bad))))


def _verify(step_dir: str, state: Any, record: dict | None) -> None:
  """Raises CheckpointCorrupt when the restored values differ from the checksums recorded at save
  (without checksums: when they hold NaN or Inf, which the divergence guard never saves)."""
  if record is None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(_to_host(state)):
      array = np.asarray(leaf)
      if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise CheckpointCorrupt(step_dir, f"no checksums were recorded for it and "
                                          f"{jax.tree_util.keystr(path)} holds NaN or Inf")
    return
  expected = record["digests"]
  got = state_digests(state)
  differ = sorted(k for k in expected if got.get(k) != expected[k])
  if differ:
    raise CheckpointCorrupt(step_dir, "the restored values differ from the checksums recorded when it was "
                                      f"saved, in {', '.join(differ)}")


def _position_file_intact(step_dir: str, record: dict | None) -> bool | None:
  """Whether this process's saved input position matches its recorded checksum (None: unknown)."""
  if not (record and record.get("data_digest")) or jax.process_index() != 0:
    return None
  path = os.path.join(step_dir, "data", f"process_{jax.process_index()}-of-{jax.process_count()}.json")
  try:
    with open(path, "rb") as f:
      return _iterator_digest(f.read()) == record["data_digest"]
  except OSError:
    return False


def _restore_checked(mngr, step: int, abstract_state: Any, iterator, model: str | None) -> Any:
  """Restores `step` and checks it.

  Raises:
    CheckpointCorrupt: damaged.
    WorkdirMismatch: intact, but of another model or shape, or with an input
      position this data pipeline cannot take (a config changed between runs).
  """
  step_dir = os.path.join(str(mngr.directory), str(step))
  state_dir = os.path.join(step_dir, "state")
  workdir = os.path.dirname(str(mngr.directory))
  record = read_metadata(step_dir)
  if not os.path.isdir(state_dir):
    raise CheckpointCorrupt(step_dir, "its state directory is missing")
  try:
    legacy = is_legacy(state_dir)
    problems = _layout_problems(_legacy_target(abstract_state) if legacy else abstract_state, state_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorrupt(step_dir, f"its metadata cannot be read ({_one_line(e)})") from e
  if problems:
    raise WorkdirMismatch(_mismatch_message(workdir, step, problems, (record or {}).get("model"), model))
  try:
    state = _restore_state(mngr, step, abstract_state)
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorrupt(step_dir, f"Orbax could not restore it ({_one_line(e)})") from e
  _verify(step_dir, state, record)
  if iterator is not None:
    intact = _position_file_intact(step_dir, record)
    if intact is False:
      raise CheckpointCorrupt(step_dir, "its input position differs from the checksum recorded when it was saved")
    try:
      _restore_position(mngr, step, iterator)
    except Exception as e:  # pylint: disable=broad-except
      if not intact:
        raise CheckpointCorrupt(step_dir, f"its input position cannot be restored ({_one_line(e)})") from e
      raise WorkdirMismatch(
          f"{workdir}: the input position saved with step {step} is intact but does not fit this config's data "
          f"pipeline ({_one_line(e)}). Did data.worker_count, the dataset or the batch size change between runs? "
          "Resume with the run's own settings, or use another --workdir.") from e
  if record is None:
    logging.warning("Checkpoint %s has no checksums (saved by an older jaxpose, or its _CHECKPOINT_METADATA "
                    "is gone): restored unverified", step_dir)
  return state


def set_aside(mngr: ocp.CheckpointManager, step: int, label: str, reason: str) -> str:
  """Moves `checkpoints/<step>` to `checkpoints_set_aside/<step>.<label>` (never deletes); returns the new path.

  Process 0 moves and logs the move in SET_ASIDE.txt; every process then
  re-reads the step list.
  """
  workdir = os.path.dirname(str(mngr.directory))
  root = os.path.join(workdir, SET_ASIDE_DIR)
  destination = os.path.join(root, f"{step}.{label}")
  suffix = 2
  while os.path.exists(destination):
    destination = os.path.join(root, f"{step}.{label}.{suffix}")
    suffix += 1
  if jax.process_index() == 0:
    os.makedirs(root, exist_ok=True)
    os.rename(os.path.join(str(mngr.directory), str(step)), destination)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open(os.path.join(root, SET_ASIDE_LOG), "a") as f:
      f.write(f"{now}  step {step} -> {os.path.basename(destination)}: {reason}\n")
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(f"jaxpose set aside {step}")
  mngr.reload()
  return destination


@dataclasses.dataclass(frozen=True)
class Restored:
  """What `restore_intact` found.

  Attributes:
    state: the restored TrainState.
    step: its step.
    set_aside: paths of the damaged steps moved aside on the way (newest first).
    record: what `save` recorded for the step (None for steps without checksums).
  """
  state: Any
  step: int
  set_aside: tuple[str, ...]
  record: dict | None


def restore_intact(mngr: ocp.CheckpointManager, abstract_state: Any, iterator=None, *, step: int | None = None,
                   model: str | None = None, move_damaged: bool = True) -> Restored:
  """The newest checkpoint whose values match their checksums (or exactly `step`), restored.

  A damaged step is logged with one line (which step, why), set aside under
  `checkpoints_set_aside/<step>.corrupt` when `move_damaged` (never deleted),
  and the next older step is tried.

  Raises:
    FileNotFoundError: no checkpoint, or `step` is not one of them.
    CheckpointCorrupt: `step` was asked for and is damaged.
    NoIntactCheckpoint: every step was damaged.
    WorkdirMismatch: the checkpoints are of another model or shape (`model`: config.model, for the message).
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  if step is not None and step not in steps:
    raise FileNotFoundError(f"config.restore_step={step}: {mngr.directory} holds no step {step}; it holds "
                            f"{sorted(steps) or 'none'}")
  if not steps:
    raise FileNotFoundError(f"no checkpoint in {mngr.directory}")
  moved: list[str] = []
  for candidate in ([step] if step is not None else steps):
    error = None
    try:
      state = _restore_checked(mngr, candidate, abstract_state, iterator, model)
    except CheckpointCorrupt as e:
      error = e
    if _agree(error is not None):
      reason = error.reason if error is not None else "damaged on another process of this run"
      if step is not None:
        raise CheckpointCorrupt(os.path.join(str(mngr.directory), str(candidate)), reason
                                + "; choose another config.restore_step") from error
      where = "setting it aside" if move_damaged else "skipping it"
      logging.warning("Checkpoint step %d in %s is damaged (%s); %s and falling back to the previous step",
                      candidate, mngr.directory, reason, where)
      if move_damaged:
        moved.append(set_aside(mngr, candidate, "corrupt", reason))
      continue
    return Restored(state=state, step=candidate, set_aside=tuple(moved),
                    record=read_metadata(os.path.join(str(mngr.directory), str(candidate))))
  raise NoIntactCheckpoint(
      f"no intact checkpoint in {mngr.directory}: every step was damaged"
      + (f" and was set aside ({', '.join(moved)}); re-running starts from scratch (or init_from)" if moved else "")
      + ". Check the disk the run directory is on.")


def _step_dirs(path: str) -> tuple[list[str], bool]:
  """A run dir, its checkpoints/ dir, or one step dir -> (step dirs holding `state`, newest first; explicit)."""
  path = os.path.abspath(path)
  if os.path.isdir(os.path.join(path, "state")):
    return [path], True
  for root in (os.path.join(path, CHECKPOINTS_DIR), path):
    if os.path.isdir(root):
      steps = [int(n) for n in os.listdir(root) if n.isdigit() and os.path.isdir(os.path.join(root, n, "state"))]
      if steps:
        return [os.path.join(root, str(s)) for s in sorted(steps, reverse=True)], False
  raise FileNotFoundError(
      f"no checkpoint found at {path}: expected a training run directory (with checkpoints/<step>/state), "
      "a step directory, or the output of `python -m jaxpose.convert`")


def _read_networks(step_dir: str) -> dict:
  try:
    tree = ocp.StandardCheckpointer().restore(os.path.join(step_dir, "state"))
  except Exception as e:  # pylint: disable=broad-except
    raise CheckpointCorrupt(step_dir, f"Orbax could not restore it ({_one_line(e)})") from e
  if "nets" in tree and "opt" in tree:
    nets = dict(tree["nets"])
  else:  # a convert output, or a jaxpose 0.1 TrainState: networks are the top-level dicts with 'params'
    nets = {k: v for k, v in tree.items() if isinstance(v, dict) and "params" in v}
  record = read_metadata(step_dir)
  if record is not None:
    recorded = record["digests"]
    differ = sorted(name for name, variables in nets.items()
                    if f"nets/{name}" in recorded and tree_digest(variables) != recorded[f"nets/{name}"])
    if differ:
      raise CheckpointCorrupt(step_dir, f"the weights of {', '.join(differ)} differ from the checksums recorded "
                                        "when it was saved")
  else:
    _verify(step_dir, nets, None)  # no checksums: at least no NaN
  return nets


def read_weights(path: str) -> tuple[dict, str]:
  """The trained networks' variables of a checkpoint, as numpy-backed arrays, without a target.

  Returns ({network name: variables}, step directory). Reads our training
  checkpoints (current and jaxpose 0.1 layouts) and `jaxpose.convert` outputs
  ({network name: variables} at the top level), checking recorded checksums.
  Given a run directory, a damaged newest step is skipped with a warning (and
  left where it is) for the newest intact one; a step directory given
  explicitly must be intact. The caller picks what it needs and checks shapes.
  """
  step_dirs, explicit = _step_dirs(path)
  for step_dir in step_dirs:
    try:
      nets = _read_networks(step_dir)
    except CheckpointCorrupt as e:
      if explicit:
        raise
      logging.warning("Checkpoint %s is damaged (%s); reading the previous step instead", step_dir, e.reason)
      continue
    logging.info("Read weights of %s from %s", sorted(nets), step_dir)
    return nets, step_dir
  raise NoIntactCheckpoint(f"no intact checkpoint in {path}: every step is damaged (see the warnings above)")
