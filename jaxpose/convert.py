"""Official PyTorch state_dicts <-> jaxpose Flax variables, and a converter CLI.

Mapping functions (in memory, numpy in and out, no torch needed):
  adgan_generator_variables(state_dict, model) / adgan_generator_state_dict(variables)
  patn_generator_variables(state_dict, model)  / patn_generator_state_dict(variables)
  discriminator_variables(state_dict, model)   / discriminator_state_dict(variables, model)
  infer_adgan_generator_hparams(state_dict), infer_patn_generator_hparams(state_dict),
  infer_discriminator_hparams(state_dict)
and `import_checkpoint(kind, path) -> (model, variables)` for .pth files, kinds
'adgan_generator', 'adgan_discriminator_pb', 'adgan_discriminator_pp',
'patn_generator', 'patn_discriminator_pb', 'patn_discriminator_pp',
'resnet_discriminator' (any in-channels), 'vgg19' / 'vgg16' (torchvision
files), 'vgg_conv' (Gatys VGG19 of ADGAN's CX loss), and 'openpose_body'
(CMU's OpenPose COCO body network from Hzzone's body_pose_model.pth or from a
Keras .h5 such as pose-gan's pose_estimator.h5, read with h5py through
jaxpose.io.keras_h5; `openpose_body_from_keras` probes its layer names and
order). Hyperparameters (widths,
n_res, n_blocks, norm, style_dim, ...) are inferred from the tensor shapes and
key names, so reduced-width files import too.

Rules: a leading `module.` (nn.DataParallel) is stripped when every key has it;
conv weights OIHW -> HWIO, transposed-conv weights (in, out, kh, kw) -> (kh,
kw, in, out), linear (out, in) -> (in, out); the 32 ADGAN AdaIN dummy
`running_mean`/`running_var` buffers, the InstanceNorm `running_mean` /
`running_var` buffers PyTorch 0.3 wrote into PATN's instance-norm checkpoints
(PATN issue #12; they are never read) and BatchNorm's `num_batches_tracked`
are ignored; ADGAN's generator VGG layers past conv4_1 (`enc_style.vgg.21` ...
`.34`), which the official code computes but never uses, are accepted as
known-unused (logged at info level). Anything else, a missing key, an
unexpected key or a shape mismatch, raises ONE `StateDictMismatchError` listing
all of them: the official loader's silent `strict=False` load is why users of
the released ADGAN checkpoint got noise (shared/reference/adgan.md sections 3
and 8).

Command line:

  python -m jaxpose.convert --kind adgan|patn --generator <epoch>_net_netG.pth \
      [--discriminator_pb <epoch>_net_netD_PB.pth] [--discriminator_pp <epoch>_net_netD_PP.pth] \
      --output <dir>

On-disk layout of <dir> (start training from it with --config.init_from=<dir>):

  <dir>/state/                 Orbax PyTree checkpoint (StandardCheckpointer) of
                               {'generator': {'params': ..., 'frozen': ...},
                                'discriminator_pb': {'params': ...},   # if given
                                'discriminator_pp': {'params': ...}}   # if given
                               float32 arrays, Flax layouts of jaxpose.models;
                               'frozen' is ADGAN's style-encoder VGG up to
                               conv4_1 (PATN has none); batch-norm networks
                               (PATN on Market) also hold 'batch_stats'.
  <dir>/jaxpose_convert.json   {"format": 1, "kind": "adgan"|"patn", "networks": {name:
                               {"source": <.pth path>, "module": <class name>,
                                "hyperparameters": {...constructor kwargs...},
                                "parameter_counts": {collection: count}}}}

`jaxpose.checkpoints.read_weights(<dir>)` reads the tree back without a target.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import sys
from typing import Any, Callable, Mapping, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.models import adgan
from jaxpose.io import keras_h5
from jaxpose.models import discriminator as discriminator_lib
from jaxpose.models import openpose as openpose_lib
from jaxpose.models import patn
from jaxpose.models import vgg as vgg_lib

# How a PyTorch tensor becomes a Flax leaf (and back: the permutations are involutions
# or have the stated inverse).
_TO_FLAX = {
    "conv": lambda w: np.transpose(w, (2, 3, 1, 0)),             # (O, I, kh, kw) -> (kh, kw, I, O)
    "conv_transpose": lambda w: np.transpose(w, (2, 3, 0, 1)),   # (I, O, kh, kw) -> (kh, kw, I, O)
    "linear": lambda w: np.transpose(w),                         # (out, in) -> (in, out)
    "vector": lambda w: w,
    # Keras 2 stores conv kernels (kh, kw, in, out) already: tables for Keras files use this kind.
    "keras_conv": lambda w: w,
}
_TO_TORCH = {
    "conv": lambda w: np.transpose(w, (3, 2, 0, 1)),
    "conv_transpose": lambda w: np.transpose(w, (2, 3, 0, 1)),
    "linear": lambda w: np.transpose(w),
    "vector": lambda w: w,
    "keras_conv": lambda w: w,
}


class StateDictMismatchError(ValueError):
  """A state_dict does not fit the model; `problems` lists every missing/unexpected/mis-shaped key."""

  def __init__(self, source: str, problems: Sequence[str]):
    self.problems = list(problems)
    super().__init__(f"{source}: {len(self.problems)} problem(s) between the state_dict and the model:\n  "
                     + "\n  ".join(self.problems))


@dataclasses.dataclass(frozen=True)
class Entry:
  """One tensor: official key <-> (collection, path) in the Flax variables, with a layout change."""
  torch_key: str
  collection: str
  path: tuple[str, ...]
  kind: str  # a key of _TO_FLAX


def strip_module_prefix(state_dict: Mapping[str, Any]) -> dict[str, Any]:
  """Drops a leading 'module.' (nn.DataParallel) when every key has it."""
  if state_dict and all(k.startswith("module.") for k in state_dict):
    return {k[len("module."):]: v for k, v in state_dict.items()}
  return dict(state_dict)


def _conv(torch_prefix: str, collection: str, path: tuple[str, ...], bias: bool = True) -> list[Entry]:
  out = [Entry(f"{torch_prefix}.weight", collection, path + ("kernel",), "conv")]
  if bias:
    out.append(Entry(f"{torch_prefix}.bias", collection, path + ("bias",), "vector"))
  return out


def _linear(torch_prefix: str, path: tuple[str, ...]) -> list[Entry]:
  return [Entry(f"{torch_prefix}.weight", "params", path + ("kernel",), "linear"),
          Entry(f"{torch_prefix}.bias", "params", path + ("bias",), "vector")]


def _batch_norm(torch_prefix: str, path: tuple[str, ...]) -> list[Entry]:
  return [Entry(f"{torch_prefix}.weight", "params", path + ("scale",), "vector"),
          Entry(f"{torch_prefix}.bias", "params", path + ("bias",), "vector"),
          Entry(f"{torch_prefix}.running_mean", "batch_stats", path + ("mean",), "vector"),
          Entry(f"{torch_prefix}.running_var", "batch_stats", path + ("var",), "vector")]


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      out.update(_leaves(v, prefix + (k,)))
    else:
      out[prefix + (k,)] = v
  return out


def _set(tree: dict, path: tuple[str, ...], value: Any) -> None:
  for k in path[:-1]:
    tree = tree.setdefault(k, {})
  tree[path[-1]] = value


def _check_table(table: Sequence[Entry], abstract: Mapping[str, Any]) -> None:
  """The table must cover the model's variables exactly (a bug here must never pass silently)."""
  expected = {(c,) + p for c, tree in abstract.items() for p in _leaves(tree)}
  mapped = [(e.collection,) + e.path for e in table]
  if sorted(expected) != sorted(mapped):
    raise AssertionError(f"internal mapping table mismatch: unmapped {sorted(set(expected) - set(mapped))}, "
                         f"unknown {sorted(set(mapped) - set(expected))}")


