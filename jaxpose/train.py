"""The training engine: `train_and_evaluate(config, workdir)`, for every system.

The engine knows nothing of any one system (`jaxpose/systems/`): it opens the
data, builds the mesh, creates the state from shapes (already sharded), decides
where a run starts, runs the jitted step, logs, draws samples, checkpoints and
evaluates. A system supplies its batch keys, networks, initial state and a
pure `train_step(state, batch, rng)`.

The step (`_train_step`) wraps the system's update: the RNG key of step s is
`fold_in(seed key, s)` (a restarted run draws the same dropout masks and pool
choices), the step counter advances, and a non-finite loss or an update far
larger than the weights leaves the whole state untouched and records the step
(the host stops at its next check; jaxpose/divergence.py, which also watches
the logged metrics for spikes).
Data parallelism is `jax.jit` over a 1-D `data` mesh: the batch is split over
all devices of all hosts, parameters and optimizer states are replicated, and
XLA inserts the gradient all-reduce. Metrics stay on the device until they are
logged.

Where training starts is decided in one place, `initial_state`.

Reliability (each in its own module): one writer per run directory
(`run_lock`), checkpoints verified on restore with fallback past damage
(`checkpoints.restore_intact`), the divergence guard (`divergence`), and a
checkpoint on SIGTERM (`preemption`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxpose import checkpoints
from jaxpose import cpu_runtime
from jaxpose import divergence
from jaxpose import evaluation
from jaxpose import optim
from jaxpose import preemption
from jaxpose import run_lock
from jaxpose import sharding as sharding_lib
from jaxpose import systems
from jaxpose import visualize
from jaxpose import weights as weights_lib
from jaxpose.data import pipeline
from jaxpose.data import sources
from jaxpose.data import unpaired
from jaxpose.io import state_dict as state_dict_lib
from jaxpose.systems import TrainState


# ----------------------------------------------------------------------------
# Compilation cache


def default_compilation_cache_dir() -> str:
  """$XDG_CACHE_HOME/jaxpose/xla (default ~/.cache/jaxpose/xla)."""
  root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(root, "jaxpose", "xla")


def enable_compilation_cache(config) -> str | None:
  """Turns on JAX's persistent compilation cache, so that a re-run skips compiling.

  config.compilation_cache_dir: "" = keep a directory already configured (the
  tests set one), else `default_compilation_cache_dir()`; "none" = off.
  The official-size ADGAN step takes minutes to compile on CPU.
  """
  wanted = config.get("compilation_cache_dir", "")
  if wanted == "none":
    return None
  directory = wanted or jax.config.jax_compilation_cache_dir or default_compilation_cache_dir()
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  return directory


# ----------------------------------------------------------------------------
# The step


def _train_step(state: TrainState, batch: Any, *, system: systems.System,
                schedule: Callable[[jax.Array], jax.Array], max_update_ratio: float = 0.0) -> tuple[TrainState, dict]:
  """The system's update, with the step's RNG, the step counter and the divergence guard."""
  rng = jax.random.fold_in(state.rng, state.step)
  updated, metrics = system.train_step(state, batch, rng)
  updated = updated.replace(step=state.step + 1)
  metrics.update(divergence.update_ratios(state.nets, updated.nets))
  accepted = divergence.accept(metrics, max_update_ratio)
  # A non-finite loss or an update far larger than the weights leaves the state
  # untouched (no poisoned weights, ever) and records the step; the host loop
  # stops at its next check (jaxpose/divergence.py).
  new_state = jax.tree.map(lambda a, b: jnp.where(accepted, a, b), updated, state)
  # Steps are counted 1-based like checkpoints: the update that would make step s.
  new_state = new_state.replace(nonfinite_step=jnp.where(
      (state.nonfinite_step < 0) & ~accepted, state.step + 1, state.nonfinite_step))
  metrics["learning_rate"] = schedule(state.step)
  metrics["nonfinite_step"] = new_state.nonfinite_step
  return new_state, metrics


# ----------------------------------------------------------------------------
# State creation and the resume order


def _create_state(seed: int, frozen: Any, *, system: systems.System, example: dict) -> TrainState:
  """Random-init state with the given pretrained (frozen) weights; traced under eval_shape and jit."""
  rng = jax.random.PRNGKey(seed)
  # Parameters are drawn through an 'rbg' key: XLA compiles its RNG several
  # times faster than threefry's on CPU (11 s -> 5 s for the synthetic generator).
  init_seed = jax.random.randint(jax.random.fold_in(rng, 1), (), 0, 2**31 - 1)
  init_key = jax.random.key(init_seed, impl="rbg")
  example_batch = {k: jnp.zeros(s.shape, s.dtype) for k, s in example.items()}
  nets, opt, aux, frozen_state = system.init(init_key, example_batch, frozen)
  return TrainState(step=jnp.zeros((), jnp.int32), rng=rng, nets=nets, opt=opt, frozen=frozen_state, aux=aux,
                    nonfinite_step=jnp.full((), -1, jnp.int32))


@dataclasses.dataclass(frozen=True)
class Engine:
  """The jitted pieces of a run, built from shapes alone.

  Attributes:
    system: the built system.
    batch_keys: the model inputs a device batch holds.
    abstract_state: TrainState of ShapeDtypeStructs carrying their shardings,
      from `jax.eval_shape`; also the Orbax restore target.
    state_shardings: the sharding of every state leaf (replicated).
    create: () -> a fresh TrainState, created already sharded.
    step: jitted step (state, batch) -> (state, metrics), state donated.
    generate: jitted (nets, batch) -> the system's generate dict.
  """
  system: systems.System
  batch_keys: tuple[str, ...]
  abstract_state: Any
  state_shardings: Any
  create: Callable[[], TrainState]
  step: Callable
  generate: Callable


def example_batch_shapes(transform: pipeline.PairTransform, keys) -> dict[str, jax.ShapeDtypeStruct]:
  """A batch of one, as ShapeDtypeStructs of `keys`, derived from the transform."""
  shapes = transform.example_shapes()
  missing = [k for k in keys if k not in shapes]
  if missing:
    raise ValueError(f"the data pipeline does not produce {missing}; it produces {sorted(shapes)}")
  return {k: jax.ShapeDtypeStruct((1,) + tuple(shapes[k][0]), shapes[k][1]) for k in keys}


def build_engine(config: ml_collections.ConfigDict, mesh, system: systems.System,
                 transform: pipeline.PairTransform) -> Engine:
  replicated = sharding_lib.replicated_sharding(mesh)
  batch_shard = sharding_lib.batch_sharding(mesh)
  keys = system.batch_keys(config)
  create = functools.partial(_create_state, system=system, example=example_batch_shapes(transform, keys))
  frozen = system.pretrained.variables
  abstract = jax.eval_shape(create, config.seed, frozen)
  state_shardings = jax.tree.map(lambda _: replicated, abstract)
  abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          abstract, state_shardings)
  create_jit = jax.jit(create, static_argnums=0, out_shardings=state_shardings)
  batches = batch_shard if system.batches_per_step == 1 else (batch_shard,) * system.batches_per_step
  step = jax.jit(functools.partial(_train_step, system=system, schedule=optim.learning_rate_schedule(config.optim),
                                   max_update_ratio=float(config.guard.max_update_ratio)),
                 in_shardings=(state_shardings, batches), out_shardings=(state_shardings, replicated),
                 donate_argnums=0)
  generate = jax.jit(system.generate, in_shardings=(replicated, batch_shard), out_shardings=replicated)
  return Engine(system=system, batch_keys=keys, abstract_state=abstract, state_shardings=state_shardings,
                create=lambda: create_jit(config.seed, frozen), step=step, generate=generate)


def _check_same_shapes(what: str, expected: Any, got: Any) -> None:
  exp = {jax.tree_util.keystr(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(expected)}
  have = {jax.tree_util.keystr(p): tuple(np.shape(x)) for p, x in jax.tree_util.tree_leaves_with_path(got)}
  problems = [f"missing {k}" for k in sorted(exp.keys() - have.keys())]
  problems += [f"unexpected {k}" for k in sorted(have.keys() - exp.keys())]
  problems += [f"{k}: checkpoint {have[k]} vs model {exp[k]}" for k in sorted(exp.keys() & have.keys())
               if exp[k] != have[k]]
  if problems:
    raise ValueError(f"init_from: the {what} weights do not fit this config's model:\n  "
                     + "\n  ".join(problems[:30]) + ("\n  ..." if len(problems) > 30 else ""))


def init_networks(config, system_cls: type[systems.System]) -> tuple[str, ...]:
  """config.init_what: 'all', or the names of the networks to load (comma-separated or a sequence)."""
  value = config.init_what
  names = tuple(system_cls.networks) if value == "all" else tuple(
      n.strip() for n in (value.split(",") if isinstance(value, str) else value) if n.strip())
  unknown = [n for n in names if n not in system_cls.networks]
  if unknown or not names:
    raise ValueError(f"config.init_what must be 'all' or names among {system_cls.networks}, got {value!r}")
  return names


def _check_init_from(path: str) -> None:
  if not (os.path.exists(path) or weights_lib.resolve(path) is not None):
    raise FileNotFoundError(f"config.init_from={path!r} does not exist (nor is it shipped weights: "
                            f"{sorted(weights_lib.SHIPPED)})")


def load_init_weights(config, system_cls: type[systems.System]) -> tuple[dict, str]:
  """Weights for a weights-only start: ({network: variables}, origin).

  `config.init_from` may be an official generator file (`System.is_official_file`; its sibling
  discriminator files are used when present), one of our run or step
  directories, a `python -m jaxpose.convert` output, or shipped weights (a
  name of `jaxpose.weights.SHIPPED` or a weights directory).
  """
  path = config.init_from
  _check_init_from(path)
  wanted = init_networks(config, system_cls)
  if system_cls.is_official_file(path):
    try:
      weights, origin = system_cls.read_official(config, path, wanted)
    except ValueError as e:
      hint = systems.official_generator_hint(path, besides=system_cls.name)
      if not hint:
        raise
      raise ValueError(f"config.init_from={path} is not an official {system_cls.name} generator file{hint}") from e
  elif weights_lib.resolve(path) is not None:
    weights, record = weights_lib.read(path, config)
    origin = f"weights {weights_lib.resolve(path)} ({record.get('steps', '?')} steps)"
  else:
    weights, origin = checkpoints.read_weights(path)
  weights = {k: v for k, v in weights.items() if k in wanted}
  if "generator" in wanted and "generator" not in weights:
    raise ValueError(f"{origin} holds no generator weights (it holds {sorted(weights)})")
  return weights, origin


def _with_weights(state: TrainState, weights: dict, system: systems.System, state_shardings) -> TrainState:
  """Weights-only start: the given networks' variables replace the fresh ones; fresh optimizers, step 0."""
  nets, opt = dict(state.nets), dict(state.opt)
  for name, variables in weights.items():
    _check_same_shapes(name, state.nets[name], variables)
    nets[name] = jax.tree.map(lambda x, ref: jnp.asarray(x, ref.dtype), variables, state.nets[name])
    opt[name] = system.optimizer(name).init(nets[name]["params"])
  return jax.device_put(state.replace(nets=nets, opt=opt), state_shardings)


