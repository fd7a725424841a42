"""Shared building blocks with PyTorch semantics, NHWC, each defined once.

Every block here reproduces what the official PyTorch code computes (ADGAN's
MUNIT-derived generator, PATN's ResNet blocks and discriminator), not the Flax
library defaults, which differ in small ways that matter when official weights
are imported: padding modes, where an epsilon goes, biased vs unbiased
statistics, BatchNorm's momentum convention.

Conventions:
  * arrays are NHWC; conv kernels HWIO (PyTorch's OIHW transposed (2, 3, 1, 0));
    transposed-conv kernels are stored as PyTorch's (in, out, kh, kw) transposed
    (2, 3, 0, 1), see `ConvTranspose`;
  * `dtype` is the compute dtype of convolutions and dense layers; parameters
    stay float32 and every normalisation computes its statistics in float32 and
    returns the input's dtype;
  * default initialisers are PyTorch's (weights kaiming-uniform with a=sqrt(5),
    i.e. U(+-1/sqrt(fan_in)), biases U(+-1/sqrt(fan_in))), which is what the
    official discriminators use; the ADGAN generator passes `normal(0.02)`
    weights as the official `init_weights` does.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array
Initializer = Callable[..., Array]

PAD_MODES = ("reflect", "zero", "none")
NORMS = ("instance", "adain", "batch", "none")


def torch_default_kernel_init(key, shape, dtype=jnp.float32) -> Array:
  """PyTorch's default Conv2d/Linear weight init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

  (kaiming_uniform with a=sqrt(5); for HWIO or (in, out) kernels fan_in is the
  product of all but the last dimension.)
  """
  bound = 1.0 / math.sqrt(math.prod(shape[:-1]))
  return jax.random.uniform(key, shape, dtype, -bound, bound)


def _torch_default_bias_init(fan_in: int) -> Initializer:
  bound = 1.0 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def normal_init(stddev: float = 0.02) -> Initializer:
  """N(0, stddev): the official `init_weights(net, 'normal')` for conv and linear weights."""
  return nn.initializers.normal(stddev)


# pix2pix/CycleGAN's `init_weights(net, 'normal')`, which ADGAN's and PATN's
# generators go through: conv, transposed-conv and linear weights N(0, 0.02).
PIX2PIX_KERNEL_INIT = normal_init(0.02)


def pad2d(x: Array, padding: int, mode: str) -> Array:
  """Pads H and W of an NHWC array by `padding` on every side.

  mode: 'reflect' (PyTorch ReflectionPad2d: the edge row is not repeated),
  'zero', or 'none' (no padding at all).
  """
  if mode not in PAD_MODES:
    raise ValueError(f"pad mode must be one of {PAD_MODES}, got {mode!r}")
  if mode == "none" or padding == 0:
    return x
  if mode == "reflect" and (padding >= x.shape[1] or padding >= x.shape[2]):
    # PyTorch refuses this too; numpy-style reflection would silently wrap twice.
    raise ValueError(f"reflection padding {padding} needs H and W > {padding}, got {x.shape[1:3]}")
  pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return jnp.pad(x, pads, mode="reflect" if mode == "reflect" else "constant")


def _stride2_conv_as_matmuls(x: Array, kernel: Array) -> Array:
  """A VALID stride-2 conv with an even kernel (k, k) as (k/2)^2 matmuls after space-to-depth.

  Space-to-depth by 2 turns the stride-2 k x k conv into a stride-1 (k/2) x (k/2)
  conv on 4x the channels, computed as one matmul per tap. The same products
  and sums, in another order (float round-off only).
  """
  k = kernel.shape[0]
  half = k // 2
  b, h, w, c = x.shape
  out_h, out_w = (h - k) // 2 + 1, (w - k) // 2 + 1
  # Only the first 2 * out + k - 2 rows/columns (an even number) are ever read.
  x = x[:, :2 * out_h + k - 2, :2 * out_w + k - 2]
  hh, ww = out_h + half - 1, out_w + half - 1
  x = x.reshape(b, hh, 2, ww, 2, c).transpose(0, 1, 3, 2, 4, 5).reshape(b, hh, ww, 4 * c)
  kernel = kernel.reshape(half, 2, half, 2, c, -1).transpose(0, 2, 1, 3, 4, 5).reshape(half, half, 4 * c, -1)
  out = None
  for i in range(half):
    for j in range(half):
      term = jnp.dot(x[:, i:i + out_h, j:j + out_w], kernel[i, j])
      out = term if out is None else out + term
  return out


def _conv(x: Array, kernel: Array, stride: int, padding, dtype) -> Array:
  x, kernel = x.astype(dtype), kernel.astype(dtype)
  if (stride == 2 and padding == "VALID" and kernel.shape[0] % 2 == 0 and kernel.shape[0] == kernel.shape[1]
      and jax.default_backend() == "cpu"):
    # XLA:CPU runs stride-2 convs (and their gradients) 3-4x slower than the same
    # work as matmuls (measured on ADGAN's 4x4 s2 convs: 13-18 vs ~60 GFLOP/s);
    # this path makes the generator's CPU forward 1.6x faster. GPUs keep cuDNN.
    return _stride2_conv_as_matmuls(x, kernel)
  return lax.conv_general_dilated(x, kernel, window_strides=(stride, stride), padding=padding,
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


class ReflectConv(nn.Module):
  """Padding, then a conv with PyTorch semantics (cross-correlation, bias).

  The official `Conv2dBlock`'s `pad -> conv(padding=0)` and PyTorch's
  `Conv2d(padding=p)` (zero padding) in one block.

  Attributes:
    features: output channels.
    kernel_size: square kernel side.
    stride: square stride.
    padding: pixels added on every side before the conv.
    pad_mode: 'reflect', 'zero' or 'none' (padding ignored).
    use_bias: whether the conv has a bias.
    kernel_init: weight initialiser of the (kh, kw, in, out) kernel.
    dtype: compute dtype.
    bias_init: bias initialiser; None is PyTorch's default U(+-1/sqrt(fan_in))
      (Keras models pass zeros).

  Shapes: (B, H, W, C_in) -> (B, (H + 2p - k) // s + 1, (W + 2p - k) // s + 1, features).
  Parameters: `kernel` (k, k, C_in, features), `bias` (features,).

  The input may also be a tuple of arrays (B, H, W, C_i) standing for their
  concatenation along channels (C_in = sum C_i; the kernel's input rows in the
  same order). It is computed as the sum of each part's conv with its rows of
  the kernel: the same products, summed in another order, and a part that
  needs no gradient (ADGAN's frozen VGG features) then gets none computed,
  where the conv of the concatenation computes it and throws it away.
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: int = 0
  pad_mode: str = "reflect"
  use_bias: bool = True
  kernel_init: Initializer = torch_default_kernel_init
  dtype: Any = jnp.float32
  bias_init: Initializer | None = None

  @nn.compact
  def __call__(self, x: Array | tuple[Array, ...]) -> Array:
    parts = tuple(x) if isinstance(x, (tuple, list)) else (x,)
    if any(p.shape[:-1] != parts[0].shape[:-1] for p in parts):
      raise ValueError(f"ReflectConv: parts to concatenate differ in (B, H, W): {[p.shape for p in parts]}")
    in_features = sum(p.shape[-1] for p in parts)
    k = self.kernel_size
    kernel = self.param("kernel", self.kernel_init, (k, k, in_features, self.features), jnp.float32)
    y, first = None, 0
    for part in parts:
      rows = kernel[:, :, first:first + part.shape[-1]]
      first += part.shape[-1]
      if self.pad_mode == "zero":
        # Zero padding is done by the conv itself (no padded copy in memory).
        term = _conv(part, rows, self.stride, ((self.padding,) * 2,) * 2, self.dtype)
      else:
        term = _conv(pad2d(part, self.padding, self.pad_mode), rows, self.stride, "VALID", self.dtype)
      y = term if y is None else y + term
    if self.use_bias:
      bias = self.param("bias", self.bias_init or _torch_default_bias_init(k * k * in_features), (self.features,),
                        jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


class ConvTranspose(nn.Module):
  """PyTorch `ConvTranspose2d(in, out, k, stride, padding, output_padding)`.

  Output size (H - 1) * stride - 2 * padding + k + output_padding; PATN's
  upsampling uses k3 s2 p1 op1 (exactly doubles H and W). Computed as a conv of
  the stride-dilated input with the spatially flipped kernel and padding
  (k - 1 - p, k - 1 - p + op).

  Parameters: `kernel` (k, k, C_in, features) = PyTorch weight (C_in, out, kh, kw)
  transposed (2, 3, 0, 1), unflipped (the flip happens here, at call time);
  `bias` (features,).
  """
  features: int
  kernel_size: int = 3
  stride: int = 2
  padding: int = 1
  output_padding: int = 1
  use_bias: bool = True
  kernel_init: Initializer | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    k = self.kernel_size
    # PyTorch takes fan_in from weight.size(1) = out channels for transposed convs.
    fan_in = k * k * self.features
    init = self.kernel_init or (lambda key, shape, dtype=jnp.float32: jax.random.uniform(
        key, shape, dtype, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in)))
    kernel = self.param("kernel", init, (k, k, x.shape[-1], self.features), jnp.float32)
    lo = k - 1 - self.padding
    hi = k - 1 - self.padding + self.output_padding
    y = lax.conv_general_dilated(
        x.astype(self.dtype), kernel[::-1, ::-1].astype(self.dtype), window_strides=(1, 1),
        padding=((lo, hi), (lo, hi)), lhs_dilation=(self.stride, self.stride),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.use_bias:
      bias = self.param("bias", _torch_default_bias_init(fan_in), (self.features,), jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


class Dense(nn.Module):
  """PyTorch `Linear`: kernel (in, out) = weight.T, bias; (..., in) -> (..., features).

  bias_init None is PyTorch's default U(+-1/sqrt(in)).
  """
  features: int
  use_bias: bool = True
  kernel_init: Initializer = torch_default_kernel_init
  bias_init: Initializer | None = None
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features), jnp.float32)
    y = jnp.dot(x.astype(self.dtype), kernel.astype(self.dtype))
    if self.use_bias:
      bias = self.param("bias", self.bias_init or _torch_default_bias_init(x.shape[-1]), (self.features,),
                        jnp.float32)
      y = y + bias.astype(self.dtype)
    return y


def upsample_nearest2x(x: Array) -> Array:
  """`nn.Upsample(scale_factor=2)` (nearest): (B, H, W, C) -> (B, 2H, 2W, C)."""
  b, h, w, c = x.shape
  x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
  return x.reshape(b, 2 * h, 2 * w, c)


def _instance_statistics(x: Array) -> tuple[Array, Array]:
  """Mean and biased variance over H, W per sample and channel, in float32."""
  xf = x.astype(jnp.float32)
  mean = jnp.mean(xf, axis=(1, 2), keepdims=True)
  var = jnp.mean(jnp.square(xf - mean), axis=(1, 2), keepdims=True)
  return mean, var


def instance_norm(x: Array, eps: float = 1e-5) -> Array:
  """`InstanceNorm2d(affine=False)`: (x - mu) / sqrt(var_biased + eps) over H, W."""
  mean, var = _instance_statistics(x)
  return ((x.astype(jnp.float32) - mean) * lax.rsqrt(var + eps)).astype(x.dtype)


def adaptive_instance_norm(x: Array, gamma: Array, beta: Array, eps: float = 1e-5) -> Array:
  """AdaIN: instance_norm(x) * gamma + beta with per-sample gamma, beta of shape (B, C).

  The official `AdaptiveInstanceNorm2d` is batch_norm(training=True) on x viewed
  as (1, B*C, H, W): always instance statistics, biased variance, eps 1e-5 on
  the variance, gamma used raw (no +1).
  """
  mean, var = _instance_statistics(x)
  normed = (x.astype(jnp.float32) - mean) * lax.rsqrt(var + eps)
  gamma = gamma.astype(jnp.float32)[:, None, None, :]
  beta = beta.astype(jnp.float32)[:, None, None, :]
  return (normed * gamma + beta).astype(x.dtype)


def split_adain_params(mlp_output: Array, channels: Sequence[int]) -> list[tuple[Array, Array]]:
  """Splits the style MLP output into (gamma, beta) per AdaIN layer, in layer order.

  MUNIT's `assign_adain_params` layout: layer k with C channels consumes the
  next 2C columns, **beta first** (`bias`, the "mean"), then gamma (`weight`,
  the "std"). For ADGAN's 16 layers of 256: beta = out[:, 512k:512k+256],
  gamma = out[:, 512k+256:512k+512].
  """
  needed = 2 * sum(channels)
  if mlp_output.shape[-1] != needed:
    raise ValueError(f"AdaIN layers {tuple(channels)} need {needed} parameters, got {mlp_output.shape[-1]}")
  out, offset = [], 0
  for c in channels:
    beta = mlp_output[:, offset:offset + c]
    gamma = mlp_output[:, offset + c:offset + 2 * c]
    out.append((gamma, beta))
    offset += 2 * c
  return out


class InstanceNorm(nn.Module):
  """`InstanceNorm2d(affine=False, track_running_stats=False)`, eps 1e-5; no variables."""
  eps: float = 1e-5

  def __call__(self, x: Array) -> Array:
    return instance_norm(x, self.eps)


class AdaIN(nn.Module):
  """Adaptive instance norm (no variables; gamma, beta (B, C) come from the style MLP)."""
  eps: float = 1e-5

  def __call__(self, x: Array, gamma: Array, beta: Array) -> Array:
    return adaptive_instance_norm(x, gamma, beta, self.eps)


class LayerNorm(nn.Module):
  """MUNIT's LayerNorm (ADGAN's decoder), NOT the textbook one.

  Per sample over all of C, H, W: (x - mean) / (std_unbiased + eps), the eps
  added to the standard deviation (torch.std, n - 1 denominator); then a
  per-channel affine x * gamma + beta.

  Parameters: `gamma` (C,) initialised U[0, 1) like the official `uniform_()`,
  `beta` (C,) zeros.
  """
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: Array) -> Array:
    c = x.shape[-1]
    gamma = self.param("gamma", nn.initializers.uniform(1.0), (c,), jnp.float32)
    beta = self.param("beta", nn.initializers.zeros, (c,), jnp.float32)
    xf = x.astype(jnp.float32)
    n = math.prod(x.shape[1:])
    mean = jnp.mean(xf, axis=(1, 2, 3), keepdims=True)
    std = jnp.sqrt(jnp.sum(jnp.square(xf - mean), axis=(1, 2, 3), keepdims=True) / (n - 1))
    return ((xf - mean) / (std + self.eps) * gamma + beta).astype(x.dtype)


class BatchNorm(nn.Module):
  """PyTorch `BatchNorm2d` (affine), as PATN's Market models use it.

  train=True normalises with the batch mean and biased variance over B, H, W and
  updates the running statistics the PyTorch way: new = (1 - momentum) * old +
  momentum * batch, with the UNBIASED batch variance (Flax's BatchNorm stores
  the biased one). `momentum` is PyTorch's convention (0.1 = Flax's 0.9).
  train=False uses the running statistics. Updates need
  `mutable=['batch_stats']` in `apply`, as with Flax's own BatchNorm.

  Variables: params `scale` (C,) ones, `bias` (C,) zeros (PyTorch's `weight`,
  `bias`); batch_stats `mean` zeros, `var` ones (`running_mean`, `running_var`).
  """
  momentum: float = 0.1
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x: Array, train: bool) -> Array:
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
    running_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
    xf = x.astype(jnp.float32)
    if train:
      mean = jnp.mean(xf, axis=(0, 1, 2))
      var = jnp.mean(jnp.square(xf - mean), axis=(0, 1, 2))
      if not self.is_initializing():
        n = x.shape[0] * x.shape[1] * x.shape[2]
        unbiased = var * (n / max(n - 1, 1))
        running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
        running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
    else:
      mean, var = running_mean.value, running_var.value
    return ((xf - mean) * lax.rsqrt(var + self.eps) * scale + bias).astype(x.dtype)