def state_dict_to_variables(state_dict: Mapping[str, Any], table: Sequence[Entry], abstract: Mapping[str, Any],
                            *, source: str, known_unused: Callable[[str], str | None] = lambda k: None
                            ) -> dict[str, Any]:
  """Maps a state_dict onto Flax variables shaped like `abstract` (e.g. from jax.eval_shape(model.init)).

  known_unused(key) returns None, 'ignore' (silently dropped, e.g. dummy
  buffers) or 'unused' (dropped and logged at info level).
  """
  _check_table(table, abstract)
  state_dict = strip_module_prefix(state_dict)
  flat_abstract = {(c,) + p: v for c, tree in abstract.items() for p, v in _leaves(tree).items()}
  problems, variables, used, unused = [], {}, set(), []
  for e in table:
    flax_shape = tuple(flat_abstract[(e.collection,) + e.path].shape)
    torch_shape = tuple(_TO_TORCH[e.kind](np.empty(flax_shape, np.uint8)).shape)
    if e.torch_key not in state_dict:
      problems.append(f"missing {e.torch_key} {torch_shape}")
      continue
    used.add(e.torch_key)
    value = np.asarray(state_dict[e.torch_key])
    if tuple(value.shape) != torch_shape:
      problems.append(f"shape mismatch {e.torch_key}: state_dict {tuple(value.shape)}, model {torch_shape}")
      continue
    _set(variables.setdefault(e.collection, {}), e.path, _TO_FLAX[e.kind](value).astype(np.float32, copy=False))
  for key in sorted(state_dict.keys() - used):
    verdict = known_unused(key)
    if verdict is None:
      problems.append(f"unexpected {key} {tuple(np.shape(state_dict[key]))}")
    elif verdict == "unused":
      unused.append(key)
  if problems:
    raise StateDictMismatchError(source, problems)
  if unused:
    logging.info("%s: %d tensors the model does not use were skipped: %s", source, len(unused),
                 ", ".join(unused))
  return variables


def variables_to_state_dict(variables: Mapping[str, Any], table: Sequence[Entry]) -> dict[str, np.ndarray]:
  """Inverse of state_dict_to_variables: official keys, PyTorch layouts, float32 numpy."""
  _check_table(table, variables)
  flat = {(c,) + p: v for c, tree in variables.items() for p, v in _leaves(tree).items()}
  return {e.torch_key: np.ascontiguousarray(_TO_TORCH[e.kind](np.asarray(flat[(e.collection,) + e.path],
                                                                         np.float32)))
          for e in table}


def _abstract_variables(model, *args, **kwargs) -> dict:
  return dict(jax.eval_shape(lambda: model.init(jax.random.key(0), *args, **kwargs)))


# ----------------------------------------------------------------------------
# ADGAN generator


def adgan_generator_table(model: adgan.ADGANGenerator) -> list[Entry]:
  """Official `ADGen` keys (adgan_G_state_dict.tsv) <-> jaxpose.models.adgan variables."""
  t: list[Entry] = []
  n_down, n_res = model.n_downsample, model.n_res
  t += _conv("enc_content.model.0.conv", "params", ("pose_encoder", "stem"))
  for i in range(n_down):
    t += _conv(f"enc_content.model.{1 + i}.conv", "params", ("pose_encoder", f"downsample_{i}"))
  for j in range(n_res):
    for c in range(2):
      t += _conv(f"enc_content.model.{1 + n_down}.model.{j}.model.{c}.conv", "params",
                 ("pose_encoder", f"residual_{j}", f"conv_{c}"))
  indices = vgg_lib.torchvision_conv_indices(model.vgg_arch)
  for name in vgg_lib.conv_names(model.vgg_arch)[:_num_style_vgg_convs(model.vgg_arch)]:
    t += _conv(f"enc_style.vgg.{indices[name]}", "frozen", ("style_encoder", "vgg", name))
  t += _conv("enc_style.conv1.conv", "params", ("style_encoder", "stem"))
  for i in range(3):
    t += _conv(f"enc_style.conv{2 + i}.conv", "params", ("style_encoder", f"downsample_{i}"))
  t += _conv("enc_style.model.1", "params", ("style_encoder", "projection"))
  t += _linear("fc.fc", ("fusion",))
  for i in range(3):
    t += _linear(f"mlp.model.{i}.fc", ("adain_mlp", f"dense_{i}"))
  for j in range(n_res):
    for c in range(2):
      t += _conv(f"dec.model.0.model.{j}.model.{c}.conv", "params", ("decoder", f"style_block_{j}", f"conv_{c}"))
  for i in range(n_down):
    t += _conv(f"dec.model.{2 + 2 * i}.conv", "params", ("decoder", f"upsample_conv_{i}"))
    t += [Entry(f"dec.model.{2 + 2 * i}.norm.gamma", "params", ("decoder", f"upsample_norm_{i}", "gamma"), "vector"),
          Entry(f"dec.model.{2 + 2 * i}.norm.beta", "params", ("decoder", f"upsample_norm_{i}", "beta"), "vector")]
  t += _conv(f"dec.model.{1 + 2 * n_down}.conv", "params", ("decoder", "output_conv"))
  return t


def _num_style_vgg_convs(arch: str) -> int:
  return vgg_lib.conv_names(arch).index("conv4_1") + 1


_ADAIN_BUFFER = re.compile(r"dec\.model\.0\.model\.\d+\.model\.[01]\.norm\.running_(mean|var)$")