def initial_state(config, mngr, engine: Engine, iterator) -> tuple[TrainState, str]:
  """Where a run starts. The resume order, written down once:

  1. a checkpoint in `<workdir>/checkpoints`: everything (parameters,
     optimizer states, step, RNG, input position), so re-running the same
     command continues an interrupted run exactly. The newest intact one
     (checked against the checksums recorded at save; a damaged step is set
     aside and the one before it is used), or step `config.restore_step`
     (later steps are set aside; see `_resume`);
  2. otherwise `config.init_from` (one of our run/step directories, a
     `jaxpose.convert` output, or an official `<epoch>_net_netG.pth`): weights
     only (the networks `config.init_what` names), fresh optimizers, step 0:
     fine-tuning;
  3. otherwise from scratch: random init with the pretrained feature weights.
  """
  if mngr.all_steps():
    state, origin = _resume(config, mngr, engine, iterator)
    if config.init_from:
      logging.info("config.init_from=%s is not used: %s holds checkpoints of this run, which come first",
                   config.init_from, mngr.directory)
    return state, origin
  if config.get("restore_step", -1) >= 0:
    raise FileNotFoundError(f"config.restore_step={config.restore_step}, but {mngr.directory} holds no checkpoint")
  state = engine.create()
  if config.init_from:
    weights, origin = load_init_weights(config, type(engine.system))
    state = _with_weights(state, weights, engine.system, engine.state_shardings)
    return state, f"weights of {sorted(weights)} from {origin}; fresh optimizers, step 0 (fine-tuning)"
  return state, "from scratch (random init, pretrained feature networks)"


