"""The divergence guard: keep a good state, stop early, and say exactly where to resume.

A NaN is the last symptom of a diverging run, not the first: with an absurd
learning rate the first update already multiplies the weights by a million,
and the state before the NaN is no good either. Two checks, neither adding a
host sync per step:

* In the step, on the device (`update_ratios`, `accept`): every network's
  update is measured against its weights, ||params_new - params_old|| /
  ||params_old||. A normal Adam step moves the weights by a few percent of
  their norm (1-3 % in the first steps of the synthetic configs at
  learning rate 1e-3, less later; 6-14 % at 1e-2); an update larger than
  `config.guard.max_update_ratio` times the weights, or a non-finite loss, is
  not applied: the state stays the one before it, and the step is recorded
  (`TrainState.nonfinite_step`) for the host to stop at its next check.
* On the host, at each log (`SpikeDetector`): a watched metric (by default the
  gradient norms) more than `config.guard.spike_factor` times its median over
  the run's last `spike_window` logged values stops the run.

A checkpoint counts as good once the losses computed from its weights were
sane: weights after step c are first used by step c + 1. So when a run stops,
the checkpoints that no sane loss vouches for are set aside (never deleted),
and the message names the newest remaining one and the command to resume
(`suspect_from`, `advice`).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

RATIO_PREFIX = "update_ratio_"


class TrainingDiverged(FloatingPointError):
  """Training stopped because it diverged; the message says where to resume and how."""


# ----------------------------------------------------------------------------
# Device side (inside the jitted step)


def _trainable(variables: Any) -> Any:
  return variables["params"] if isinstance(variables, Mapping) and "params" in variables else variables


def _norm(tree: Any) -> jax.Array:
  leaves = [jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)]
  return jnp.sqrt(sum(leaves)) if leaves else jnp.zeros((), jnp.float32)


def update_ratios(old_nets: Mapping[str, Any], new_nets: Mapping[str, Any]) -> dict[str, jax.Array]:
  """{'update_ratio_<network>': ||new - old|| / ||old||} over each network's trainable parameters."""
  out = {}
  for name in old_nets:
    old, new = _trainable(old_nets[name]), _trainable(new_nets[name])
    change = _norm(jax.tree.map(lambda a, b: b.astype(jnp.float32) - a.astype(jnp.float32), old, new))
    out[f"{RATIO_PREFIX}{name}"] = change / jnp.maximum(_norm(old), 1e-12)
  return out


def accept(metrics: Mapping[str, jax.Array], max_update_ratio: float) -> jax.Array:
  """True when every metric is finite and no network's update exceeds `max_update_ratio` (<= 0: no limit)."""
  values = jnp.stack([jnp.asarray(v, jnp.float32) for v in metrics.values()])
  ok = jnp.all(jnp.isfinite(values))
  ratios = [v for k, v in metrics.items() if k.startswith(RATIO_PREFIX)]
  if max_update_ratio > 0 and ratios:
    ok &= jnp.max(jnp.stack(ratios)) <= max_update_ratio
  return ok


# ----------------------------------------------------------------------------
# Host side


def first_rejected(rows: Sequence[Mapping[str, Any]], max_update_ratio: float) -> tuple[str, bool]:
  """(what made the first rejected step of `rows` rejected, in words; whether a loss was non-finite).

  `rows` are per-step metrics (host values) in step order.
  """
  for row in rows:
    row = {k: float(np.asarray(v)) for k, v in row.items()}
    bad = sorted(k for k, v in row.items() if not np.isfinite(v))
    if bad:
      return "non-finite " + ", ".join(f"{k}={row[k]}" for k in bad[:6]) + (" ..." if len(bad) > 6 else ""), True
    over = {k[len(RATIO_PREFIX):]: v for k, v in row.items()
            if k.startswith(RATIO_PREFIX) and max_update_ratio > 0 and v > max_update_ratio}
    if over:
      return ("the update would have moved the weights of " + ", ".join(
          f"{name} by {v:.3g}x their norm" for name, v in over.items())
              + f" (limit config.guard.max_update_ratio={max_update_ratio:g})"), False
  return "a non-finite loss or an oversized update", True


