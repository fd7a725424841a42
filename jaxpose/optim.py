"""Optimizers and learning-rate schedules from a config's `optim` section.

Every system in jaxpose trains its networks with Adam on the same schedule
shape as the official code: a flat rate, then a linear decay to 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
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


def adam_with_frozen_start(optim: ml_collections.ConfigDict, frozen_steps: int,
                           is_frozen) -> optax.GradientTransformation:
  """`adam`, except that parameters where `is_frozen(path)` is True stay put for the first `frozen_steps`.

  is_frozen: a key path (tuple of names) -> bool. Their Adam moments still
  accumulate while frozen, so they resume with calibrated steps. The state
  differs from `adam`'s (one Adam per group), so runs keep one or the other.
  """
  def labels(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "start_frozen" if is_frozen(tuple(getattr(k, "key", k) for k in path)) else "free", params)
  late = optax.chain(adam(optim), optax.scale_by_schedule(lambda step: (step >= frozen_steps).astype(jnp.float32)))
  return optax.multi_transform({"free": adam(optim), "start_frozen": late}, labels)
