"""Reads the weights of Keras HDF5 files with h5py: no Keras, no pickle, nothing from the file executed.

Several checkpoints of the field exist only as Keras HDF5 files: the OpenPose
body model of Deformable GAN, PATN and ADGAN (`pose_estimator.h5`) and the
Deformable GAN generators and discriminators. This module turns such a file
into plain numpy arrays, per layer and in the order the file records, so that
importers can map them onto Flax variables. HDF5 files hold only data
(groups, arrays, attributes); h5py never runs code from them. The one piece of
a Keras file that can carry code, the marshalled bytecode of `Lambda` layers
inside the `model_config` JSON attribute, is kept as a string and never
decoded here.

Layouts read (Keras 2; Keras 1 used the same groups with other weight names):

* a full model, `model.save(path)`: root attributes `keras_version`, `backend`,
  `model_config` (JSON) and `training_config`; a group `model_weights` whose
  attribute `layer_names` lists every layer in the model's order (weightless
  layers included); one group per layer, `model_weights/<layer>`, whose
  attribute `weight_names` lists its weights as paths inside that group,
  e.g. `conv1_1/kernel:0`, stored at `model_weights/conv1_1/conv1_1/kernel:0`;
* weights only, `model.save_weights(path)`: the same layer groups and
  attributes at the top level of the file.

Attributes larger than HDF5's 64 KB header limit are split by Keras into
`layer_names0`, `layer_names1`, ...; those are joined. A file without
`layer_names` (written by other tools) is read in h5py's group order, which is
alphabetical, and says so (`layer_order_recorded` False): callers that match
layers by position must not trust that order. A layer group without
`weight_names` yields every array below it, in alphabetical path order.

Array layouts are what Keras stored: conv kernels (kh, kw, in, out) (HWIO,
Flax's layout) in Keras 2 whatever the backend, biases (out,), dense kernels
(in, out). Keras 2 flips conv kernels spatially when it loads a file written
by another backend (Theano convolves, TensorFlow correlates); the `backend`
attribute tells importers when to do the same.

Typical use:

    weights = keras_h5.read_keras_h5("pose_estimator.h5")
    for layer in weights.weighted_layers():
      kernel = layer.weight("kernel")   # by the short name, ':0' and the layer prefix dropped
    print(weights.describe())           # for error messages: what the file holds
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import numpy as np

__all__ = [
    "KerasFileError",
    "KerasLayer",
    "KerasWeightsFile",
    "describe_keras_h5",
    "is_hdf5",
    "read_keras_h5",
    "short_weight_name",
]

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class KerasFileError(ValueError):
  """The file is not an HDF5 file, or not one holding Keras weights; the message says what it holds."""


def is_hdf5(path: str | os.PathLike[str]) -> bool:
  """True if `path` starts with the HDF5 signature (at byte 0, or after a user block of 512 * 2^k bytes)."""
  with open(path, "rb") as f:
    head = f.read(8)
    if head == _HDF5_SIGNATURE:
      return True
    size = os.fstat(f.fileno()).st_size
    offset = 512
    while offset + 8 <= size and offset <= (1 << 20):
      f.seek(offset)
      if f.read(8) == _HDF5_SIGNATURE:
        return True
      offset *= 2
  return False


def short_weight_name(name: str) -> str:
  """'conv1_1/kernel:0' -> 'kernel'; 'model_1/dense/bias:0' -> 'bias'; 'conv1_1_W' -> 'conv1_1_W'."""
  tail = name.rsplit("/", 1)[-1]
  return tail[:-2] if tail.endswith(":0") else tail


@dataclasses.dataclass(frozen=True)
class KerasLayer:
  """One layer group of a Keras file.

  Attributes:
    name: the layer's name (`conv1_1`).
    weight_names: its weights as recorded (`('conv1_1/kernel:0', 'conv1_1/bias:0')`), in Keras' order.
    arrays: the arrays, in the same order, as numpy arrays of the stored dtype.
  """
  name: str
  weight_names: tuple[str, ...]
  arrays: tuple[np.ndarray, ...]

  @property
  def short_names(self) -> tuple[str, ...]:
    """('kernel', 'bias') for ('conv1_1/kernel:0', 'conv1_1/bias:0')."""
    return tuple(short_weight_name(n) for n in self.weight_names)

  def weight(self, short_name: str) -> np.ndarray:
    """The array whose short name is `short_name` ('kernel', 'bias', 'gamma', ...); KeyError if absent."""
    matches = [a for n, a in zip(self.short_names, self.arrays) if n == short_name]
    if len(matches) != 1:
      raise KeyError(f"layer {self.name!r} has {len(matches)} weights named {short_name!r}; "
                     f"it holds {list(self.weight_names)}")
    return matches[0]

  def as_dict(self) -> dict[str, np.ndarray]:
    """{recorded weight name: array}: how to address the weights of a nested model, whose short names repeat
    (a layer that is itself a Model records `conv2d_1/kernel:0`, `conv2d_2/kernel:0`, ...)."""
    return dict(zip(self.weight_names, self.arrays))

  def describe(self) -> str:
    """'conv1_1: kernel:0 (3, 3, 3, 64) float32, bias:0 (64,) float32'."""
    if not self.arrays:
      return f"{self.name}: no weights"
    parts = [f"{n.rsplit('/', 1)[-1]} {tuple(a.shape)} {a.dtype}" for n, a in zip(self.weight_names, self.arrays)]
    return f"{self.name}: " + ", ".join(parts)


@dataclasses.dataclass(frozen=True)
class KerasWeightsFile:
  """The weights of one Keras HDF5 file.

  Attributes:
    path: the file.
    layout: 'model' (`model.save`, weights under `model_weights/`) or 'weights' (`model.save_weights`).
    keras_version: the `keras_version` attribute ('' if absent).
    backend: the `backend` attribute ('tensorflow', 'theano', ...; '' if absent).
    layers: every layer group, weightless ones included, in the recorded order.
    layer_order_recorded: False when the file had no `layer_names` attribute and
      `layers` is in h5py's (alphabetical) order instead.
    model_config: the raw `model_config` JSON string of a full model, else None.
      Never parsed here (Lambda layers store marshalled bytecode in it).
  """
  path: str
  layout: str
  keras_version: str
  backend: str
  layers: tuple[KerasLayer, ...]
  layer_order_recorded: bool
  model_config: str | None = None

  def weighted_layers(self) -> list[KerasLayer]:
    """The layers that hold at least one array, in the recorded order."""
    return [layer for layer in self.layers if layer.arrays]

  def layer(self, name: str) -> KerasLayer:
    """The layer called `name`; KeyError naming the file otherwise."""
    for layer in self.layers:
      if layer.name == name:
        return layer
    raise KeyError(f"{self.path}: no layer named {name!r}")

  def layer_names(self) -> list[str]:
    return [layer.name for layer in self.layers]

  def parameter_count(self) -> int:
    return int(sum(a.size for layer in self.layers for a in layer.arrays))

  def describe(self, limit: int = 200) -> str:
    """What the file holds, for error messages: a header line, then one line per weighted layer.

    Lists at most `limit` layers (then says how many more there are).
    """
    weighted = self.weighted_layers()
    order = "recorded" if self.layer_order_recorded else "NOT recorded (alphabetical)"
    lines = [f"{self.path}: Keras HDF5 ({'full model' if self.layout == 'model' else 'save_weights'} layout, "
             f"keras_version {self.keras_version or '?'}, backend {self.backend or '?'}), "
             f"{len(self.layers)} layers ({len(weighted)} with weights, {self.parameter_count():,} "
             f"parameters), layer order {order}:"]
    lines += ["  " + layer.describe() for layer in weighted[:limit]]
    if len(weighted) > limit:
      lines.append(f"  ... and {len(weighted) - limit} more layers with weights")
    return "\n".join(lines)


def _text(value: Any) -> str:
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  if isinstance(value, np.ndarray) and value.shape == ():
    return _text(value.item())
  return str(value)


def _strings(value: Any) -> list[str]:
  """An HDF5 string-array attribute (bytes, str, numpy 'S' or object arrays) -> list of str."""
  if isinstance(value, (bytes, str)):
    return [_text(value)]
  return [_text(v) for v in np.asarray(value).reshape(-1)]


def _string_list_attribute(attrs: Mapping[str, Any], name: str) -> list[str] | None:
  """attrs[name] as a list, or the chunks name0, name1, ... Keras writes for attributes over 64 KB."""
  if name in attrs:
    return _strings(attrs[name])
  if f"{name}0" not in attrs:
    return None
  out, i = [], 0
  while f"{name}{i}" in attrs:
    out += _strings(attrs[f"{name}{i}"])
    i += 1
  return out


def _datasets_below(group, h5py) -> list[tuple[str, Any]]:
  found = []

  def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
      found.append((name, obj))
  group.visititems(visit)
  return sorted(found, key=lambda item: item[0])


def _read_layer(group, name: str, h5py, path: str) -> KerasLayer:
  weight_names = _string_list_attribute(group.attrs, "weight_names")
  if weight_names is None:
    items = _datasets_below(group, h5py)
    return KerasLayer(name, tuple(n for n, _ in items), tuple(np.asarray(d[()]) for _, d in items))
  arrays = []
  for weight_name in weight_names:
    if weight_name not in group:
      raise KerasFileError(f"{path}: layer {name!r} lists weight {weight_name!r} in its weight_names "
                           f"but the file has no such array (it has {[n for n, _ in _datasets_below(group, h5py)]})")
    dataset = group[weight_name]
    if not isinstance(dataset, h5py.Dataset):
      raise KerasFileError(f"{path}: {name}/{weight_name} is a group, expected an array")
    arrays.append(np.asarray(dataset[()]))
  return KerasLayer(name, tuple(weight_names), tuple(arrays))


def _import_h5py():
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError as e:  # pragma: no cover - h5py is a dependency
    raise ImportError("reading Keras .h5 files needs h5py: pip install h5py") from e
  return h5py


def _describe_hdf5_tree(f, limit: int = 40) -> str:
  """The first groups and arrays of an HDF5 file that is not a Keras weights file."""
  h5py = _import_h5py()
  entries = []

  def visit(name, obj):
    if len(entries) < limit:
      entries.append(f"{name} {tuple(obj.shape)} {obj.dtype}" if isinstance(obj, h5py.Dataset) else f"{name}/")
  f.visititems(visit)
  attrs = sorted(f.attrs.keys())
  return (f"root attributes {attrs}; " + (", ".join(entries) if entries else "no groups or arrays")
          + (" ..." if len(entries) >= limit else ""))


def read_keras_h5(path: str | os.PathLike[str]) -> KerasWeightsFile:
  """Reads every layer's weights from a Keras 1/2 HDF5 file (full model or save_weights).

  Raises:
    FileNotFoundError: no such file.
    KerasFileError: not an HDF5 file, or an HDF5 file without Keras layer groups
      (the message lists what it holds).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} does not exist")
  if not is_hdf5(path):
    with open(path, "rb") as f:
      head = f.read(16)
    raise KerasFileError(f"{path} is not an HDF5 file (it starts with {head!r}); expected a Keras .h5 "
                         "file written by model.save() or model.save_weights()")
  h5py = _import_h5py()
  with h5py.File(path, "r") as f:
    root_attrs = f.attrs
    if "model_weights" in f and isinstance(f["model_weights"], h5py.Group):
      layout, group = "model", f["model_weights"]
    else:
      layout, group = "weights", f
    names = _string_list_attribute(group.attrs, "layer_names")
    recorded = names is not None
    if names is None:
      names = sorted(k for k in group.keys() if isinstance(group[k], h5py.Group))
      if not names:
        raise KerasFileError(f"{path}: an HDF5 file without Keras layer groups (no 'model_weights' group, no "
                             f"'layer_names' attribute, no groups); it holds: {_describe_hdf5_tree(f)}")
    layers = []
    for name in names:
      if name not in group:
        raise KerasFileError(f"{path}: layer_names lists {name!r} but the file has no group of that name")
      layers.append(_read_layer(group[name], name, h5py, path))

    def attribute(name: str) -> str:
      for attrs in (group.attrs, root_attrs):
        if name in attrs:
          return _text(attrs[name])
      return ""
    model_config = _text(root_attrs["model_config"]) if "model_config" in root_attrs else None
    return KerasWeightsFile(path=path, layout=layout, keras_version=attribute("keras_version"),
                            backend=attribute("backend"), layers=tuple(layers), layer_order_recorded=recorded,
                            model_config=model_config)


def describe_keras_h5(path: str | os.PathLike[str], limit: int = 200) -> str:
  """`read_keras_h5(path).describe(limit)`, or, for a file that is not a Keras one, why not."""
  try:
    return read_keras_h5(path).describe(limit)
  except (KerasFileError, OSError) as e:
    return str(e)
