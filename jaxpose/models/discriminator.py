"""PATN's `ResnetDiscriminator`, which ADGAN uses unchanged as D_PB and D_PP.

shared/reference/adgan.md section 2, peers.md 1.2. ADGAN builds two:
D_PB (shape consistency) on concat(image, target pose) = 3 + 18 = 21 channels
and D_PP (appearance consistency) on concat(image, source image) = 6 channels.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.io import state_dict as sd_lib
from jaxpose.models import layers


class ResnetDiscriminator(nn.Module):
  """ReflPad3 conv7x7 -> norm -> ReLU -> n_downsampling x (conv3x3 s2, ZERO pad 1 -> norm -> ReLU)
  -> n_blocks x ResBlock(reflect, Dropout between its convs) [-> sigmoid].

  There is no final 1-channel conv: the output is the whole feature map (256
  channels at H/4 x W/4 by default), which the LSGAN loss compares element-wise
  with 1 or 0. The stride-2 convs pad with zeros, symmetric 1 (not 'SAME').

  Attributes:
    width: `ndf`, channels after the first conv (64).
    n_downsampling: stride-2 convs (2).
    n_blocks: residual blocks (3, from `n_layers_D`).
    norm: 'instance' (convs have biases; DeepFashion) or 'batch' (convs have no
      bias, PyTorch BatchNorm with momentum 0.1, eps 1e-5, `batch_stats`
      collection; PATN on Market).
    dropout_rate: dropout inside the residual blocks (0.5; official D keeps it
      active in every training pass).
    use_sigmoid: PATN's Market `--no_lsgan` variant ends with a sigmoid.
    dtype: compute dtype.

  Call: `(x, train)`, x (B, H, W, C_in) -> (B, H / 2^n, W / 2^n, width * 2^n).
  Dropout is active when train=True (rng collection 'dropout') and off when
  False; BatchNorm uses batch statistics when train=True.

  Parameters (official key): `stem` (model.1), `downsample_{i}` (model.{4+3i}),
  `block_{j}` (model.{4+3n+j}) with `conv_0`, `conv_1` (conv_block.1, .6), and
  for batch norm `stem_norm`, `downsample_norm_{i}`, `block_{j}/norm_{0,1}`.
  """
  width: int = 64
  n_downsampling: int = 2
  n_blocks: int = 3
  norm: str = "instance"
  dropout_rate: float = 0.5
  use_sigmoid: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.norm not in ("instance", "batch"):
      raise ValueError(f"discriminator norm must be 'instance' or 'batch', got {self.norm!r}")
    use_bias = self.norm == "instance"

    x = layers.ReflectConv(self.width, 7, 1, 3, "reflect", use_bias, dtype=self.dtype, name="stem")(x)
    x = nn.relu(layers.normalize(x, self.norm, train, "stem_norm"))
    for i in range(self.n_downsampling):
      x = layers.ReflectConv(self.width * 2 ** (i + 1), 3, 2, 1, "zero", use_bias, dtype=self.dtype,
                             name=f"downsample_{i}")(x)
      x = nn.relu(layers.normalize(x, self.norm, train, f"downsample_norm_{i}"))
    for j in range(self.n_blocks):
      x = layers.ResBlock(self.norm, self.dropout_rate, use_bias, dtype=self.dtype, name=f"block_{j}")(
          x, train=train)
    x = x.astype(jnp.float32)
    return jax.nn.sigmoid(x) if self.use_sigmoid else x


# ----------------------------------------------------------------------------
# Official PyTorch weights (read with jaxpose.io.state_dict's one mapping helper)


def block_conv_indices(dropout: bool) -> tuple[int, int]:
  # conv_block = [ReflPad, Conv, Norm, ReLU, (Dropout), ReflPad, Conv, Norm]
  return 1, (6 if dropout else 5)


def torch_table(model: ResnetDiscriminator) -> list[sd_lib.Entry]:
  """Official `ResnetDiscriminator` keys (model.{i}...) <-> jaxpose variables."""
  batch = model.norm == "batch"
  bias = not batch
  t: list[sd_lib.Entry] = []
  t += sd_lib.conv("model.1", "params", ("stem",), bias)
  if batch:
    t += sd_lib.batch_norm("model.2", ("stem_norm",))
  for i in range(model.n_downsampling):
    t += sd_lib.conv(f"model.{4 + 3 * i}", "params", (f"downsample_{i}",), bias)
    if batch:
      t += sd_lib.batch_norm(f"model.{5 + 3 * i}", (f"downsample_norm_{i}",))
  first_block = 4 + 3 * model.n_downsampling
  convs = block_conv_indices(model.dropout_rate > 0)
  for j in range(model.n_blocks):
    for c, idx in enumerate(convs):
      prefix = f"model.{first_block + j}.conv_block"
      t += sd_lib.conv(f"{prefix}.{idx}", "params", (f"block_{j}", f"conv_{c}"), bias)
      if batch:
        t += sd_lib.batch_norm(f"{prefix}.{idx + 1}", (f"block_{j}", f"norm_{c}"))
  return t


def _torch_known_unused(model: ResnetDiscriminator) -> Callable[[str], str | None]:
  norms = {e.torch_key.rpartition(".")[0] for e in torch_table(model.clone(norm="batch"))
           if e.collection == "batch_stats"}

  def verdict(key: str) -> str | None:
    prefix, _, leaf = key.rpartition(".")
    if leaf == "num_batches_tracked":
      return "ignore"
    if model.norm == "instance" and prefix in norms and leaf in ("running_mean", "running_var"):
      return "ignore"  # PyTorch 0.3's never-read InstanceNorm buffers (PATN issue #12).
    return None
  return verdict


def abstract_variables(model: ResnetDiscriminator, in_channels: int) -> dict:
  return sd_lib.abstract_variables(model, jnp.zeros((1, 32, 32, in_channels)), train=False)


def from_torch(state_dict: Mapping[str, Any], model: ResnetDiscriminator,
               in_channels: int | None = None, *, source: str = "discriminator state_dict") -> dict:
  """Official ResnetDiscriminator state_dict -> {'params'[, 'batch_stats']} (numpy float32 leaves)."""
  if in_channels is None:
    in_channels = sd_lib.shape_of(sd_lib.strip_module_prefix(state_dict), "model.1.weight", source)[1]
  return sd_lib.state_dict_to_variables(state_dict, torch_table(model), abstract_variables(model, in_channels),
                                        source=source, known_unused=_torch_known_unused(model))


def to_torch(variables: Mapping[str, Any], model: ResnetDiscriminator
                             ) -> dict[str, np.ndarray]:
  """Flax discriminator variables -> official state_dict (without BatchNorm's num_batches_tracked)."""
  return sd_lib.variables_to_state_dict(variables, torch_table(model))


def hparams_from_torch(state_dict: Mapping[str, Any], source: str = "discriminator state_dict"
                                ) -> tuple[dict[str, Any], int]:
  """(ResnetDiscriminator kwargs, input channels) from an official state_dict's shapes."""
  sd = sd_lib.strip_module_prefix(state_dict)
  stem = sd_lib.shape_of(sd, "model.1.weight", source)
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