def _adgan_generator_known_unused(model: adgan.ADGANGenerator) -> Callable[[str], str | None]:
  last_used = vgg_lib.torchvision_conv_indices(model.vgg_arch)["conv4_1"]

  def verdict(key: str) -> str | None:
    if _ADAIN_BUFFER.match(key):
      return "ignore"  # MUNIT's AdaIN registers them but never reads them.
    m = re.fullmatch(r"enc_style\.vgg\.(\d+)\.(weight|bias)", key)
    if m and int(m.group(1)) > last_used:
      return "unused"  # computed by the official get_features, never used.
    return None
  return verdict


def adgan_generator_abstract(model: adgan.ADGANGenerator, height: int = 32, width: int = 32) -> dict:
  """Shapes of the generator's variables, without allocating them."""
  return _abstract_variables(model, jnp.zeros((1, height, width, model.pose_channels)),
                             jnp.zeros((1, height, width, model.image_channels)),
                             jnp.zeros((1, height, width, model.parsing_channels)))


def adgan_generator_variables(state_dict: Mapping[str, Any], model: adgan.ADGANGenerator,
                              *, source: str = "ADGAN generator state_dict") -> dict:
  """Official netG state_dict -> {'params': ..., 'frozen': ...} for `model` (numpy float32 leaves)."""
  return state_dict_to_variables(state_dict, adgan_generator_table(model), adgan_generator_abstract(model),
                                 source=source, known_unused=_adgan_generator_known_unused(model))