def normalize(x: Array, norm: str, train: bool = False, name: str | None = None,
              adain_params: tuple[Array, Array] | None = None) -> Array:
  """The one norm switch: 'instance' | 'adain' | 'batch' | 'none'.

  Call inside a `@nn.compact` method: 'batch' creates the named PyTorch-style
  `BatchNorm` submodule there (train: batch statistics; else running ones);
  'adain' needs `adain_params` = (gamma, beta), each (B, C).
  """
  if norm == "instance":
    return instance_norm(x)
  if norm == "adain":
    if adain_params is None:
      raise ValueError("norm 'adain' needs adain_params")
    return adaptive_instance_norm(x, *adain_params)
  if norm == "batch":
    return BatchNorm(name=name)(x, train)
  if norm == "none":
    return x
  raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class ResBlock(nn.Module):
  """Residual block: pad-conv3x3-norm-ReLU-[dropout]-pad-conv3x3-norm, + x.

  No activation after the addition. Covers MUNIT's/ADGAN's `ResBlock` (norm
  'instance' or 'adain', no dropout) and PATN's `ResnetBlock` (norm 'instance'
  or 'batch', Dropout(0.5) between the convs).

  Attributes:
    norm: 'instance' | 'adain' | 'batch' | 'none'.
    dropout_rate: dropout between the two convs (active only with train=True,
      rng collection 'dropout').
    use_bias: conv bias; None = PyTorch pix2pix rule (no bias before BatchNorm).
    pad_mode: padding of both convs ('reflect' everywhere in ADGAN and PATN).
    kernel_init: weight initialiser.
    dtype: compute dtype.

  Call: `(x, train=False, adain_params=None)`; with norm 'adain',
  adain_params = [(gamma_0, beta_0), (gamma_1, beta_1)], each (B, C), for the
  first and second norm. Shapes: (B, H, W, C) -> (B, H, W, C).
  Parameters: `conv_0`, `conv_1` (ReflectConv), and `norm_0`, `norm_1` for batch norm.
  """
  norm: str = "instance"
  dropout_rate: float = 0.0
  use_bias: bool | None = None
  pad_mode: str = "reflect"
  kernel_init: Initializer = torch_default_kernel_init
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False,
               adain_params: Sequence[tuple[Array, Array]] | None = None) -> Array:
    if self.norm not in NORMS:
      raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
    if (self.norm == "adain") != (adain_params is not None):
      raise ValueError("adain_params are required with norm='adain' and only then")
    use_bias = self.norm != "batch" if self.use_bias is None else self.use_bias
    channels = x.shape[-1]
    y = x
    for i in range(2):
      y = ReflectConv(channels, 3, 1, 1, self.pad_mode, use_bias, self.kernel_init, self.dtype,
                      name=f"conv_{i}")(y)
      y = normalize(y, self.norm, train, f"norm_{i}", adain_params[i] if adain_params else None)
      if i == 0:
        y = nn.relu(y)
        if self.dropout_rate > 0:
          y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    return x + y