def _resume(config, mngr, engine: Engine, iterator) -> tuple[TrainState, str]:
  """Restores the newest intact checkpoint, or `config.restore_step` (setting the later steps aside).

  restore_step is applied once: every checkpoint saved after it records
  `restore_step_applied`, so re-running the same command (the flag still
  set) resumes from the newest step instead of discarding the new progress.
  """
  wanted = config.get("restore_step", -1)
  wanted = wanted if wanted >= 0 else None
  latest = mngr.latest_step()
  if wanted is not None and latest > wanted:
    record = checkpoints.read_metadata(os.path.join(str(mngr.directory), str(latest))) or {}
    if record.get("restore_step_applied") == wanted:
      logging.info("config.restore_step=%d was already applied: step %d descends from it, so the run resumes "
                   "from step %d", wanted, latest, latest)
      wanted = None
  restored = checkpoints.restore_intact(mngr, engine.abstract_state, iterator, step=wanted, model=config.model)
  notes = [f"resumed from {mngr.directory}/{restored.step} (optimizer states and input position included)"]
  if restored.set_aside:
    notes.append(f"damaged newer steps set aside: {', '.join(restored.set_aside)}")
  if wanted is not None:
    later = sorted((s for s in mngr.all_steps() if s > wanted), reverse=True)
    moved = [checkpoints.set_aside(mngr, s, f"after_restore_step_{wanted}",
                                   f"config.restore_step={wanted} resumed from an earlier step") for s in later]
    if moved:
      notes.append(f"config.restore_step={wanted}: later steps set aside (not deleted): {', '.join(moved)}")
  return restored.state, "; ".join(notes)