def adgan_generator_state_dict(variables: Mapping[str, Any], model: adgan.ADGANGenerator | None = None, *,
                               full_vgg: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
  """Flax generator variables -> official netG state_dict (PyTorch layouts, float32 numpy).

  Writes the 32 AdaIN dummy buffers (zeros / ones, PyTorch's initial values) so
  the key set is the official one. Our generator only holds the VGG up to
  conv4_1; pass `full_vgg` ({'frozen': tree} of the whole VGG, e.g. from
  vgg.load_pretrained_vgg) to also write the layers past it, which the official
  code computes but never uses; without it they are absent (the official
  strict=False loader then keeps whatever it had there, without effect).
  """
  if model is None:
    model = adgan.ADGANGenerator(**infer_adgan_generator_hparams_from_variables(variables))
  table = adgan_generator_table(model)
  state_dict = variables_to_state_dict({k: variables[k] for k in ("params", "frozen")}, table)
  c = model.content_channels
  for j in range(model.n_res):
    for i in range(2):
      state_dict[f"dec.model.0.model.{j}.model.{i}.norm.running_mean"] = np.zeros((c,), np.float32)
      state_dict[f"dec.model.0.model.{j}.model.{i}.norm.running_var"] = np.ones((c,), np.float32)
  if full_vgg is not None:
    tree = full_vgg.get("frozen", full_vgg)
    indices = vgg_lib.torchvision_conv_indices(model.vgg_arch)
    for name in vgg_lib.conv_names(model.vgg_arch)[_num_style_vgg_convs(model.vgg_arch):]:
      state_dict[f"enc_style.vgg.{indices[name]}.weight"] = np.ascontiguousarray(
          np.asarray(tree[name]["kernel"], np.float32).transpose(3, 2, 0, 1))
      state_dict[f"enc_style.vgg.{indices[name]}.bias"] = np.asarray(tree[name]["bias"], np.float32)
  return state_dict


def _shape(state_dict: Mapping[str, Any], key: str, source: str) -> tuple[int, ...]:
  if key not in state_dict:
    raise StateDictMismatchError(source, [f"missing {key} (needed to infer the architecture)"])
  return tuple(np.shape(state_dict[key]))


def infer_adgan_generator_hparams(state_dict: Mapping[str, Any], source: str = "ADGAN generator state_dict"
                                  ) -> dict[str, Any]:
  """ADGANGenerator constructor kwargs read off the tensor shapes of an official netG state_dict."""
  sd = strip_module_prefix(state_dict)
  stem = _shape(sd, "enc_content.model.0.conv.weight", source)
  n_down = 0
  while f"enc_content.model.{1 + n_down}.conv.weight" in sd:
    n_down += 1
  res = re.compile(rf"enc_content\.model\.{1 + n_down}\.model\.(\d+)\.model\.0\.conv\.weight$")
  n_res = len({m.group(1) for k in sd if (m := res.match(k))})
  style_dim = _shape(sd, "fc.fc.weight", source)[1]
  per_component = _shape(sd, "enc_style.model.1.weight", source)[0]
  vgg_arch = "vgg19" if "enc_style.vgg.16.weight" in sd else "vgg16"
  indices = vgg_lib.torchvision_conv_indices(vgg_arch)
  vgg_widths = tuple(_shape(sd, f"enc_style.vgg.{indices[f'conv{b}_1']}.weight", source)[0] for b in range(1, 5))
  return dict(
      pose_channels=stem[1], parsing_channels=style_dim // per_component, width=stem[0], style_dim=style_dim,
      n_downsample=n_down, n_res=n_res, mlp_dim=_shape(sd, "mlp.model.0.fc.weight", source)[0],
      vgg_arch=vgg_arch, vgg_widths=vgg_widths,
      image_channels=_shape(sd, f"dec.model.{1 + 2 * n_down}.conv.weight", source)[0])


def infer_adgan_generator_hparams_from_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
  """ADGANGenerator constructor kwargs read off our own variables' shapes."""
  p = variables["params"]
  stem = np.shape(p["pose_encoder"]["stem"]["kernel"])
  n_down = sum(1 for k in p["pose_encoder"] if k.startswith("downsample_"))
  vgg = variables["frozen"]["style_encoder"]["vgg"]
  style_dim = np.shape(p["fusion"]["kernel"])[0]
  return dict(
      pose_channels=stem[2], parsing_channels=style_dim // np.shape(p["style_encoder"]["projection"]["bias"])[0],
      width=stem[3], style_dim=style_dim, n_downsample=n_down,
      n_res=sum(1 for k in p["pose_encoder"] if k.startswith("residual_")),
      mlp_dim=np.shape(p["adain_mlp"]["dense_0"]["kernel"])[1],
      vgg_arch="vgg19" if "conv3_4" in vgg else "vgg16",
      vgg_widths=tuple(np.shape(vgg[f"conv{b}_1"]["bias"])[0] for b in range(1, 5)),
      image_channels=np.shape(p["decoder"]["output_conv"]["bias"])[0])


# ----------------------------------------------------------------------------
# ResnetDiscriminator (ADGAN's D_PB / D_PP, PATN's discriminators)


def _block_conv_indices(dropout: bool) -> tuple[int, int]:
  # conv_block = [ReflPad, Conv, Norm, ReLU, (Dropout), ReflPad, Conv, Norm]
  return 1, (6 if dropout else 5)


def discriminator_table(model: discriminator_lib.ResnetDiscriminator) -> list[Entry]:
  """Official `ResnetDiscriminator` keys (model.{i}...) <-> jaxpose variables."""
  batch = model.norm == "batch"
  bias = not batch
  t: list[Entry] = []
  t += _conv("model.1", "params", ("stem",), bias)
  if batch:
    t += _batch_norm("model.2", ("stem_norm",))
  for i in range(model.n_downsampling):
    t += _conv(f"model.{4 + 3 * i}", "params", (f"downsample_{i}",), bias)
    if batch:
      t += _batch_norm(f"model.{5 + 3 * i}", (f"downsample_norm_{i}",))
  first_block = 4 + 3 * model.n_downsampling
  convs = _block_conv_indices(model.dropout_rate > 0)
  for j in range(model.n_blocks):
    for c, idx in enumerate(convs):
      prefix = f"model.{first_block + j}.conv_block"
      t += _conv(f"{prefix}.{idx}", "params", (f"block_{j}", f"conv_{c}"), bias)
      if batch:
        t += _batch_norm(f"{prefix}.{idx + 1}", (f"block_{j}", f"norm_{c}"))
  return t


def _discriminator_known_unused(model: discriminator_lib.ResnetDiscriminator) -> Callable[[str], str | None]:
  norms = {e.torch_key.rpartition(".")[0] for e in discriminator_table(model.clone(norm="batch"))
           if e.collection == "batch_stats"}

  def verdict(key: str) -> str | None:
    prefix, _, leaf = key.rpartition(".")
    if leaf == "num_batches_tracked":
      return "ignore"
    if model.norm == "instance" and prefix in norms and leaf in ("running_mean", "running_var"):
      return "ignore"  # PyTorch 0.3's never-read InstanceNorm buffers (PATN issue #12).
    return None
  return verdict


def discriminator_abstract(model: discriminator_lib.ResnetDiscriminator, in_channels: int) -> dict:
  return _abstract_variables(model, jnp.zeros((1, 32, 32, in_channels)), train=False)


def discriminator_variables(state_dict: Mapping[str, Any], model: discriminator_lib.ResnetDiscriminator,
                            in_channels: int | None = None, *, source: str = "discriminator state_dict") -> dict:
  """Official ResnetDiscriminator state_dict -> {'params'[, 'batch_stats']} (numpy float32 leaves)."""
  if in_channels is None:
    in_channels = _shape(strip_module_prefix(state_dict), "model.1.weight", source)[1]
  return state_dict_to_variables(state_dict, discriminator_table(model), discriminator_abstract(model, in_channels),
                                 source=source, known_unused=_discriminator_known_unused(model))


def discriminator_state_dict(variables: Mapping[str, Any], model: discriminator_lib.ResnetDiscriminator
                             ) -> dict[str, np.ndarray]:
  """Flax discriminator variables -> official state_dict (without BatchNorm's num_batches_tracked)."""
  return variables_to_state_dict(variables, discriminator_table(model))


def infer_discriminator_hparams(state_dict: Mapping[str, Any], source: str = "discriminator state_dict"
                                ) -> tuple[dict[str, Any], int]:
  """(ResnetDiscriminator kwargs, input channels) from an official state_dict's shapes."""
  sd = strip_module_prefix(state_dict)
  stem = _shape(sd, "model.1.weight", source)
  # BatchNorm2d(affine=True) has a weight; InstanceNorm2d(affine=False) never does, though PyTorch 0.3
  # saved running statistics for it too.
  batch = "model.2.weight" in sd
  n_down = 0
  while len(np.shape(sd.get(f"model.{4 + 3 * n_down}.weight", ()))) == 4:
    n_down += 1
  first_block = 4 + 3 * n_down
  blocks = re.compile(r"model\.(\d+)\.conv_block\.")
  block_ids = {int(m.group(1)) for k in sd if (m := blocks.match(k))}
  n_blocks = 0
  while first_block + n_blocks in block_ids:
    n_blocks += 1
  dropout = len(np.shape(sd.get(f"model.{first_block}.conv_block.6.weight", ()))) == 4
  return dict(width=stem[0], n_downsampling=n_down, n_blocks=n_blocks, norm="batch" if batch else "instance",
              dropout_rate=0.5 if dropout else 0.0), stem[1]


# ----------------------------------------------------------------------------
# PATN generator


def _patn_norm_prefixes(model: patn.PATNGenerator) -> list[tuple[str, tuple[str, ...]]]:
  """(official key prefix, Flax path) of every normalisation layer, in the official order."""
  n_down, (first, second) = model.n_downsampling, _block_conv_indices(model.dropout_rate > 0)
  out = []
  for stream, name in (("stream1_down", "image_stream"), ("stream2_down", "pose_stream")):
    out.append((f"model.{stream}.2", (name, "stem_norm")))
    out += [(f"model.{stream}.{5 + 3 * i}", (name, f"downsample_norm_{i}")) for i in range(n_down)]
  for j in range(model.n_blocks):
    block = f"model.att.{j}"
    out += [(f"{block}.conv_block_stream1.{first + 1}", (f"block_{j}", "image_norm_0")),
            (f"{block}.conv_block_stream1.{second + 1}", (f"block_{j}", "image_norm_1")),
            (f"{block}.conv_block_stream2.{first + 1}", (f"block_{j}", "pose_norm_0"))]
  out += [(f"model.stream1_up.{3 * i + 1}", ("decoder", f"upsample_norm_{i}")) for i in range(n_down)]
  return out


def patn_generator_table(model: patn.PATNGenerator) -> list[Entry]:
  """Official `PATNModel` keys (patn_G_state_dict.tsv) <-> jaxpose.models.patn variables, in the official order.

  With batch norm the convs lose their biases (except the output conv) and
  every norm layer brings weight, bias, running_mean, running_var.
  """
  batch = model.norm == "batch"
  bias = not batch
  n_down, (first, second) = model.n_downsampling, _block_conv_indices(model.dropout_rate > 0)
  t: list[Entry] = []

  def norm(prefix: str, path: tuple[str, ...]) -> None:
    if batch:
      t.extend(_batch_norm(prefix, path))

  for stream, name in (("stream1_down", "image_stream"), ("stream2_down", "pose_stream")):
    t += _conv(f"model.{stream}.1", "params", (name, "stem"), bias)
    norm(f"model.{stream}.2", (name, "stem_norm"))
    for i in range(n_down):
      t += _conv(f"model.{stream}.{4 + 3 * i}", "params", (name, f"downsample_{i}"), bias)
      norm(f"model.{stream}.{5 + 3 * i}", (name, f"downsample_norm_{i}"))
  for j in range(model.n_blocks):
    block = f"model.att.{j}"
    for stream, path in (("conv_block_stream1", "image"), ("conv_block_stream2", "pose")):
      t += _conv(f"{block}.{stream}.{first}", "params", (f"block_{j}", f"{path}_conv_0"), bias)
      norm(f"{block}.{stream}.{first + 1}", (f"block_{j}", f"{path}_norm_0"))
      t += _conv(f"{block}.{stream}.{second}", "params", (f"block_{j}", f"{path}_conv_1"), bias)
      if path == "image":  # the pose path ends with the attention logits: no norm
        norm(f"{block}.{stream}.{second + 1}", (f"block_{j}", f"{path}_norm_1"))
  for i in range(n_down):
    t += [Entry(f"model.stream1_up.{3 * i}.weight", "params", ("decoder", f"upsample_{i}", "kernel"),
                "conv_transpose")]
    if bias:
      t += [Entry(f"model.stream1_up.{3 * i}.bias", "params", ("decoder", f"upsample_{i}", "bias"), "vector")]
    norm(f"model.stream1_up.{3 * i + 1}", ("decoder", f"upsample_norm_{i}"))
  t += _conv(f"model.stream1_up.{3 * n_down + 1}", "params", ("decoder", "output_conv"))
  return t


def _patn_generator_known_unused(model: patn.PATNGenerator) -> Callable[[str], str | None]:
  norms = {prefix for prefix, _ in _patn_norm_prefixes(model)}

  def verdict(key: str) -> str | None:
    prefix, _, leaf = key.rpartition(".")
    if prefix not in norms:
      return None
    if leaf == "num_batches_tracked":
      return "ignore"
    if model.norm == "instance" and leaf in ("running_mean", "running_var"):
      return "ignore"  # PyTorch 0.3's InstanceNorm buffers: written, never read (see patn_generator_variables).
    return None
  return verdict


def patn_generator_abstract(model: patn.PATNGenerator, height: int = 32, width: int = 32) -> dict:
  """Shapes of the generator's variables, without allocating them."""
  return _abstract_variables(model, jnp.zeros((1, height, width, model.image_channels)),
                             jnp.zeros((1, height, width, model.pose_channels)),
                             jnp.zeros((1, height, width, model.pose_channels)))


def patn_generator_variables(state_dict: Mapping[str, Any], model: patn.PATNGenerator,
                             *, source: str = "PATN generator state_dict") -> dict:
  """Official netG state_dict -> {'params'[, 'batch_stats']} for `model` (numpy float32 leaves).

  Instance-norm checkpoints saved by PyTorch 0.3 (the released DeepFashion
  model among them) carry a `running_mean` / `running_var` for every
  InstanceNorm2d: 0.3 registered them although `InstanceNorm2d(affine=False)`
  normalises with each image's own statistics and never reads them, and
  PyTorch >= 0.4 refuses to load them (PATN issue #12, fixed upstream by
  tool/rm_insnorm_running_vars.py). They are accepted and ignored here, with one
  log line; so is BatchNorm's `num_batches_tracked`.
  """
  verdict = _patn_generator_known_unused(model)
  legacy = [k for k in strip_module_prefix(state_dict) if verdict(k) == "ignore" and "running_" in k]
  variables = state_dict_to_variables(state_dict, patn_generator_table(model), patn_generator_abstract(model),
                                      source=source, known_unused=verdict)
  if legacy:
    layers = len({k.rpartition(".")[0] for k in legacy})
    logging.info("%s: ignored the running_mean/running_var of %d InstanceNorm layers (%d buffers), which "
                 "PyTorch 0.3 saved but instance norm never reads (PATN issue #12)", source, layers, len(legacy))
  return variables


def patn_generator_state_dict(variables: Mapping[str, Any], model: patn.PATNGenerator | None = None, *,
                              instance_norm_buffers: bool = False) -> dict[str, np.ndarray]:
  """Flax generator variables -> official netG state_dict (PyTorch layouts, float32 numpy).

  instance_norm_buffers=True also writes the PyTorch 0.3 InstanceNorm
  `running_mean` (zeros) / `running_var` (ones) keys, as old checkpoints have
  them; BatchNorm's `num_batches_tracked` is not written.
  """
  if model is None:
    model = patn.PATNGenerator(**infer_patn_generator_hparams_from_variables(variables))
  collections = ("params", "batch_stats") if model.norm == "batch" else ("params",)
  state_dict = variables_to_state_dict({k: variables[k] for k in collections}, patn_generator_table(model))
  if instance_norm_buffers and model.norm == "instance":
    # Each norm follows the conv at the index before it; keep the official key order.
    after_conv = {}
    for prefix, _ in _patn_norm_prefixes(model):
      head, _, index = prefix.rpartition(".")
      after_conv[f"{head}.{int(index) - 1}.bias"] = prefix
    ordered = {}
    for key, value in state_dict.items():
      ordered[key] = value
      if key in after_conv:
        ordered[f"{after_conv[key]}.running_mean"] = np.zeros(value.shape, np.float32)
        ordered[f"{after_conv[key]}.running_var"] = np.ones(value.shape, np.float32)
    state_dict = ordered
  return state_dict


def infer_patn_generator_hparams(state_dict: Mapping[str, Any], source: str = "PATN generator state_dict"
                                 ) -> dict[str, Any]:
  """PATNGenerator constructor kwargs read off the tensor shapes of an official netG state_dict."""
  sd = strip_module_prefix(state_dict)
  image_stem = _shape(sd, "model.stream1_down.1.weight", source)
  pose_stem = _shape(sd, "model.stream2_down.1.weight", source)
  n_down = 0
  while f"model.stream1_down.{4 + 3 * n_down}.weight" in sd:
    n_down += 1
  blocks = re.compile(r"model\.att\.(\d+)\.")
  n_blocks = len({m.group(1) for k in sd if (m := blocks.match(k))})
  # [Pad, Conv, Norm, ReLU, Dropout, Pad, Conv, ...]: the second conv is module 6 with dropout, 5 without
  # (then module 6 is the norm, whose BatchNorm weight is 1-D).
  dropout = len(np.shape(sd.get("model.att.0.conv_block_stream1.6.weight", ()))) == 4
  return dict(image_channels=image_stem[1], pose_channels=pose_stem[1] // 2, width=image_stem[0],
              n_downsampling=n_down, n_blocks=n_blocks,
              norm="batch" if "model.stream1_down.2.weight" in sd else "instance",
              dropout_rate=0.5 if dropout else 0.0)


def infer_patn_generator_hparams_from_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
  """PATNGenerator constructor kwargs read off our own variables' shapes (dropout: the official 0.5)."""
  p = variables["params"]
  image_stem = np.shape(p["image_stream"]["stem"]["kernel"])
  return dict(image_channels=image_stem[2], pose_channels=np.shape(p["pose_stream"]["stem"]["kernel"])[2] // 2,
              width=image_stem[3], n_downsampling=sum(1 for k in p["image_stream"] if k.startswith("downsample_")),
              n_blocks=sum(1 for k in p if k.startswith("block_")),
              norm="batch" if "batch_stats" in variables else "instance")


# ----------------------------------------------------------------------------
# OpenPose COCO body network (CMU's weights as Hzzone's .pth or pose-gan's Keras .h5)

# michalfaber's later Keras graphs (the ones with the Lambda normalisation layer)
# call stage 1 `Mconv{1..5}_stage1_L{b}` instead of caffe's `conv5_{1..5}_CPM_L{b}`.
_KERAS_STAGE1_ALIAS = re.compile(r"Mconv([1-5])_stage1_L([12])")
_OPENPOSE_NAME = re.compile(r"conv\d_\d|conv4_[34]_CPM|conv5_[1-5]_CPM_L[12]|Mconv[1-7]_stage\d+_L[12]")


class CheckpointLayoutError(StateDictMismatchError):
  """A file's tensors do not fit the model; the message lists the problems and then what the file holds."""

  def __init__(self, source: str, problems: Sequence[str], holds: str):
    super().__init__(source, problems)
    self.holds = holds
    ValueError.__init__(self, f"{self.args[0]}\nWhat the file holds:\n{holds}")


def openpose_body_table(model: openpose_lib.OpenPoseBody, *, keras: bool = False) -> list[Entry]:
  """Caffe layer names <-> `params[<name>]`.

  File keys are `<name>.weight` (OIHW) / `<name>.bias`, as in Hzzone's
  body_pose_model.pth, or with keras `<name>/kernel` (HWIO) / `<name>/bias`,
  the names `openpose_body_from_keras` gives a Keras file's arrays.
  """
  table = []
  for spec in model.conv_specs():
    if keras:
      table += [Entry(f"{spec.name}/kernel", "params", (spec.name, "kernel"), "keras_conv"),
                Entry(f"{spec.name}/bias", "params", (spec.name, "bias"), "vector")]
    else:
      table += _conv(spec.name, "params", (spec.name,))
  return table


def _openpose_hparams_from_channels(channels: Mapping[str, tuple[int, int]], source: str) -> dict[str, Any]:
  """OpenPoseBody kwargs from {caffe conv name: (in channels, out channels)}."""
  needed = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_3_CPM", "conv4_4_CPM", "conv5_1_CPM_L1",
            "conv5_4_CPM_L1", "conv5_5_CPM_L1", "conv5_5_CPM_L2"]
  missing = [name for name in needed if name not in channels]
  if missing:
    raise StateDictMismatchError(source, [f"missing conv {name} (needed to infer the architecture)"
                                          for name in missing])
  num_stages = 1
  while f"Mconv1_stage{num_stages + 1}_L1" in channels:
    num_stages += 1
  out = {name: channels[name][1] for name in needed}
  return dict(backbone_widths=(out["conv1_1"], out["conv2_1"], out["conv3_1"], out["conv4_1"]),
              cpm_widths=(out["conv4_3_CPM"], out["conv4_4_CPM"]), stage_width=out["conv5_1_CPM_L1"],
              stage1_hidden=out["conv5_4_CPM_L1"], num_stages=num_stages, num_pafs=out["conv5_5_CPM_L1"],
              num_heatmaps=out["conv5_5_CPM_L2"])


