"""Data parallelism over every device with `jax.jit` and a 1-D `data` mesh.

The batch's leading axis is split over the mesh axis `data`; parameters and
optimizer states are replicated. On several hosts, each host feeds its own
slice of the global batch and `to_global_arrays` assembles the global arrays.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D mesh over `devices` (default: all devices of all hosts)."""
  devices = jax.devices() if devices is None else devices
  return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Leading (batch) axis split over `data`, other axes whole."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def per_process_batch_size(global_batch_size: int, mesh: jax.sharding.Mesh) -> int:
  """The slice of the global batch one host loads; checks it splits evenly."""
  num_devices = mesh.devices.size
  if global_batch_size <= 0 or global_batch_size % num_devices:
    raise ValueError(
        f"the global batch size ({global_batch_size}) must be a positive multiple of the number "
        f"of devices ({num_devices}) so that it splits evenly; set --config.batch_size accordingly")
  return global_batch_size // jax.process_count()


def to_global_arrays(local_batch: dict[str, Any], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Host-local numpy batch -> global jax.Arrays sharded over `data`."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in local_batch.items()}
