"""Optimizers and learning-rate schedules from a config's `optim` section.

Every system in jaxpose trains its networks with Adam on the same schedule
shape as the official code: a flat rate, then a linear decay to 0.
"""

from __future__ import annotations

import ml_collections
import optax


def learning_rate_schedule(optim: ml_collections.ConfigDict) -> optax.Schedule:
  """Flat for `constant_steps`, then linear decay to 0 over `decay_steps` (0: flat forever).

  The official per-epoch staircase, per step.
  """
  flat = optax.constant_schedule(optim.learning_rate)
  if optim.decay_steps <= 0:
    return flat
  decay = optax.linear_schedule(optim.learning_rate, 0.0, optim.decay_steps)
  return optax.join_schedules([flat, decay], [optim.constant_steps])


def adam(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam(b1, b2) on the config's schedule."""
  return optax.adam(learning_rate_schedule(optim), b1=optim.b1, b2=optim.b2)