def infer_openpose_body_hparams(state_dict: Mapping[str, Any], source: str = "OpenPose state_dict"
                                ) -> dict[str, Any]:
  """OpenPoseBody constructor kwargs read off the OIHW shapes of a body_pose_model.pth-style state_dict."""
  sd = strip_module_prefix(state_dict)
  channels = {key[:-len(".weight")]: (np.shape(v)[1], np.shape(v)[0]) for key, v in sd.items()
              if key.endswith(".weight") and np.ndim(v) == 4}
  return _openpose_hparams_from_channels(channels, source)


def openpose_body_variables(state_dict: Mapping[str, Any], model: openpose_lib.OpenPoseBody, *,
                            source: str = "OpenPose state_dict") -> dict:
  """Hzzone's body_pose_model.pth state_dict (184 OIHW tensors by caffe name) -> {'params': ...}."""
  return state_dict_to_variables(state_dict, openpose_body_table(model), openpose_lib.abstract_variables(model),
                                 source=source)


def openpose_body_state_dict(variables: Mapping[str, Any], model: openpose_lib.OpenPoseBody | None = None
                             ) -> dict[str, np.ndarray]:
  """Flax variables -> the body_pose_model.pth layout (`conv1_1.weight` OIHW, ...), e.g. for test fixtures."""
  if model is None:
    model = openpose_lib.OpenPoseBody(**_openpose_hparams_from_channels(
        {name: tuple(np.shape(v["kernel"])[2:]) for name, v in variables["params"].items()}, "variables"))
  return variables_to_state_dict({"params": variables["params"]}, openpose_body_table(model))