def _restore_lineage(config, mngr, start_step: int) -> int:
  """The restore_step this run's checkpoints descend from (-1: none), recorded with every save."""
  wanted = config.get("restore_step", -1)
  if wanted >= 0 and start_step == wanted:
    return wanted
  if start_step == 0:
    return -1
  record = checkpoints.read_metadata(os.path.join(str(mngr.directory), str(start_step))) or {}
  return int(record.get("restore_step_applied", -1))


def parameter_counts(state: TrainState) -> dict[str, int]:
  """{'<network> (trainable)': n, '<network> <collection>': n, '<frozen network> (frozen)': n}."""
  out = {}
  for name, variables in state.nets.items():
    out[f"{name} (trainable)"] = state_dict_lib.count_parameters(variables["params"])
    for collection, tree in variables.items():
      if collection != "params":
        out[f"{name} {collection}"] = state_dict_lib.count_parameters(tree)
  for name, variables in state.frozen.items():
    if variables is not None:
      out[f"{name} (frozen)"] = state_dict_lib.count_parameters(variables)
  return out


# ----------------------------------------------------------------------------
# Host loop


def _validate_config(config, system_cls, train_source) -> None:
  expected = tuple(config.data.image_size)
  if expected != tuple(train_source.image_size):
    raise ValueError(
        f"config.data.image_size is {expected} but dataset {train_source.name} holds "
        f"{tuple(train_source.image_size)} images; set --config.data.image_size to match or choose "
        "another dataset config")
  for name in ("num_train_steps", "log_every", "checkpoint_every", "sample_every", "keep_checkpoints"):
    if getattr(config, name) <= 0:
      raise ValueError(f"config.{name} must be positive, got {getattr(config, name)}")
  if config.init_from:
    _check_init_from(config.init_from)
  system_cls.check(config, train_source)


