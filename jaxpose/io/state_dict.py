"""Official state_dicts <-> Flax variables: the one mapping and mismatch-error helper.

Every official-weight format (ADGAN, PATN, their discriminators, VGG, Inception,
LPIPS, OpenPose, ...) is read next to the model it feeds, as a table of
`Entry`s: one official key <-> one (collection, path) leaf of the Flax
variables, with the layout change between them. `state_dict_to_variables`
applies a table and gathers every problem (missing key, unexpected key, shape
mismatch) into ONE `StateDictMismatchError`: the official loaders' silent
`strict=False` is why users of the released ADGAN checkpoint got noise
(shared/reference/adgan.md sections 3 and 8).

Layout rules: conv weights OIHW -> HWIO, transposed-conv weights (in, out, kh,
kw) -> (kh, kw, in, out), linear (out, in) -> (in, out), vectors unchanged. A
leading `module.` (nn.DataParallel) is stripped when every key has it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence

from absl import logging
import jax
import numpy as np

# How a PyTorch tensor becomes a Flax leaf, and back.
TO_FLAX = {
    "conv": lambda w: np.transpose(w, (2, 3, 1, 0)),             # (O, I, kh, kw) -> (kh, kw, I, O)
    "conv_transpose": lambda w: np.transpose(w, (2, 3, 0, 1)),   # (I, O, kh, kw) -> (kh, kw, I, O)
    "linear": lambda w: np.transpose(w),                         # (out, in) -> (in, out)
    "vector": lambda w: w,
    "keras_conv": lambda w: w,  # Keras 2 stores conv kernels as (kh, kw, in, out) already
}
TO_TORCH = {
    "conv": lambda w: np.transpose(w, (3, 2, 0, 1)),
    "conv_transpose": lambda w: np.transpose(w, (2, 3, 0, 1)),
    "linear": lambda w: np.transpose(w),
    "vector": lambda w: w,
    "keras_conv": lambda w: w,
}

# At most this many problems are spelled out in one error; the rest are counted.
_MAX_LISTED = 40


class StateDictMismatchError(ValueError):
  """A weight file does not fit the model; `problems` lists every missing/unexpected/mis-shaped key."""

  def __init__(self, source: str, problems: Sequence[str]):
    self.problems = list(problems)
    listed = self.problems[:_MAX_LISTED]
    more = len(self.problems) - len(listed)
    super().__init__(f"{source}: {len(self.problems)} problem(s) between the weights and the model:\n  "
                     + "\n  ".join(listed) + (f"\n  ... and {more} more" if more > 0 else ""))


class CheckpointLayoutError(StateDictMismatchError):
  """A file's tensors do not fit the model; the message lists the problems, then what the file holds
  (for formats whose layout is probed, e.g. Keras .h5 files)."""

  def __init__(self, source: str, problems: Sequence[str], holds: str):
    super().__init__(source, problems)
    self.holds = holds
    ValueError.__init__(self, f"{self.args[0]}\nWhat the file holds:\n{holds}")


@dataclasses.dataclass(frozen=True)
class Entry:
  """One tensor: official key <-> (collection, path) in the Flax variables, with a layout change."""
  torch_key: str
  collection: str
  path: tuple[str, ...]
  kind: str  # a key of TO_FLAX


def strip_module_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """Drops a leading 'module.' (nn.DataParallel) when every key has it."""
  if state_dict and all(k.startswith("module.") for k in state_dict):
    return {k[len("module."):]: v for k, v in state_dict.items()}
  return dict(state_dict)


def conv(torch_prefix: str, collection: str, path: tuple[str, ...], bias: bool = True) -> list[Entry]:
  """`<prefix>.weight` (OIHW) and `<prefix>.bias` -> `path/kernel`, `path/bias`."""
  out = [Entry(f"{torch_prefix}.weight", collection, path + ("kernel",), "conv")]
  if bias:
    out.append(Entry(f"{torch_prefix}.bias", collection, path + ("bias",), "vector"))
  return out


def linear(torch_prefix: str, path: tuple[str, ...]) -> list[Entry]:
  return [Entry(f"{torch_prefix}.weight", "params", path + ("kernel",), "linear"),
          Entry(f"{torch_prefix}.bias", "params", path + ("bias",), "vector")]


def batch_norm(torch_prefix: str, path: tuple[str, ...]) -> list[Entry]:
  """BatchNorm2d's weight/bias/running_mean/running_var -> scale/bias (params), mean/var (batch_stats)."""
  return [Entry(f"{torch_prefix}.weight", "params", path + ("scale",), "vector"),
          Entry(f"{torch_prefix}.bias", "params", path + ("bias",), "vector"),
          Entry(f"{torch_prefix}.running_mean", "batch_stats", path + ("mean",), "vector"),
          Entry(f"{torch_prefix}.running_var", "batch_stats", path + ("var",), "vector")]


def leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  """A nested dict -> {path tuple: leaf}."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      out.update(leaves(v, prefix + (k,)))
    else:
      out[prefix + (k,)] = v
  return out


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
  for k in path[:-1]:
    tree = tree.setdefault(k, {})
  tree[path[-1]] = value


def _check_table(table: Sequence[Entry], abstract: Mapping[str, Any]) -> None:
  """The table must cover the model's variables exactly (a bug here must never pass silently)."""
  expected = {(c,) + p for c, tree in abstract.items() for p in leaves(tree)}
  mapped = [(e.collection,) + e.path for e in table]
  if sorted(expected) != sorted(mapped):
    raise AssertionError(f"internal mapping table mismatch: unmapped {sorted(set(expected) - set(mapped))}, "
                         f"unknown {sorted(set(mapped) - set(expected))}")


def state_dict_to_variables(state_dict: Mapping[str, Any], table: Sequence[Entry], abstract: Mapping[str, Any],
                            *, source: str, known_unused: Callable[[str], str | None] = lambda k: None,
                            error: type[StateDictMismatchError] = StateDictMismatchError) -> dict[str, Any]:
  """Maps a state_dict onto Flax variables shaped like `abstract` (e.g. from `abstract_variables`).

  known_unused(key) returns None (the key is a problem if the table lacks it),
  'ignore' (silently dropped, e.g. dummy buffers) or 'unused' (dropped and
  logged at info level). `error` lets a format raise its own subclass.
  Returns numpy float32 leaves.
  """
  _check_table(table, abstract)
  state_dict = strip_module_prefix(state_dict)
  flat_abstract = {(c,) + p: v for c, tree in abstract.items() for p, v in leaves(tree).items()}
  problems, variables, used, unused = [], {}, set(), []
  for e in table:
    flax_shape = tuple(flat_abstract[(e.collection,) + e.path].shape)
    torch_shape = tuple(TO_TORCH[e.kind](np.empty(flax_shape, np.uint8)).shape)
    if e.torch_key not in state_dict:
      problems.append(f"missing {e.torch_key} {torch_shape}")
      continue
    used.add(e.torch_key)
    value = np.asarray(state_dict[e.torch_key])
    if tuple(value.shape) != torch_shape:
      problems.append(f"shape mismatch {e.torch_key}: file {tuple(value.shape)}, model {torch_shape}")
      continue
    _set(variables.setdefault(e.collection, {}), e.path, TO_FLAX[e.kind](value).astype(np.float32, copy=False))
  for key in sorted(state_dict.keys() - used):
    verdict = known_unused(key)
    if verdict is None:
      problems.append(f"unexpected {key} {tuple(np.shape(state_dict[key]))}")
    elif verdict == "unused":
      unused.append(key)
  if problems:
    raise error(source, problems)
  if unused:
    logging.info("%s: %d tensors the model does not use were skipped: %s", source, len(unused),
                 ", ".join(unused))
  return variables


def variables_to_state_dict(variables: Mapping[str, Any], table: Sequence[Entry]) -> dict[str, np.ndarray]:
  """Inverse of state_dict_to_variables: official keys, PyTorch layouts, float32 numpy."""
  _check_table(table, variables)
  flat = {(c,) + p: v for c, tree in variables.items() for p, v in leaves(tree).items()}
  return {e.torch_key: np.ascontiguousarray(TO_TORCH[e.kind](np.asarray(flat[(e.collection,) + e.path],
                                                                        np.float32)))
          for e in table}


def shape_of(state_dict: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
  """The shape of `key`, or a mismatch error saying the key is needed to infer the architecture."""
  if key not in state_dict:
    raise StateDictMismatchError(source, [f"missing {key} (needed to infer the architecture)"])
  return tuple(np.shape(state_dict[key]))


def abstract_variables(model, *args, **kwargs) -> dict:
  """Shapes of `model.init(key, *args, **kwargs)`'s variables, without allocating them."""
  return dict(jax.eval_shape(lambda: model.init(jax.random.key(0), *args, **kwargs)))


def count_parameters(tree: Any) -> int:
  """Number of scalars in a tree of arrays or ShapeDtypeStructs (the one parameter counter)."""
  return int(sum(math.prod(np.shape(x)) for x in jax.tree.leaves(tree)))
