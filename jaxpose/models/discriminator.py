"""PATN's `ResnetDiscriminator`, which ADGAN uses unchanged as D_PB and D_PP.

shared/reference/adgan.md section 2, peers.md 1.2. ADGAN builds two:
D_PB (shape consistency) on concat(image, target pose) = 3 + 18 = 21 channels
and D_PP (appearance consistency) on concat(image, source image) = 6 channels.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

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

    def norm(y, name):
      if self.norm == "instance":
        return layers.instance_norm(y)
      return layers.BatchNorm(name=name)(y, train)

    x = layers.ReflectConv(self.width, 7, 1, 3, "reflect", use_bias, dtype=self.dtype, name="stem")(x)
    x = nn.relu(norm(x, "stem_norm"))
    for i in range(self.n_downsampling):
      x = layers.ReflectConv(self.width * 2 ** (i + 1), 3, 2, 1, "zero", use_bias, dtype=self.dtype,
                             name=f"downsample_{i}")(x)
      x = nn.relu(norm(x, f"downsample_norm_{i}"))
    for j in range(self.n_blocks):
      x = layers.ResBlock(self.norm, self.dropout_rate, use_bias, dtype=self.dtype, name=f"block_{j}")(
          x, train=train)
    x = x.astype(jnp.float32)
    return jax.nn.sigmoid(x) if self.use_sigmoid else x