def check_split_sizes(*split_sources: sources.PairSource) -> None:
  """Every split the run reads must hold pairs: an empty one fails here, before anything is built."""
  for source in split_sources:
    if len(source) == 0:
      raise ValueError(
          f"dataset {source.name} split {source.split!r} holds no pairs ({len(source.images)} stored images): "
          "training needs train pairs, and evaluation and the sample grids need test pairs. Rebuild the "
          "dataset and read the build's bad-input warnings (a missing keypoints file, or every image of "
          "the split unreadable, gives an empty split)")


def _host_batch(batch: dict, keys) -> dict:
  return {k: batch[k] for k in keys}


def _mean_metrics(rows: list[dict]) -> dict[str, float]:
  rows = jax.device_get(rows)
  out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "nonfinite_step"}
  out["nonfinite_step"] = int(rows[-1]["nonfinite_step"])
  return out


def _history_path(workdir: str) -> str:
  return os.path.join(workdir, "metrics_history.jsonl")


def _load_history(workdir: str, up_to_step: int) -> list[dict]:
  """Logged rows up to `up_to_step`; rows past a restored checkpoint move to metrics_history_dropped.jsonl."""
  path = _history_path(workdir)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  kept = [r for r in rows if r["step"] <= up_to_step]
  if len(kept) < len(rows):
    with open(os.path.join(workdir, "metrics_history_dropped.jsonl"), "a") as f:
      f.writelines(json.dumps({**r, "dropped_on_resume_from": up_to_step}) + "\n" for r in rows[len(kept):])
  with open(path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in kept)
  return kept


# ----------------------------------------------------------------------------
# Stopping: divergence and SIGTERM


def _stop_terminated(config, mngr, state, iterator, step: int, saved: bool, save_metadata: dict, pending):
  """SIGTERM: saves the state after `step` (unless just saved) and raises preemption.Terminated."""
  if int(jax.device_get(state.nonfinite_step)) >= 0:
    _stop_diverged(config, mngr, _rejected(config, state, pending))
  if not saved:
    checkpoints.save(mngr, step, state, iterator, metadata=save_metadata)
  mngr.wait_until_finished()
  raise preemption.Terminated(step, os.path.join(str(mngr.directory), str(step)))


def _stop_diverged(config, mngr, event: divergence.Divergence):
  """Sets aside the checkpoints no sane loss vouches for and raises TrainingDiverged saying where to resume."""
  # Saves are asynchronous: let the last one finish, or it stays a temporary directory.
  mngr.wait_until_finished()
  suspects = sorted((s for s in mngr.all_steps() if s >= event.suspect_from), reverse=True)
  moved = [checkpoints.set_aside(mngr, s, "diverged", f"training diverged at step {event.step}: {event.detail}")
           for s in suspects]
  raise divergence.TrainingDiverged(divergence.advice(
      event, good_step=mngr.latest_step(), set_aside=moved, checkpoint_dir=str(mngr.directory),
      learning_rate=float(config.optim.learning_rate)))


def _rejected(config, state, rows) -> divergence.Divergence:
  """The divergence the step recorded (`state.nonfinite_step`), explained from the per-step metrics `rows`."""
  step = int(jax.device_get(state.nonfinite_step))
  detail, nonfinite = divergence.first_rejected(jax.device_get(rows), float(config.guard.max_update_ratio))
  return divergence.Divergence(step=step, kind="rejected", detail=detail,
                               suspect_from=divergence.suspect_from("rejected", step, step, nonfinite))


@dataclasses.dataclass(frozen=True)
class Data:
  train: sources.PairSource
  test: sources.PairSource
  transform: pipeline.PairTransform


def open_data(config, system_cls=None) -> Data:
  """The config's train and test pair sources, checked against the config and the system, and its transform.

  The training pairs follow `config.data.pairing` (`jaxpose.data.unpaired`:
  the dataset's own pairs by default); the test pairs are always the dataset's.
  """
  system_cls = system_cls or systems.get(config.model)
  data_dir = config.data.data_dir or None
  train_source = unpaired.from_config(sources.pair_source(config.data.name, "train", data_dir), config.data,
                                      seed=config.seed)
  test_source = sources.pair_source(config.data.name, "test", data_dir)
  check_split_sizes(train_source, test_source)
  _validate_config(config, system_cls, train_source)
  logging.info("Data: %r", train_source)
  logging.info("Data: %r", test_source)
  return Data(train_source, test_source, system_cls.transform(config, train_source))


