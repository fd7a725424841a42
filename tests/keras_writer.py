"""Writes Keras 2 HDF5 weight files (h5py), for test fixtures; jaxpose itself only reads them
(`jaxpose.io.keras_h5`)."""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from jaxpose.io import keras_h5


def write_keras_h5(path: str | os.PathLike[str], layers: Sequence[tuple[str, Iterable[tuple[str, np.ndarray]]]],
                   *, layout: str = "model", keras_version: str = "2.1.2", backend: str = "tensorflow",
                   model_config: str | None = None) -> None:
  """Writes `[(layer_name, [(weight_name, array), ...]), ...]` in Keras 2's HDF5 layout.

  For tests and fixtures: the files Keras 2 writes with `model.save()`
  (layout 'model': attributes on the root and on `model_weights`) or
  `model.save_weights()` (layout 'weights'), with Keras' attribute types
  (fixed-length byte strings). Weight names are given in full
  (`'conv1_1/kernel:0'`) and stored at `<layer>/<weight name>`.
  """
  if layout not in ("model", "weights"):
    raise ValueError(f"layout must be 'model' or 'weights', got {layout!r}")
  h5py = keras_h5._import_h5py()
  with h5py.File(path, "w") as f:
    if layout == "model":
      f.attrs["keras_version"] = keras_version.encode()
      f.attrs["backend"] = backend.encode()
      if model_config is not None:
        f.attrs["model_config"] = model_config.encode()
      group = f.create_group("model_weights")
    else:
      group = f
    group.attrs["layer_names"] = np.array([name.encode() for name, _ in layers])
    group.attrs["backend"] = backend.encode()
    group.attrs["keras_version"] = keras_version.encode()
    for name, weights in layers:
      weights = list(weights)
      layer_group = group.create_group(name)
      layer_group.attrs["weight_names"] = np.array([w.encode() for w, _ in weights], dtype="S")
      for weight_name, array in weights:
        layer_group.create_dataset(weight_name, data=np.asarray(array))