def _keras_arrays(layer: keras_h5.KerasLayer, name: str, backend: str) -> dict[str, np.ndarray]:
  """A Keras conv layer's arrays keyed `<name>/kernel`, `<name>/bias` (other weights keep their short name)."""
  out = {}
  for short, array in zip(layer.short_names, layer.arrays):
    # Keras 2 names them kernel/bias; Keras 1 `<layer>_W` / `<layer>_b`.
    if short == "kernel" or short == "W" or short.endswith("_W"):
      role = "kernel"
    elif short == "bias" or short == "b" or short.endswith("_b"):
      role = "bias"
    else:
      role = short
    if role == "kernel" and backend == "theano" and array.ndim == 4:
      # What Keras' own loader does with a Theano file (convert_kernel): Theano convolves, TF correlates.
      array = array[::-1, ::-1]
    out[f"{name}/{role}"] = array
  return out


def _openpose_keras_orders(num_layers: int) -> list[tuple[str, list[str]]]:
  """Candidate caffe names for weighted layers in a file's recorded order, when its names are unknown.

  Keras records a functional model's layers by depth; the two branches of a
  stage may then alternate, or follow one another. Each candidate is checked
  against the shapes afterwards, and only an unambiguous match is used.
  """
  rest = num_layers - len(openpose_lib.backbone_names()) - 10
  if rest < 0 or rest % 14:
    return []
  stages = 1 + rest // 14
  orders = []
  for label, first, interleave in (("branch 1 then branch 2 per stage", 1, False),
                                   ("branch 2 then branch 1 per stage", 2, False),
                                   ("branches alternating by depth, branch 1 first", 1, True),
                                   ("branches alternating by depth, branch 2 first", 2, True)):
    names = list(openpose_lib.backbone_names())
    for stage in range(1, stages + 1):
      a, b = openpose_lib.stage_names(stage, first), openpose_lib.stage_names(stage, 3 - first)
      names += [n for pair in zip(a, b) for n in pair] if interleave else a + b
    orders.append((label, names))
  return orders