class SpikeDetector:
  """Flags a logged row whose watched metrics jump far above their recent history.

  Args:
    watch: comma-separated glob patterns of metric names (e.g. "*_grad_norm").
    factor: a value above factor x the median of the last `window` values is a
      spike; <= 0 turns the detector off.
    window: how many past logged values make the history.
    min_history: no verdict before this many values are known.
  """

  def __init__(self, watch: str, factor: float, window: int, min_history: int):
    self.patterns = [p.strip() for p in watch.split(",") if p.strip()]
    self.factor = factor
    self.window = window
    self.min_history = max(1, min_history)
    self.history: dict[str, list[float]] = {}

  def watched(self, row: Mapping[str, float]) -> list[str]:
    return sorted(k for k in row if any(fnmatch.fnmatchcase(k, p) for p in self.patterns))

  def check(self, row: Mapping[str, float]) -> str | None:
    """None when `row` is sane (and then it joins the history), else what spiked, in words."""
    if self.factor <= 0:
      return None
    spikes = []
    for key in self.watched(row):
      past = self.history.get(key, [])[-self.window:]
      if len(past) >= self.min_history:
        median = float(np.median(past))
        if median > 0 and row[key] > self.factor * median:
          spikes.append(f"{key} {row[key]:.3g} is {row[key] / median:.3g}x its median {median:.3g} over the "
                        f"last {len(past)} logs")
    if spikes:
      return "; ".join(spikes) + f" (config.guard.spike_factor={self.factor:g})"
    for key in self.watched(row):
      self.history.setdefault(key, []).append(float(row[key]))
    return None


@dataclasses.dataclass(frozen=True)
class Divergence:
  """Where and how a run diverged.

  Attributes:
    step: the first step known bad (a rejected update), or the logged step
      whose metrics spiked.
    kind: "rejected" (non-finite loss or oversized update, not applied) or
      "spike" (a logged metric far above its history).
    detail: what was seen, in words.
    suspect_from: checkpoints of this step and later are not vouched for by
      a sane loss (see `suspect_from`).
  """
  step: int
  kind: str
  detail: str
  suspect_from: int


def suspect_from(kind: str, step: int, previous_log_step: int, nonfinite: bool) -> int:
  """The first checkpoint step that no sane loss vouches for.

  The loss of step s is computed from the weights after step s - 1. A
  non-finite loss at step s condemns the weights of step s - 1; an update
  rejected for its size was never applied (its loss was finite), so the weights
  before it stand; a spike in the row logged at step S, which averages steps
  previous_log_step + 1 .. S, condemns every weight from previous_log_step on.
  """
  if kind == "spike":
    return previous_log_step
  return step - 1 if nonfinite else step


def advice(divergence: Divergence, *, good_step: int | None, set_aside: Sequence[str], checkpoint_dir: str,
           learning_rate: float) -> str:
  """The message of `TrainingDiverged`: what happened, what was kept, and the command to resume."""
  what = {"rejected": f"training diverged at step {divergence.step}: {divergence.detail}. That update was not "
                      "applied, and no state from it on was saved",
          "spike": f"training diverged by step {divergence.step}: {divergence.detail}. No state from that log "
                   "on was saved"}[divergence.kind]
  parts = [what + "."]
  if set_aside:
    parts.append(f"Checkpoints that no sane loss vouches for were set aside (not deleted): {', '.join(set_aside)}.")
  lower = f"--config.optim.learning_rate={learning_rate / 10:g}"
  if good_step is not None:
    parts.append(f"The last good checkpoint is step {good_step} in {checkpoint_dir} (the losses computed from it "
                 f"were sane). To resume from it, re-run the same command with {lower} or another change (the "
                 f"run resumes from step {good_step} by itself; --config.restore_step=N picks an earlier step). "
                 "Unchanged, a resumed run diverges the same way: training is deterministic.")
  else:
    parts.append(f"No checkpoint precedes the divergence: start again with {lower} (or check the data).")
  parts.append("config.guard sets the thresholds (max_update_ratio, spike_factor; 0 turns a check off).")
  return " ".join(parts)
