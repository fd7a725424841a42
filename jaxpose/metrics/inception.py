"""Inception-v3 with torchvision's architecture, for FID and IS, and its weight import.

Two weight files are in use (shared/reference/evaluation.md 2.2-2.3), both with
torchvision's key names (`Conv2d_1a_3x3.conv.weight`, `.bn.weight`, `.bn.bias`,
`.bn.running_mean`, `.bn.running_var`, ..., `fc.weight`, `fc.bias`):

  * torchvision's ImageNet `inception_v3_google-0cc3c7bd.pth` (1000 classes):
    the FID of GFLA, DPTN, PIDM, CFLD, PCDMs (`variant='torchvision'`).
    Preprocessing `'gfla'`: [0, 1] images, bilinear resize to 299x299
    (PyTorch `F.upsample`, align_corners=False) and GFLA's `normalize_input`,
    x * (std / 0.5) + (mean - 0.5) / 0.5 per channel with the ImageNet mean/std.
    (That formula is torchvision's `transform_input`, meant for ImageNet-
    normalised input but applied to [0, 1] images by GFLA; it is the protocol.)
  * pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (1008 classes): the
    TF 2015-12-05 graph (the one the PATN/ADGAN IS script and TF-FID use),
    ported (`variant='fid'`). Its blocks differ: the average pools of Mixed_5*,
    Mixed_6b-e and Mixed_7b do not count the zero padding, and Mixed_7c's pool
    branch max-pools. Preprocessing `'pytorch_fid'` (2x - 1 on [0, 1], bilinear
    align_corners=False) or `'tf_is'` (the TF graph's own input ops, as
    torch-fidelity reproduces them: TF1 legacy bilinear resize, then
    (x - 128) / 128 on [0, 255]).

BasicConv2d is conv (no bias) + BatchNorm (eps 0.001, running statistics) +
ReLU. The module returns pool3 (the 2048-d average-pooled Mixed_7c output, the
FID features), the logits, and the logits without the fc bias: the OpenAI /
PATN IS script multiplies pool3 by the softmax weights alone, so IS with the
2015 graph uses `logits_unbiased`. The auxiliary classifier is not built.

`width_divisor` shrinks every channel count (for tests); real weights need 1.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping

from absl import logging
import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxpose.io import state_dict as sd_lib

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INPUT_SIZE = 299
VARIANTS = ("torchvision", "fid")
PREPROCESSING = ("gfla", "pytorch_fid", "tf_is")
NUM_CLASSES = {"torchvision": 1000, "fid": 1008}


class BasicConv2d(nn.Module):
  """Conv (no bias) + BatchNorm(eps=1e-3, running averages) + ReLU."""
  features: int
  kernel: tuple[int, int]
  stride: int = 1
  padding: tuple[int, int] = (0, 0)

  @nn.compact
  def __call__(self, x):
    (ph, pw) = self.padding
    x = nn.Conv(self.features, self.kernel, strides=(self.stride, self.stride),
                padding=((ph, ph), (pw, pw)), use_bias=False,
                precision=lax.Precision.HIGHEST, name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
    return nn.relu(x)


def _ch(n: int, divisor: int) -> int:
  """Channel count n shrunk by width_divisor (at least 1)."""
  return max(1, n // divisor)


def _avg_pool_3x3(x, count_include_pad: bool):
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)),
                     count_include_pad=count_include_pad)


def _max_pool_3x3_s2(x):
  return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


class InceptionA(nn.Module):
  pool_features: int
  divisor: int = 1
  include_pad: bool = True

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_ch, divisor=self.divisor)
    b1 = BasicConv2d(c(64), (1, 1), name="branch1x1")(x)
    b5 = BasicConv2d(c(48), (1, 1), name="branch5x5_1")(x)
    b5 = BasicConv2d(c(64), (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv2d(c(64), (1, 1), name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(c(96), (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(c(96), (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(c(self.pool_features), (1, 1), name="branch_pool")(_avg_pool_3x3(x, self.include_pad))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  divisor: int = 1

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_ch, divisor=self.divisor)
    b3 = BasicConv2d(c(384), (3, 3), stride=2, name="branch3x3")(x)
    bd = BasicConv2d(c(64), (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv2d(c(96), (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(c(96), (3, 3), stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3_s2(x)], axis=-1)


class InceptionC(nn.Module):
  channels_7x7: int
  divisor: int = 1
  include_pad: bool = True

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_ch, divisor=self.divisor)
    c7 = c(self.channels_7x7)
    b1 = BasicConv2d(c(192), (1, 1), name="branch1x1")(x)
    b7 = BasicConv2d(c7, (1, 1), name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(c(192), (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, (1, 1), name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(c(192), (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(c(192), (1, 1), name="branch_pool")(_avg_pool_3x3(x, self.include_pad))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  divisor: int = 1

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_ch, divisor=self.divisor)
    b3 = BasicConv2d(c(192), (1, 1), name="branch3x3_1")(x)
    b3 = BasicConv2d(c(320), (3, 3), stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(c(192), (1, 1), name="branch7x7x3_1")(x)
    b7 = BasicConv2d(c(192), (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(c(192), (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(c(192), (3, 3), stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3_s2(x)], axis=-1)


class InceptionE(nn.Module):
  divisor: int = 1
  pool: str = "avg_include_pad"  # or "avg_exclude_pad" (FID E_1), "max" (FID E_2)

  @nn.compact
  def __call__(self, x):
    c = functools.partial(_ch, divisor=self.divisor)
    b1 = BasicConv2d(c(320), (1, 1), name="branch1x1")(x)
    b3 = BasicConv2d(c(384), (1, 1), name="branch3x3_1")(x)
    b3 = jnp.concatenate([
        BasicConv2d(c(384), (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
        BasicConv2d(c(384), (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv2d(c(448), (1, 1), name="branch3x3dbl_1")(x)
    bd = BasicConv2d(c(384), (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([
        BasicConv2d(c(384), (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
        BasicConv2d(c(384), (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    if self.pool == "max":
      pooled = nn.max_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)))
    else:
      pooled = _avg_pool_3x3(x, self.pool == "avg_include_pad")
    bp = BasicConv2d(c(192), (1, 1), name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class _Linear(nn.Module):
  """fc: returns (x @ W + b, x @ W)."""
  features: int

  @nn.compact
  def __call__(self, x):
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    unbiased = jnp.dot(x, kernel, precision=lax.Precision.HIGHEST)
    return unbiased + bias, unbiased


class InceptionV3(nn.Module):
  """torchvision Inception3 (`variant='torchvision'`) or pytorch-fid's FIDInception (`'fid'`).

  Call: x (B, 299, 299, 3) already preprocessed (see `preprocess`) ->
  {'pool3': (B, 2048), 'logits': (B, num_classes), 'logits_unbiased': (B, num_classes)}.
  """
  variant: str = "torchvision"
  num_classes: int | None = None  # None: 1000 for torchvision, 1008 for fid
  width_divisor: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> dict[str, jax.Array]:
    if self.variant not in VARIANTS:
      raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
    d = self.width_divisor
    c = functools.partial(_ch, divisor=d)
    fid = self.variant == "fid"
    include_pad = not fid
    x = BasicConv2d(c(32), (3, 3), stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(c(32), (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(c(64), (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = BasicConv2d(c(80), (1, 1), name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(c(192), (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3_s2(x)
    x = InceptionA(32, d, include_pad, name="Mixed_5b")(x)
    x = InceptionA(64, d, include_pad, name="Mixed_5c")(x)
    x = InceptionA(64, d, include_pad, name="Mixed_5d")(x)
    x = InceptionB(d, name="Mixed_6a")(x)
    x = InceptionC(128, d, include_pad, name="Mixed_6b")(x)
    x = InceptionC(160, d, include_pad, name="Mixed_6c")(x)
    x = InceptionC(160, d, include_pad, name="Mixed_6d")(x)
    x = InceptionC(192, d, include_pad, name="Mixed_6e")(x)
    x = InceptionD(d, name="Mixed_7a")(x)
    x = InceptionE(d, "avg_exclude_pad" if fid else "avg_include_pad", name="Mixed_7b")(x)
    x = InceptionE(d, "max" if fid else "avg_include_pad", name="Mixed_7c")(x)
    pool3 = jnp.mean(x, axis=(1, 2))
    logits, unbiased = _Linear(self.num_classes or NUM_CLASSES[self.variant], name="fc")(pool3)
    return {"pool3": pool3, "logits": logits, "logits_unbiased": unbiased}


# ----------------------------------------------------------------------------
# Preprocessing


def _interpolation_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
  """(n_out, n_in) linear-interpolation weights along one axis.

  mode 'half_pixel': PyTorch bilinear, align_corners=False, no antialiasing:
    src = (o + 0.5) * n_in / n_out - 0.5, clamped at 0.
  mode 'tf1': TensorFlow 1 `resize_bilinear` (align_corners=False, no half
    pixel centres): src = o * n_in / n_out.
  Both clamp the upper neighbour at the last pixel.
  """
  o = np.arange(n_out, dtype=np.float64)
  scale = n_in / n_out
  src = (o + 0.5) * scale - 0.5 if mode == "half_pixel" else o * scale
  src = np.maximum(src, 0.0)
  i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  i1 = np.minimum(i0 + 1, n_in - 1)
  frac = src - i0
  m = np.zeros((n_out, n_in), np.float64)
  np.add.at(m, (np.arange(n_out), i0), 1.0 - frac)
  np.add.at(m, (np.arange(n_out), i1), frac)
  return m


def resize_bilinear(images: jax.Array, size: tuple[int, int], mode: str = "half_pixel") -> jax.Array:
  """(B, H, W, C) float -> (B, size[0], size[1], C) by separable interpolation matrices."""
  rows = jnp.asarray(_interpolation_matrix(images.shape[1], size[0], mode), jnp.float32)
  cols = jnp.asarray(_interpolation_matrix(images.shape[2], size[1], mode), jnp.float32)
  hp = lax.Precision.HIGHEST
  x = jnp.einsum("oh,bhwc->bowc", rows, images, precision=hp)
  return jnp.einsum("pw,bowc->bopc", cols, x, precision=hp)


def preprocess(images: jax.Array, mode: str) -> jax.Array:
  """(B, H, W, 3) uint8 or float in [0, 255] -> (B, 299, 299, 3) network input.

  mode: 'gfla' (torchvision weights, GFLA/PIDM FID), 'pytorch_fid' (pytorch-fid
  weights as pytorch-fid feeds them) or 'tf_is' (pytorch-fid weights fed as the
  TF 2015 graph of the IS script).
  """
  x = jnp.asarray(images).astype(jnp.float32)
  size = (INPUT_SIZE, INPUT_SIZE)
  if mode == "gfla":
    x = resize_bilinear(x / 255.0, size)
    mean = jnp.asarray(IMAGENET_MEAN, jnp.float32)
    std = jnp.asarray(IMAGENET_STD, jnp.float32)
    return x * (std / 0.5) + (mean - 0.5) / 0.5
  if mode == "pytorch_fid":
    return 2.0 * resize_bilinear(x / 255.0, size) - 1.0
  if mode == "tf_is":
    return (resize_bilinear(x, size, mode="tf1") - 128.0) / 128.0
  raise ValueError(f"preprocessing mode must be one of {PREPROCESSING}, got {mode!r}")


@functools.partial(jax.jit, static_argnames=("model", "mode"))
def _features(model: InceptionV3, variables, images, mode: str):
  return model.apply(variables, preprocess(images, mode))


def inception_outputs(model: InceptionV3, variables: Mapping[str, Any], images, mode: str) -> dict:
  """pool3 / logits / logits_unbiased of (B, H, W, 3) [0, 255] images, jitted."""
  images = jnp.asarray(images)
  if images.ndim != 4 or images.shape[-1] != 3:
    raise ValueError(f"expected (B, H, W, 3) images, got {images.shape}")
  return _features(model, variables, images, mode)


# ----------------------------------------------------------------------------
# Weights


class InceptionWeightsError(sd_lib.StateDictMismatchError):
  """A state_dict that does not match the Inception-v3 layout (lists every problem)."""


_IGNORED_SUFFIXES = (".num_batches_tracked",)
_IGNORED_PREFIXES = ("AuxLogits.",)

# Flax leaf -> (torch suffix, collection, layout kind of jaxpose.io.state_dict)
_LEAF_MAP = {
    ("conv", "kernel"): ("conv.weight", "params", "conv"),
    ("bn", "scale"): ("bn.weight", "params", "vector"),
    ("bn", "bias"): ("bn.bias", "params", "vector"),
    ("bn", "mean"): ("bn.running_mean", "batch_stats", "vector"),
    ("bn", "var"): ("bn.running_var", "batch_stats", "vector"),
    ("fc", "kernel"): ("fc.weight", "params", "linear"),
    ("fc", "bias"): ("fc.bias", "params", "vector"),
}


@functools.lru_cache(maxsize=8)
def variable_shapes(model: InceptionV3) -> dict:
  """{'params': ..., 'batch_stats': ...} of ShapeDtypeStructs, without allocating weights.

  Cached per model configuration (tracing the full network takes about a second).
  """
  x = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.eval_shape(model.init, jax.random.PRNGKey(0), x)


def _table(variables: Mapping[str, Any]) -> list[sd_lib.Entry]:
  """torchvision Inception-v3 keys <-> the leaves of `variables` (arrays or ShapeDtypeStructs)."""
  table = []
  for collection in ("params", "batch_stats"):
    for path in flax.traverse_util.flatten_dict(flax.core.unfreeze(variables[collection])):
      suffix, _, kind = _LEAF_MAP[path[-2:]]
      prefix = ".".join(path[:-2])
      table.append(sd_lib.Entry(f"{prefix}.{suffix}" if prefix else suffix, collection, path, kind))
  return table


def _abstract(model: InceptionV3) -> dict:
  shapes = variable_shapes(model)
  return {c: flax.core.unfreeze(shapes[c]) for c in ("params", "batch_stats")}


def _ignored(key: str) -> str | None:
  return "ignore" if key.endswith(_IGNORED_SUFFIXES) or key.startswith(_IGNORED_PREFIXES) else None


def from_torch_state_dict(state_dict: Mapping[str, Any], model: InceptionV3) -> dict:
  """torchvision-named Inception-v3 state_dict -> {'params', 'batch_stats'} for `model`.

  OIHW conv weights become HWIO kernels, fc (out, in) becomes (in, out),
  BatchNorm weight/bias/running_mean/running_var become scale/bias/mean/var.
  `AuxLogits.*` and `num_batches_tracked` are ignored; any other missing,
  unexpected or mis-shaped entry raises, all listed together.
  """
  abstract = _abstract(model)
  return sd_lib.state_dict_to_variables(
      state_dict, _table(abstract), abstract, known_unused=_ignored, error=InceptionWeightsError,
      source=f"Inception-v3 state_dict ({model.variant}, width_divisor {model.width_divisor})")


def torch_state_dict_shapes(model: InceptionV3) -> dict[str, tuple[int, ...]]:
  """{torchvision key: PyTorch shape} of every tensor `from_torch_state_dict` needs for `model`."""
  abstract = _abstract(model)
  flat = {(c,) + p: v for c in abstract for p, v in flax.traverse_util.flatten_dict(abstract[c]).items()}
  return {e.torch_key: tuple(sd_lib.TO_TORCH[e.kind](np.empty(flat[(e.collection,) + e.path].shape, np.uint8)).shape)
          for e in _table(abstract)}


def to_torch_state_dict(variables: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """The inverse of `from_torch_state_dict`: torchvision names and layouts."""
  variables = {c: flax.core.unfreeze(variables[c]) for c in ("params", "batch_stats")}
  return sd_lib.variables_to_state_dict(variables, _table(variables))


def load_inception(path: str, *, width_divisor: int = 1) -> tuple[InceptionV3, dict, str]:
  """Loads either weight file; the variant follows from fc.weight's class count.

  Returns (model, variables, description): 1008 classes -> pytorch-fid's
  FIDInception (`variant='fid'`), 1000 -> torchvision Inception3.
  width_divisor: only for shrunken test files.
  """
  from jaxpose.io import torch_checkpoint  # pylint: disable=g-import-not-at-top
  if not os.path.exists(path):
    raise FileNotFoundError(f"Inception weights file not found: {path}")
  state_dict = torch_checkpoint.load_state_dict(path)
  fc = state_dict.get("fc.weight", state_dict.get("module.fc.weight"))
  if fc is None:
    raise InceptionWeightsError(f"{path}: no fc.weight, not an Inception-v3 state_dict "
                                f"(first keys {sorted(state_dict)[:5]})")
  num_classes = int(np.shape(fc)[0])
  variant = "fid" if num_classes == 1008 else "torchvision"
  model = InceptionV3(variant=variant, num_classes=num_classes, width_divisor=width_divisor)
  variables = from_torch_state_dict(state_dict, model)
  name = ("pytorch-fid's FID Inception (TF 2015-12-05 port)" if variant == "fid"
          else "torchvision ImageNet Inception-v3")
  description = f"{name}, {num_classes} classes, from {path}"
  logging.info("Loaded %s", description)
  return model, variables, description


def default_preprocessing(model: InceptionV3, purpose: str) -> str:
  """The protocol's preprocessing for a weight variant and 'fid' or 'is'."""
  if model.variant == "torchvision":
    return "gfla"
  return "tf_is" if purpose == "is" else "pytorch_fid"


def random_variables(model: InceptionV3, seed: int = 0) -> dict:
  """Random weights of the right shapes, drawn in numpy (fast; `model.init` runs op by op).

  For tests and shape checks only: He-scaled conv kernels, positive BN variances.
  """
  rng = np.random.default_rng(seed)
  shapes = variable_shapes(model)
  def draw(path, spec):
    name = path[-1].key
    shape = tuple(spec.shape)
    if name == "kernel":
      fan_in = int(np.prod(shape[:-1]))
      return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape).astype(np.float32)
    if name == "var":
      return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if name == "scale":
      return rng.uniform(0.8, 1.2, shape).astype(np.float32)
    return rng.normal(0.0, 0.1, shape).astype(np.float32)
  return jax.tree_util.tree_map_with_path(draw, flax.core.unfreeze(shapes))