def _openpose_from_named_arrays(arrays: Mapping[str, np.ndarray], source: str
                                ) -> tuple[openpose_lib.OpenPoseBody, dict]:
  channels = {key[:-len("/kernel")]: (np.shape(v)[2], np.shape(v)[3]) for key, v in arrays.items()
              if key.endswith("/kernel") and np.ndim(v) == 4}
  model = openpose_lib.OpenPoseBody(**_openpose_hparams_from_channels(channels, source))
  variables = state_dict_to_variables(arrays, openpose_body_table(model, keras=True),
                                      openpose_lib.abstract_variables(model), source=source)
  return model, variables


def openpose_body_from_keras(weights: keras_h5.KerasWeightsFile, *, source: str | None = None
                             ) -> tuple[openpose_lib.OpenPoseBody, dict]:
  """A Keras OpenPose file (pose-gan's pose_estimator.h5, michalfaber's model.h5) -> (model, variables).

  The layout of pose_estimator.h5 is not documented anywhere we could check,
  so the layers are probed: first by name (caffe's, or michalfaber's later
  `Mconv{i}_stage1_L{b}` for stage 1); if no layer has such a name, by the
  recorded layer order, trying the orders Keras can record the two branches
  in and keeping the one whose shapes all fit (a warning says so). Weightless
  layers (Input, Activation, pooling, Concatenate, a Lambda normalisation) are
  ignored. Anything else raises `CheckpointLayoutError`, which lists every
  problem and then what the file holds.
  """
  source = source or f"{weights.path} (openpose_body)"
  weighted = weights.weighted_layers()
  named = {}
  for layer in weighted:
    alias = _KERAS_STAGE1_ALIAS.fullmatch(layer.name)
    named[f"conv5_{alias.group(1)}_CPM_L{alias.group(2)}" if alias else layer.name] = layer
  if any(_OPENPOSE_NAME.fullmatch(name) for name in named):
    arrays = {}
    for name, layer in named.items():
      arrays.update(_keras_arrays(layer, name, weights.backend))
    try:
      return _openpose_from_named_arrays(arrays, source)
    except StateDictMismatchError as e:
      raise CheckpointLayoutError(source, e.problems, weights.describe()) from None
  if not weights.layer_order_recorded:
    raise CheckpointLayoutError(source, ["no layer has an OpenPose (caffe) name, and the file records no "
                                         "layer order (no 'layer_names' attribute) to match them by"],
                                weights.describe())
  orders = _openpose_keras_orders(len(weighted))
  if not orders:
    raise CheckpointLayoutError(
        source, [f"no layer has an OpenPose (caffe) name, and its {len(weighted)} layers with weights are not "
                 "12 + 10 + 14k, the convs of an OpenPose body network with k + 1 stages"], weights.describe())
  fits, failures = [], []
  for label, names in orders:
    arrays = {}
    for name, layer in zip(names, weighted):
      arrays.update(_keras_arrays(layer, name, weights.backend))
    try:
      model, variables = _openpose_from_named_arrays(arrays, source)
    except StateDictMismatchError as e:
      failures.append(f"by recorded order ({label}): {len(e.problems)} problems, first: {e.problems[0]}")
      continue
    # Shapes alone cannot tell the branches apart (swapping them swaps 38 and 19 consistently):
    # branch 1 is the one with the 38 PAF channels.
    if (model.num_pafs, model.num_heatmaps) != (openpose_lib.NUM_PAFS, openpose_lib.NUM_HEATMAPS):
      failures.append(f"by recorded order ({label}): branch 1 would output {model.num_pafs} channels, "
                      f"branch 2 {model.num_heatmaps} (expected {openpose_lib.NUM_PAFS} PAFs, "
                      f"{openpose_lib.NUM_HEATMAPS} confidence maps)")
      continue
    fits.append((label, names, (model, variables)))
  if len(fits) != 1:
    reason = (["no layer has an OpenPose (caffe) name, and no order of its layers fits the network's shapes:"]
              + failures if not fits else
              [f"layer names unknown and {len(fits)} orders fit the shapes ({', '.join(f[0] for f in fits)}): "
               "ambiguous"])
    raise CheckpointLayoutError(source, reason, weights.describe())
  label, names, result = fits[0]
  logging.warning("%s: no layer has an OpenPose (caffe) name; matched the %d convs by the recorded layer order "
                  "(%s) and their shapes: %s", source, len(names), label,
                  ", ".join(f"{layer.name}->{name}" for layer, name in zip(weighted, names)))
  return result


def import_openpose_body(path: str) -> tuple[openpose_lib.OpenPoseBody, dict]:
  """body_pose_model.pth (torch-free reader) or a Keras .h5 (h5py), told apart by content -> (model, variables)."""
  source = f"{path} (openpose_body)"
  if keras_h5.is_hdf5(path):
    model, variables = openpose_body_from_keras(keras_h5.read_keras_h5(path), source=source)
  else:
    state_dict = _load_state_dict(path)
    model = openpose_lib.OpenPoseBody(**infer_openpose_body_hparams(state_dict, source))
    variables = openpose_body_variables(state_dict, model, source=source)
  return model, variables


# ----------------------------------------------------------------------------
# Files


def _load_state_dict(path: str) -> dict[str, np.ndarray]:
  from jaxpose.io import torch_checkpoint  # pylint: disable=g-import-not-at-top
  return torch_checkpoint.load_state_dict(path)


KINDS = ("adgan_generator", "adgan_discriminator_pb", "adgan_discriminator_pp", "patn_generator",
         "patn_discriminator_pb", "patn_discriminator_pp", "resnet_discriminator", "vgg19", "vgg16", "vgg_conv",
         "openpose_body")