def build(config, mesh, data: Data) -> Engine:
  """Loads the system's pretrained networks (logging which) and builds its engine for `data`."""
  system_cls = systems.get(config.model)
  pretrained = system_cls.load_pretrained(config)
  for line in pretrained.descriptions:
    logging.info("Pretrained weights: %s", line)
  return build_engine(config, mesh, system_cls(config, pretrained), data.transform)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains per `config`, checkpointing into `workdir`, then evaluates the test split.

  Writes <workdir>/config.json, data_samples.png, samples/step_*.png, TensorBoard events,
  metrics_history.jsonl, loss_curves.png and metrics.json; returns the metrics.
  Holds `<workdir>/run.lock` throughout (a second run is refused, naming this
  one). Raises `divergence.TrainingDiverged` when the guard stops the run and
  `preemption.Terminated` after saving on SIGTERM.
  """
  workdir = os.path.abspath(workdir)
  with run_lock.hold(workdir, "train"), preemption.TerminationWatch() as termination:
    return _train_and_evaluate(config, workdir, termination)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                        termination: preemption.TerminationWatch) -> dict:
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  if jax.process_index() == 0:
    # `jaxpose.load(workdir)` reads it back: the run's weights with the settings they belong to.
    with open(os.path.join(workdir, checkpoints.CONFIG_FILE), "w") as f:
      f.write(config.to_json_best_effort(indent=2) + "\n")
  cache = enable_compilation_cache(config)
  logging.info("XLA compilation cache: %s", cache or "off")
  for line in cpu_runtime.configure(config):
    logging.info("CPU runtime: %s", line)
  is_chief = jax.process_index() == 0
  mesh = sharding_lib.make_mesh()
  per_process_batch = sharding_lib.per_process_batch_size(config.batch_size, mesh)
  system_cls = systems.get(config.model)
  data = open_data(config, system_cls)
  if is_chief:
    raw = [data.train[i] for i in pipeline.spread_indices(len(data.train), 8)]
    grid = visualize.pair_grid({k: np.stack([r[k] for r in raw]) for k in raw[0] if not k.endswith("name")},
                               data.train.parsing_labels)
    logging.info("Wrote data samples to %s", visualize.save_png(os.path.join(workdir, "data_samples.png"), grid))

  engine = build(config, mesh, data)
  loader = pipeline.train_loader(data.train, per_process_batch_size=per_process_batch, seed=config.seed,
                                 transform=data.transform, worker_count=config.data.worker_count)
  iterator = iter(loader)
  mngr = checkpoints.manager(workdir, config.keep_checkpoints)
  state, origin = initial_state(config, mngr, engine, iterator)
  start_step = int(jax.device_get(state.step))
  # Recorded with every checkpoint (beside its checksums).
  save_metadata = {"model": config.model, "restore_step_applied": _restore_lineage(config, mngr, start_step)}
  spikes = divergence.SpikeDetector(config.guard.watch, config.guard.spike_factor, config.guard.spike_window,
                                    config.guard.spike_min_history)
  logging.info("Start: %s", origin)
  logging.info("Parameters: %s", ", ".join(f"{k} {v:,}" for k, v in parameter_counts(state).items()))

  writer, hooks = _writer_and_hooks(config, workdir, is_chief)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))})
  history = _load_history(workdir, start_step) if is_chief else []
  sample_batch, _ = next(pipeline.eval_batches(
      data.test, batch_size=_round_up(config.num_samples, mesh.devices.size), transform=data.transform,
      indices=pipeline.spread_indices(len(data.test), config.num_samples)))

  pending: list[dict] = []
  last_log_time, last_log_step = time.time(), start_step
  logging.info("Training %s, steps %d -> %d at global batch %d on %d device(s)", config.model, start_step,
               config.num_train_steps, config.batch_size, mesh.devices.size)
  step = start_step
  per_step = engine.system.batches_per_step
  termination.deferring = True  # from here on SIGTERM stops after the step in flight, with a checkpoint
  while step < config.num_train_steps:
    host_batches = [sharding_lib.to_global_arrays(_host_batch(next(iterator), engine.batch_keys), mesh)
                    for _ in range(per_step)]
    state, metrics = engine.step(state, host_batches[0] if per_step == 1 else tuple(host_batches))
    step += 1
    pending.append(metrics)  # device scalars: fetched only when logged
    for hook in hooks:
      hook(step)
    final = step == config.num_train_steps
    if step % config.log_every == 0 or final:
      row = _mean_metrics(pending)
      if row.pop("nonfinite_step") >= 0:
        _stop_diverged(config, mngr, _rejected(config, state, pending))
      spike = spikes.check(row)
      if spike:
        _stop_diverged(config, mngr, divergence.Divergence(
            step=step, kind="spike", detail=spike,
            suspect_from=divergence.suspect_from("spike", step, last_log_step, nonfinite=False)))
      pending = []
      now = time.time()
      row["steps_per_sec"] = (step - last_log_step) / max(now - last_log_time, 1e-9)
      row["images_per_sec"] = row["steps_per_sec"] * config.batch_size
      last_log_time, last_log_step = now, step
      writer.write_scalars(step, row)
      if is_chief:
        history.append({"step": step, **row})
        with open(_history_path(workdir), "a") as f:
          f.write(json.dumps({"step": step, **row}) + "\n")
    if step % config.sample_every == 0 or final:
      _write_samples(workdir, step, writer, engine, state, sample_batch, mesh, config)
    saved = step % config.checkpoint_every == 0 or final
    if saved:
      if int(jax.device_get(state.nonfinite_step)) >= 0:
        _stop_diverged(config, mngr, _rejected(config, state, pending))
      checkpoints.save(mngr, step, state, iterator, metadata=save_metadata)
    if termination.should_stop(step):
      _stop_terminated(config, mngr, state, iterator, step, saved, save_metadata, pending)
  termination.deferring = False
  mngr.wait_until_finished()
  if is_chief and history:
    path = visualize.loss_curves(history, os.path.join(workdir, "loss_curves.png"), engine.system.loss_panels())
    logging.info("Wrote loss curves to %s", path)
  writer.flush()
  results = _evaluate_and_write(config, workdir, engine, state, data, mesh)
  writer.close()
  return results


class _LogOnlyWriter:
  """clu's MetricWriter calls, to the log only: for machines without TensorFlow (no TensorBoard files).

  Scalars also reach `metrics_history.jsonl` and sample grids `samples/*.png` either way.
  """

  def write_scalars(self, step, scalars):
    logging.info("[%d] %s", step, ", ".join(f"{k}={float(v):.6g}" for k, v in scalars.items()))

  def write_images(self, step, images):
    del step, images

  def write_hparams(self, hparams):
    del hparams

  def flush(self):
    pass

  def close(self):
    pass


class _ProgressLog:
  """Every `every` steps: steps/s, percent done and ETA (clu's ReportProgress line, without clu)."""

  def __init__(self, num_train_steps: int, every: int):
    self.num_train_steps, self.every = num_train_steps, every
    self.last = None  # (step, time)

  def __call__(self, step: int) -> None:
    now = time.time()
    if self.last is None:
      self.last = (step, now)
    elif step % self.every == 0:
      rate = (step - self.last[0]) / max(now - self.last[1], 1e-9)
      eta = (self.num_train_steps - step) / max(rate, 1e-9)
      logging.info("%.2f steps/s, %.1f%% (%d/%d), ETA: %dm", rate, 100 * step / self.num_train_steps, step,
                   self.num_train_steps, eta // 60)
      self.last = (step, now)


def _writer_and_hooks(config, workdir: str, is_chief: bool) -> tuple[Any, list]:
  """TensorBoard writer and progress/profile hooks (clu), or log-only ones where clu cannot import.

  clu's metric writers import TensorFlow, which accelerator images often lack;
  training itself never needs it.
  """
  try:
    from clu import metric_writers  # pylint: disable=g-import-not-at-top
    from clu import periodic_actions  # pylint: disable=g-import-not-at-top
  except ImportError as error:
    logging.warning("No TensorBoard summaries (%s); metrics go to the log and %s.", error,
                    os.path.basename(_history_path(workdir)))
    return _LogOnlyWriter(), [_ProgressLog(config.num_train_steps, config.log_every)]
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief, asynchronous=False)
  # Logs "x steps/s, y% (step/total), ETA: ..." every log_every steps; the
  # throughput scalars themselves go into the logged rows.
  hooks = [periodic_actions.ReportProgress(num_train_steps=config.num_train_steps, writer=None,
                                           every_steps=config.log_every)]
  if config.profile and is_chief:
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=5))
  return writer, hooks


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def _write_samples(workdir, step, writer, engine: Engine, state, batch, mesh, config) -> None:
  device_batch = sharding_lib.to_global_arrays(
      evaluation.process_slice(_host_batch(batch, engine.batch_keys), mesh), mesh)
  columns = engine.system.sample_columns(batch, jax.device_get(engine.generate(state.nets, device_batch)))
  grid = visualize.transfer_grid(visualize.to_uint8(batch["source_image"]), batch["source_keypoints"],
                                 batch["target_keypoints"], columns, visualize.to_uint8(batch["target_image"]),
                                 num=config.num_samples)
  writer.write_images(step, {"samples": grid[None]})
  if jax.process_index() == 0:
    path = visualize.save_png(os.path.join(workdir, "samples", f"step_{step:07d}.png"), grid)
    logging.info("Wrote samples to %s", path)