def import_checkpoint(kind: str, path: str) -> tuple[Any, dict]:
  """Reads an official checkpoint file -> (Flax model, variables of jax arrays).

  kind: 'adgan_generator' (`model.apply(v, target_pose, source_image,
  source_parsing)`), 'patn_generator' (`model.apply(v, source_image,
  source_pose, target_pose)`; instance or batch norm, read off the keys),
  'adgan_discriminator_pb' / 'adgan_discriminator_pp' / 'patn_discriminator_pb'
  / 'patn_discriminator_pp' / 'resnet_discriminator' (`model.apply(v, x,
  train=False)`), 'vgg19' / 'vgg16' (torchvision files) or 'vgg_conv' (Gatys
  VGG19), the last three as (vgg.VGG, {'frozen': ...}) with
  `model.apply(v, x, layers)`, or 'openpose_body' (`model.apply(v, bgr) ->
  (pafs, heatmaps)`, jaxpose.models.openpose): Hzzone's body_pose_model.pth
  or a Keras .h5 such as pose-gan's pose_estimator.h5, told apart by content.

  PATN's discriminators are ADGAN's `ResnetDiscriminator` (ADGAN took them from
  PATN); the Market ones use batch norm and come with their `batch_stats`.
  Market's `--no_lsgan` discriminators end in a Sigmoid, which has no weights
  and so cannot be read off a file: the model returned outputs logits
  (use_sigmoid=False), which is what jaxpose's BCE loss takes.
  """
  if kind not in KINDS:
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
  if kind == "openpose_body":
    model, variables = import_openpose_body(path)
    return model, jax.tree.map(jnp.asarray, variables)
  state_dict = _load_state_dict(path)
  source = f"{path} ({kind})"
  if kind == "adgan_generator":
    model = adgan.ADGANGenerator(**infer_adgan_generator_hparams(state_dict, source))
    variables = adgan_generator_variables(state_dict, model, source=source)
  elif kind == "patn_generator":
    model = patn.PATNGenerator(**infer_patn_generator_hparams(state_dict, source))
    variables = patn_generator_variables(state_dict, model, source=source)
  elif kind in ("vgg19", "vgg16"):
    variables = vgg_lib.from_torchvision_state_dict(state_dict, kind)
    model = vgg_lib.VGG(kind)
  elif kind == "vgg_conv":
    variables = vgg_lib.from_gatys_state_dict(state_dict)
    model = vgg_lib.VGG("vgg19")
  else:
    hparams, in_channels = infer_discriminator_hparams(state_dict, source)
    # D_PP sees (image, source image) = 6 channels, D_PB (image, pose) = 3 + pose
    # channels: catch swapped files here rather than as a shape error later.
    if kind.endswith("_discriminator_pp") and in_channels != 6:
      raise ValueError(f"{path}: D_PP takes 6 input channels, this file has {in_channels} (a D_PB file?)")
    if kind.endswith("_discriminator_pb") and in_channels == 6:
      raise ValueError(f"{path}: D_PB takes image + pose channels, this file has 6 (a D_PP file?)")
    model = discriminator_lib.ResnetDiscriminator(**hparams)
    variables = discriminator_variables(state_dict, model, in_channels, source=source)
  return model, jax.tree.map(jnp.asarray, variables)


def parameter_counts(variables: Mapping[str, Any]) -> dict[str, int]:
  return {c: int(sum(math.prod(np.shape(x)) for x in jax.tree.leaves(tree))) for c, tree in variables.items()}


def _hparams_json(model) -> dict[str, Any]:
  out = {}
  for field in dataclasses.fields(model):
    if field.name in ("parent", "name", "dtype"):
      continue
    value = getattr(model, field.name)
    out[field.name] = list(value) if isinstance(value, tuple) else value
  return out


FAMILIES = ("adgan", "patn")


def convert_official(family: str, generator: str, output: str, discriminator_pb: str | None = None,
                     discriminator_pp: str | None = None) -> dict[str, Any]:
  """Imports official ADGAN or PATN .pth files and writes the Orbax directory described in the module docstring.

  Returns the JSON summary it wrote.
  """
  if family not in FAMILIES:
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  output = os.path.abspath(output)
  state_dir = os.path.join(output, "state")
  if os.path.exists(state_dir):
    raise FileExistsError(f"{state_dir} exists; choose a new --output directory")
  tree, networks = {}, {}
  for name, kind, path in (("generator", f"{family}_generator", generator),
                           ("discriminator_pb", f"{family}_discriminator_pb", discriminator_pb),
                           ("discriminator_pp", f"{family}_discriminator_pp", discriminator_pp)):
    if path is None:
      continue
    model, variables = import_checkpoint(kind, path)
    tree[name] = variables
    networks[name] = dict(source=os.path.abspath(path), module=type(model).__name__,
                          hyperparameters=_hparams_json(model), parameter_counts=parameter_counts(variables))
  os.makedirs(output, exist_ok=True)
  verbosity = logging.get_verbosity()
  logging.set_verbosity(min(verbosity, logging.WARNING))  # Orbax logs every step of a save at INFO.
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(state_dir, tree)
  finally:
    logging.set_verbosity(verbosity)
  summary = {"format": 1, "kind": family, "networks": networks}
  with open(os.path.join(output, "jaxpose_convert.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


def convert_adgan(generator: str, output: str, discriminator_pb: str | None = None,
                  discriminator_pp: str | None = None) -> dict[str, Any]:
  """`convert_official('adgan', ...)`."""
  return convert_official("adgan", generator, output, discriminator_pb, discriminator_pp)


def convert_patn(generator: str, output: str, discriminator_pb: str | None = None,
                 discriminator_pp: str | None = None) -> dict[str, Any]:
  """`convert_official('patn', ...)`."""
  return convert_official("patn", generator, output, discriminator_pb, discriminator_pp)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m jaxpose.convert",
      description="Convert official PyTorch checkpoints into a jaxpose Orbax directory "
                  "(train from it with --config.init_from=<output>).")
  parser.add_argument("--kind", required=True, choices=list(FAMILIES), help="which official model family")
  parser.add_argument("--generator", required=True, help="<epoch>_net_netG.pth")
  parser.add_argument("--discriminator_pb", help="<epoch>_net_netD_PB.pth (optional)")
  parser.add_argument("--discriminator_pp", help="<epoch>_net_netD_PP.pth (optional)")
  parser.add_argument("--output", required=True, help="new directory to write")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  summary = convert_official(args.kind, args.generator, args.output, args.discriminator_pb, args.discriminator_pp)
  print(f"Wrote {os.path.join(os.path.abspath(args.output), 'state')} (Orbax) and jaxpose_convert.json:")
  for name, info in summary["networks"].items():
    counts = ", ".join(f"{c} {n:,}" for c, n in sorted(info["parameter_counts"].items(),
                                                        key=lambda item: item[0] != "params"))
    print(f"  {name}: {info['module']} from {info['source']}: {counts}")
    print(f"    hyperparameters {info['hyperparameters']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