def _check_writable(path: str) -> None:
  """Fails before minutes of evaluation when `path` (a results file) cannot be written."""
  existed = os.path.exists(path)
  try:
    with open(path, "a"):
      pass
    if not existed:
      os.remove(path)
  except OSError as e:
    raise run_lock.RunDirectoryNotWritable(
        f"cannot write {path} ({e.strerror or e}): the metrics would be computed and then lost. Make the run "
        "directory writable, or copy the run elsewhere and point --workdir at the copy.") from None


def _evaluate_and_write(config, workdir, engine: Engine, state: TrainState, data: Data, mesh) -> dict:
  path = os.path.join(workdir, "metrics.json")
  if jax.process_index() == 0:
    _check_writable(path)
  results = engine.system.evaluate(engine.generate, state.nets, data.test, data.transform, mesh,
                                   keys=engine.batch_keys, real_source=data.train,
                                   statistics_path=os.path.join(workdir, "fid_real_statistics.npz"))
  results["train_steps"] = int(jax.device_get(state.step))
  if jax.process_index() == 0:
    # Logged first: the numbers survive whatever happens to the file.
    logging.info("Test metrics: %s",
                 ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items()))
    with open(path, "w") as f:
      json.dump(results, f, indent=2, sort_keys=True)
    logging.info("Wrote %s", path)
  return results


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """`--mode=evaluate`: metrics of the newest intact checkpoint in `workdir` (or config.restore_step) on the
  test split, written to <workdir>/metrics.json (the run directory's lock is held meanwhile)."""
  workdir = os.path.abspath(workdir)
  if not os.path.isdir(os.path.join(workdir, checkpoints.CHECKPOINTS_DIR)):
    raise FileNotFoundError(f"no checkpoint in {workdir}: train first, or point --workdir at a run")
  with run_lock.hold(workdir, "evaluate"):
    if jax.process_index() == 0:
      _check_writable(os.path.join(workdir, "metrics.json"))
    enable_compilation_cache(config)
    mesh = sharding_lib.make_mesh()
    data = open_data(config, systems.get(config.model))
    engine = build(config, mesh, data)
    mngr = checkpoints.manager(workdir, config.keep_checkpoints)
    wanted = config.get("restore_step", -1)
    restored = checkpoints.restore_intact(mngr, engine.abstract_state, step=wanted if wanted >= 0 else None,
                                          model=config.model, move_damaged=False)
    logging.info("Evaluating %s/%d", mngr.directory, restored.step)
    return _evaluate_and_write(config, workdir, engine, restored.state, data, mesh)
