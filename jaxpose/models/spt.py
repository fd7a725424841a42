"""SPT's networks: the appearance generator H_A, the semantic generator H_S and the discriminators.

SPT (Song et al., CVPR 2019, "Unsupervised Person Image Generation with
Semantic Parsing Transformation") generates a person in a target pose in two
steps: H_S turns the source's semantic parsing into the target pose's parsing,
H_A paints the source's appearance into that parsing. The authors released
H_A alone, as a DeepFashion 256x256 test demo (SijieSong/person_generation_spt,
`models/GlobalLocalPRDemo_models.py`, `util/pose_transform.py`,
`models/networks.py`; shared/reference/peers.md section 4). Everything here
that the release holds is reproduced from it; H_S is our design (below).

H_A, `AppearanceGenerator` (the release's `Local_Generator`):
  * the GLOBAL generator (`GlobalGenerator`, the release's `Global_Generator`)
    is Deformable GAN's U-Net in PyTorch: an appearance encoder on
    concat(image, source parsing labels 1-9, source pose) (3 + 9 + 18 = 30
    channels), a target encoder on concat(target pose, target parsing) (18 + 9
    = 27: pose first), widths (64, 128, 256, 512, 512, 512); the skips of the
    four finest levels are the appearance features warped part by part
    (`spt_deformable_skip`) and concatenated with the target features; the
    decoder (512, 512, 512, 256, 128, 3) ends with concat(features, finest
    skip) -> [nearest x2 upsampling] -> ReLU -> Conv3x3 -> tanh. In the
    progressive model it runs at half resolution (128x128) and the upsampling
    makes its output full size (256x256); it also returns its last decoder
    features (`feat`, 128 channels at 128x128) and its skips. The first conv
    of both encoders fades in: (1 - alpha) conv(x_128) + alpha local_feat_128;
  * the LOCAL enhancer (full resolution): two local encoders (Conv3x3 -> 32,
    Block -> 64, both normalised), skips warped with the full-resolution
    transforms; the half-resolution skip is replaced by concat(global feat,
    global skip 0) (128 + 128 = 256 channels); local decoder Block(up) -> 64,
    concat with the full-resolution skip (64), ReLU -> Conv3x3 -> 3 -> tanh;
  * output alpha * local + (1 - alpha) * global: progressive 128 -> 256
    training with alpha growing from 0 (the release's test sets alpha = 1).
  `progressive=False` (our Market and synthetic settings, for which nothing is
  released) is the global generator alone at full resolution without the
  final upsampling: exactly Deformable GAN's generator with SPT's inputs.
  61,467,078 parameters at the released settings (global 61,119,453 = 11,158,472
  appearance encoder + 11,156,744 target encoder + 38,804,237 decoder; local
  encoders 41,442 + 40,578; local decoder 265,605).

Released semantics reproduced (they differ from Deformable GAN's Keras code):
  * `Block`: [LeakyReLU(0.2) | ReLU] -> Conv2d(4, s2, p1, no bias) or
    ConvTranspose2d(4, s2, no bias) + Cropping2D(1) -> InstanceNorm3d(1,
    eps=1e-3, affine=True) on the unsqueezed map -> [Dropout2d(0.5)]. The norm
    (`WholeMapNorm`) is Deformable GAN's whole-map norm (per sample over H, W
    and C, a scalar weight and bias), but in PyTorch's form: (x - mean) /
    sqrt(var + 1e-3), not Keras' (x - mean) / (std + 1e-3). The decoder's
    three deepest blocks drop whole channels (Dropout2d) while training; the
    demo runs in train mode with `--no_dropout` irrelevant to these layers, and
    jaxpose generates with dropout off (train=False) like Deformable GAN's test;
  * the warp (`spt_warp`, the release's `AffineLayer`): PyTorch's
    `affine_grid` + bilinear `grid_sample` (zeros padding, align_corners=True,
    the PyTorch 0.4-1.2 behaviour the release ran on) of the pixel-space
    transforms normalised by the release's `normalize_transforms`, after
    dividing the translations by the level's downsampling factor
    (`affine_mul`); the masks are resized with OpenCV's bilinear `cv2.resize`
    (`resize_masks_linear`); max over the ten parts. NOT Deformable GAN's
    nearest TF warp (`jaxpose.models.deformable`). For H == W the
    normalisation is the release's to the bit; the release swaps the W/H
    ratios for non-square maps (its models only ran square), where we use the
    consistent ones;
  * Conv weights N(0, 0.02), biases zero (the release's `init_weights`).

H_S, `SemanticGenerator` (NOT released; the paper gives its shape only, peers.md
4.5): OUR DESIGN, Deformable GAN's encoder/decoder at the same scale as H_A's
global generator, in the same released `Block`s and warp: an appearance
encoder on concat(source parsing one-hot of all 10 classes, source pose,
source pose mask) (29 channels), a target encoder on concat(target pose,
target pose mask) (19), deformable skips at the four finest levels, and a
decoder whose last conv outputs 10 logits (no tanh); the per-pixel softmax is
the predicted target parsing. It runs at H_A's global resolution (half size
in the progressive model).

Discriminators (`PatchDiscriminator`, the release's `NLayerDiscriminator`,
n_layers 3): Conv4 s2 -> 64, LReLU(0.2); Conv4 s2 128, IN, LReLU; Conv4 s2
256, IN, LReLU; Conv4 s1 512, IN, LReLU; Conv4 s1 -> 1 (all with bias;
InstanceNorm2d without affine; LSGAN, no sigmoid). D on concat(image, parsing
labels 1-9): 12 channels, 2,773,953 parameters. The face discriminator is
the same on 3-channel face crops plus the `NLayerDiscriminator_fadein` layer
(a second first conv on the full-resolution crop, average-pooled and mixed
in by alpha): 2,767,873 parameters. H_S's parsing discriminator D_S (our
design) is the same PatchGAN on concat(parsing probabilities, target pose).

Official files: `torch_table`, `from_torch`, `to_torch`, `hparams_from_torch`
for H_A (`<epoch>_net_G.pth`), `discriminator_torch_table` & co. for D and
D_face (`_net_D.pth`, `_net_D_face.pth`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.io import state_dict as sd_lib
from jaxpose.models import layers

Array = jax.Array

NUM_PARTS = 10
NUM_CLASSES = 10
"""SPT's parsing classes (jaxpose.data.parsing.SPT10_LABELS)."""
PARSING_CHANNELS = 9
"""H_A and D see the one-hot of labels 1-9 (background dropped)."""
POSE_CHANNELS = 18
WARPED_LEVELS = 4
DROPOUT_STEPS = 3
RELEASED_ENCODER_WIDTHS = (64, 128, 256, 512, 512, 512)
RELEASED_DECODER_WIDTHS = (512, 512, 512, 256, 128, 3)
RELEASED_IMAGE_SIZE = (256, 256)
H_A_PARAMETERS = 61_467_078
D_PARAMETERS = 2_773_953
D_FACE_PARAMETERS = 2_767_873

_KERNEL_INIT = layers.normal_init(0.02)
_BIAS_INIT = nn.initializers.zeros


# ----------------------------------------------------------------------------
# The release's warp (`util/pose_transform.py: AffineLayer, AffineTransformLayer`)


def resize_masks_linear(masks: Array, size: tuple[int, int]) -> Array:
  """OpenCV `cv2.resize(mask, (w, h))` with its default INTER_LINEAR, on float masks.

  Output pixel i reads the input at (i + 0.5) * H / h - 0.5 (clamped at 0),
  linearly between its two neighbours (the last one repeated at the border);
  rows and columns separately. For a downsampling by an integer k that is the
  mean of the two middle rows of each k-block (k even) or its middle row (k odd).

  Args:
    masks: (B, P, H, W) float.
    size: (h, w).

  Returns:
    (B, P, h, w) float32; the input itself when the size is unchanged.
  """
  h, w = size
  masks = masks.astype(jnp.float32)
  if masks.shape[2:] == (h, w):
    return masks

  def axis_weights(n_in: int, n_out: int):
    src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    src = np.maximum(src, 0.0)
    lo = np.floor(src).astype(np.int64)
    frac = (src - lo).astype(np.float32)
    lo = np.minimum(lo, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, frac

  r_lo, r_hi, r_f = axis_weights(masks.shape[2], h)
  c_lo, c_hi, c_f = axis_weights(masks.shape[3], w)
  rows = masks[:, :, r_lo] * (1 - r_f)[:, None] + masks[:, :, r_hi] * r_f[:, None]
  return rows[..., c_lo] * (1 - c_f) + rows[..., c_hi] * c_f


def normalized_theta(transforms: Array, height: int, width: int) -> Array:
  """The release's `normalize_transforms`: pixel affine maps -> `affine_grid` thetas.

  transforms (..., 8) [a0, a1, a2, b0, b1, b2, ...] map output pixel (x, y) to
  input pixel (a0 x + a1 y + a2, b0 x + b1 y + b2), with the translations
  already divided by the level's factor. Returns (..., 2, 3):
  [[a0, a1 h/w, 2 a2 / w + a0 + a1 h/w - 1], [b0 w/h, b1, 2 b2 / h + b0 w/h + b1 - 1]]
  (the release's expressions, which for h == w they are; for h != w the release
  has the two ratios swapped).
  """
  t = transforms.astype(jnp.float32)
  a0, a1, a2, b0, b1, b2 = (t[..., i] for i in range(6))
  a1 = a1 * (height / width)
  b0 = b0 * (width / height)
  row0 = jnp.stack([a0, a1, a2 * (2.0 / width) + a0 + a1 - 1.0], axis=-1)
  row1 = jnp.stack([b0, b1, b2 * (2.0 / height) + b0 + b1 - 1.0], axis=-1)
  return jnp.stack([row0, row1], axis=-2)


def spt_warp(features: Array, transforms: Array, factor: int = 1) -> Array:
  """The release's `AffineLayer` at a level downsampled by `factor`: P bilinear warps of one map.

  `affine_grid(theta, align_corners=True)` + `grid_sample(bilinear, zeros)`:
  output pixel (j, i) (column, row) samples the input at
  ix = (gx + 1) (w - 1) / 2, iy = (gy + 1) (h - 1) / 2 with (gx, gy) =
  theta @ (-1 + 2j / (w - 1), -1 + 2i / (h - 1), 1); each of the four
  neighbours outside the map contributes zero.

  Args:
    features: (B, h, w, C).
    transforms: (B, P, 8) full-resolution transforms (target -> source pixels).
    factor: the level's downsampling factor; a2 and b2 are divided by it.

  Returns:
    (B, P, h, w, C) in the features' dtype.
  """
  batch, h, w, channels = features.shape
  if transforms.ndim != 3 or transforms.shape[0] != batch or transforms.shape[2] != 8:
    raise ValueError(f"transforms must be (B={batch}, P, 8), got {transforms.shape}")
  t = transforms.astype(jnp.float32)
  t = t.at[..., 2].divide(float(factor)).at[..., 5].divide(float(factor))
  theta = normalized_theta(t, h, w)  # (B, P, 2, 3)
  base_x = jnp.linspace(-1.0, 1.0, w, dtype=jnp.float32) if w > 1 else jnp.full((1,), -1.0, jnp.float32)
  base_y = jnp.linspace(-1.0, 1.0, h, dtype=jnp.float32) if h > 1 else jnp.full((1,), -1.0, jnp.float32)
  gx = (theta[..., 0, 0, None, None] * base_x[None, :] + theta[..., 0, 1, None, None] * base_y[:, None]
        + theta[..., 0, 2, None, None])  # (B, P, h, w)
  gy = (theta[..., 1, 0, None, None] * base_x[None, :] + theta[..., 1, 1, None, None] * base_y[:, None]
        + theta[..., 1, 2, None, None])
  ix = (gx + 1.0) * ((w - 1) / 2.0)
  iy = (gy + 1.0) * ((h - 1) / 2.0)
  x0 = jnp.floor(ix)
  y0 = jnp.floor(iy)
  fx = ix - x0
  fy = iy - y0
  # The four neighbours in one gather (one scatter in the backward pass): (B, P, h, w, 4).
  xx = x0[..., None] + jnp.array([0.0, 1.0, 0.0, 1.0])
  yy = y0[..., None] + jnp.array([0.0, 0.0, 1.0, 1.0])
  weights = (jnp.stack([1.0 - fx, fx, 1.0 - fx, fx], -1) * jnp.stack([1.0 - fy, 1.0 - fy, fy, fy], -1))
  inside = (xx >= 0) & (xx <= w - 1) & (yy >= 0) & (yy <= h - 1)
  weights = jnp.where(inside, weights, 0.0)
  index = jnp.clip(yy, 0, h - 1).astype(jnp.int32) * w + jnp.clip(xx, 0, w - 1).astype(jnp.int32)
  flat = features.reshape(batch, h * w, channels)
  values = jax.vmap(lambda f, i: f[i])(flat, index).astype(jnp.float32)  # (B, P, h, w, 4, C)
  out = jnp.einsum("bphwk,bphwkc->bphwc", weights, values)
  return out.astype(features.dtype)


def level_factor(image_size: tuple[int, int], level_size: tuple[int, int]) -> int:
  """The release's integer `affine_mul` ratio H0 / h (= W0 / w) of a feature level."""
  (height, width), (h, w) = image_size, level_size
  if h <= 0 or w <= 0 or height % h or width % w or height // h != width // w:
    raise ValueError(f"a {h}x{w} feature map is not an integer, equal-factor downsampling of the "
                     f"{height}x{width} warp frame")
  return height // h


def spt_deformable_skip(features: Array, transforms: Array, masks: Array) -> Array:
  """The release's `AffineTransformLayer(10, image_size, 'mask')` at any level.

  Args:
    features: (B, h, w, C) appearance features of a level of the (H, W) frame
      the transforms and masks were computed in.
    transforms: (B, P, 8) transforms at (H, W) (target -> source pixels).
    masks: (B, P, H, W) part masks of the target pose at (H, W).

  Returns:
    (B, h, w, C): max over p of spt_warp_p(features) * cv2-resized mask_p.
  """
  if masks.ndim != 4 or masks.shape[:2] != transforms.shape[:2]:
    raise ValueError(f"masks must be (B, P, H, W) with (B, P) = {transforms.shape[:2]}, got {masks.shape}")
  size = features.shape[1:3]
  factor = level_factor(masks.shape[2:], size)
  warped = spt_warp(features, transforms, factor)
  level_masks = resize_masks_linear(masks, size).astype(features.dtype)
  return jnp.max(warped * level_masks[..., None], axis=1)


def face_crop(images: Array, face_transforms: Array) -> Array:
  """The release's face layer, `AffineTransformLayer(1, image_size, None)`: the head box stretched to the image.

  images (B, H, W, C), face_transforms (B, 1, 8) from
  `jaxpose.data.part_transforms.face_transform` -> (B, H, W, C).
  """
  return spt_warp(images, face_transforms, 1)[:, 0]


def avg_pool2(x: Array) -> Array:
  """PyTorch `AvgPool2d(2, stride=2)`: (B, H, W, C) -> (B, H // 2, W // 2, C)."""
  b, h, w, c = x.shape
  x = x[:, :h - h % 2, :w - w % 2]
  return x.reshape(b, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


# ----------------------------------------------------------------------------
# Layers


def whole_map_norm(x: Array, scale: Array, bias: Array, eps: float = 1e-3) -> Array:
  """`InstanceNorm3d(1, eps, affine=True)` on the unsqueezed (B, 1, C, H, W) map.

  (x - mean) / sqrt(var + eps) * scale + bias, mean and (biased) variance per
  sample over all of H, W and C, in float32; (B, H, W, C) -> same shape and dtype.
  """
  xf = x.astype(jnp.float32)
  axes = tuple(range(1, x.ndim))
  mean = jnp.mean(xf, axis=axes, keepdims=True)
  var = jnp.mean(jnp.square(xf - mean), axis=axes, keepdims=True)
  out = (xf - mean) * jax.lax.rsqrt(var + eps) * scale.astype(jnp.float32) + bias.astype(jnp.float32)
  return out.astype(x.dtype)


class WholeMapNorm(nn.Module):
  """The release's whole-map norm (see `whole_map_norm`). Parameters `scale`, `bias` (1,) (torch weight, bias)."""
  eps: float = 1e-3

  @nn.compact
  def __call__(self, x: Array) -> Array:
    scale = self.param("scale", nn.initializers.ones, (1,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (1,), jnp.float32)
    return whole_map_norm(x, scale, bias, self.eps)


def conv_transpose_4x4_s2(x: Array, kernel: Array, dtype) -> Array:
  """PyTorch `ConvTranspose2d(k4, s2, p1)` (the release's ConvTranspose + Cropping2D(1)) as four 2x2 convs.

  kernel (4, 4, C_in, C_out) = the torch weight (C_in, C_out, 4, 4) transposed
  (2, 3, 0, 1), as `layers.ConvTranspose`. Output row 2m reads input rows m-1
  and m through kernel rows 3 and 1, row 2m + 1 rows m and m + 1 through
  kernel rows 2 and 0 (columns alike): one stride-1 2x2 conv per output phase
  of the input padded by one, then interleaved. The same products as the
  dilated-input form, whose gradient XLA:CPU computes 30x slower (94 ms vs 3 ms
  for a 32x16x64 -> 32 map on this project's host). (B, H, W, C_in) -> (B, 2H, 2W, C_out).
  """
  b, h, w, _ = x.shape
  xp = jnp.pad(x.astype(dtype), ((0, 0), (1, 1), (1, 1), (0, 0)))
  kernel = kernel.astype(dtype)
  taps = ((3, 1), (2, 0))  # kernel indices of the two taps of each output phase
  phases = []
  for a in range(2):
    row = []
    for c in range(2):
      k = kernel[jnp.array(taps[a])][:, jnp.array(taps[c])]
      window = xp[:, a:a + h + 1, c:c + w + 1]
      row.append(jax.lax.conv_general_dilated(window, k, (1, 1), "VALID",
                                              dimension_numbers=("NHWC", "HWIO", "NHWC")))
    phases.append(jnp.stack(row, axis=3))  # (B, H, W, 2, C)
  out = jnp.stack(phases, axis=2)  # (B, H, 2, W, 2, C)
  return out.reshape(b, 2 * h, 2 * w, -1)


class ConvTranspose4x4(nn.Module):
  """`ConvTranspose2d(k4, s2, p1, no bias)` with `layers.ConvTranspose`'s parameter (`kernel` (4, 4, C_in, features)).

  On CPU through `conv_transpose_4x4_s2` (fast gradients), elsewhere through `layers.ConvTranspose`.
  """
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    kernel = self.param("kernel", _KERNEL_INIT, (4, 4, x.shape[-1], self.features), jnp.float32)
    if jax.default_backend() == "cpu":
      return conv_transpose_4x4_s2(x, kernel, self.dtype)
    y = jax.lax.conv_general_dilated(x.astype(self.dtype), kernel[::-1, ::-1].astype(self.dtype), (1, 1),
                                     ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y


class Block(nn.Module):
  """The release's `Block(input_nc, output_nc, down, bn, dropout, leaky)`.

  down: [LeakyReLU(0.2) | ReLU] -> Conv2d(4, s2, p1, no bias) [-> norm] [-> Dropout2d];
  up:   [LeakyReLU(0.2) | ReLU] -> ConvTranspose2d(4, s2, no bias) + Cropping2D(1) [-> norm] [-> Dropout2d].

  Call `(x, train=False)`: (B, H, W, C) -> (B, H/2, W/2, features) or (B, 2H, 2W, features).
  Parameters: `conv/kernel`, and `norm/scale`, `norm/bias` with norm.
  """
  features: int
  down: bool = True
  norm: bool = True
  dropout_rate: float = 0.0
  leaky: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    x = nn.leaky_relu(x, 0.2) if self.leaky else nn.relu(x)
    if self.down:
      x = layers.ReflectConv(self.features, 4, 2, 1, "zero", False, _KERNEL_INIT, self.dtype, name="conv")(x)
    else:
      x = ConvTranspose4x4(self.features, self.dtype, name="conv")(x)
    if self.norm:
      x = WholeMapNorm(name="norm")(x)
    if self.dropout_rate > 0:
      x = nn.Dropout(self.dropout_rate, broadcast_dims=(1, 2), deterministic=not train)(x)
    return x


def _conv3x3(features: int, dtype, name: str) -> layers.ReflectConv:
  """Conv2d(kernel 3, padding 1, bias) with the release's init."""
  return layers.ReflectConv(features, 3, 1, 1, "zero", True, _KERNEL_INIT, dtype, bias_init=_BIAS_INIT, name=name)


class Encoder(nn.Module):
  """The release's global `encoder(input_nc, nfilters_enc)` with its fade-in.

  Level 0: Conv3x3 (bias), faded: (1 - alpha) conv(x) + alpha fade_in; levels
  1 .. n-2: Block(down, norm); level n-1: Block(down, no norm).

  Call `(x, fade_in=None, alpha=0.0)`: x (B, H, W, C_in); fade_in (B, H, W,
  widths[0]) or None -> list of n levels, level i (B, H/2^i, W/2^i, widths[i]).
  Parameters: `conv_0`, `block_{i}`.
  """
  widths: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, fade_in: Array | None = None, alpha: Array | float = 0.0) -> list[Array]:
    n = len(self.widths)
    out = _conv3x3(self.widths[0], self.dtype, "conv_0")(x.astype(self.dtype))
    if fade_in is not None:
      alpha = jnp.asarray(alpha, jnp.float32).astype(out.dtype)
      out = (1 - alpha) * out + alpha * fade_in.astype(out.dtype)
    levels = [out]
    for i in range(1, n):
      out = Block(self.widths[i], True, i < n - 1, dtype=self.dtype, name=f"block_{i}")(out)
      levels.append(out)
    return levels


class LocalEncoder(nn.Module):
  """The release's `local_encoder`: Conv3x3 -> widths[0] (bias), then Block(down, norm) -> widths[1].

  (B, H, W, C_in) -> [(B, H, W, widths[0]), (B, H/2, W/2, widths[1])]. Parameters `conv_0`, `block_1`.
  """
  widths: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> list[Array]:
    first = _conv3x3(self.widths[0], self.dtype, "conv_0")(x.astype(self.dtype))
    return [first, Block(self.widths[1], True, True, dtype=self.dtype, name="block_1")(first)]


class Decoder(nn.Module):
  """The release's global `decoder`, deepest skip first.

  Step 0: Block(up, dropout) of the deepest skip; steps 1, 2: concat(out,
  skip) -> Block(up, dropout); steps 3 .. n-2: concat -> Block(up); last:
  feat = out, concat(out, skip_0) [-> nearest x2 upsampling] -> ReLU ->
  Conv3x3 -> [tanh]. Dropout (whole channels) only while training.

  Attributes:
    widths: output channels per step; the last is the output's.
    upsample_output: the release's final nearest x2 upsampling (progressive H_A).
    tanh: image output (H_A) or logits (H_S).
    dropout_rate: Dropout2d rate of the three deepest steps (0.5).
    dtype: compute dtype.

  Call `(skips, train=False)`, skips deepest first -> (output float32, feat).
  Parameters: `block_{i}` (i < n-1), `output_conv`.
  """
  widths: Sequence[int]
  upsample_output: bool = False
  tanh: bool = True
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, skips: Sequence[Array], train: bool = False) -> tuple[Array, Array]:
    n = len(self.widths)
    if len(skips) != n:
      raise ValueError(f"the decoder has {n} steps but got {len(skips)} skips")
    out = None
    for i, (skip, features) in enumerate(zip(skips, self.widths)):
      x = skip if out is None else jnp.concatenate([out, skip.astype(out.dtype)], axis=-1)
      if i == n - 1:
        feat = out
        if self.upsample_output:
          x = layers.upsample_nearest2x(x)
        x = _conv3x3(features, self.dtype, "output_conv")(nn.relu(x)).astype(jnp.float32)
        return (jnp.tanh(x) if self.tanh else x), feat
      rate = self.dropout_rate if i < DROPOUT_STEPS else 0.0
      out = Block(features, False, True, rate, leaky=False, dtype=self.dtype, name=f"block_{i}")(x, train)
    raise AssertionError("unreachable")


def _check_levels(array: Array, levels: int, what: str) -> None:
  factor = 2 ** (levels - 1)
  if array.ndim != 4 or array.shape[1] % factor or array.shape[2] % factor:
    raise ValueError(f"{what} must be (B, H, W, C) with H and W divisible by 2^(levels - 1) = {factor}, "
                     f"got {array.shape}")


def _encode_and_skip(app_encoder: Encoder, target_encoder: Encoder, app_input, target_input, transforms, masks,
                     warped_levels: int, fade_app=None, fade_target=None, alpha=0.0) -> list[Array]:
  """Both encoders and the release's `concatenate_skips` (warped appearance at the finest levels)."""
  app = app_encoder(app_input, fade_app, alpha)
  target = target_encoder(target_input, fade_target, alpha)
  skips = []
  for i, (a, t) in enumerate(zip(app, target)):
    if i < warped_levels:
      a = spt_deformable_skip(a, transforms, masks)
    skips.append(jnp.concatenate([a, t.astype(a.dtype)], axis=-1))
  return skips


class GlobalGenerator(nn.Module):
  """The release's `Global_Generator` (H_A's global generator, and H_A itself when not progressive).

  Attributes:
    encoder_widths: (64, 128, 256, 512, 512, 512) released.
    decoder_widths: (512, 512, 512, 256, 128, 3) released.
    upsample_output: the release's final x2 upsampling (output twice the input size).
    warped_levels: levels whose appearance skips are warped (4).
    dropout_rate: decoder Dropout2d while training.
    dtype: compute dtype.

  Call `(appearance_input, target_input, transforms, masks, fade_app=None,
  fade_target=None, alpha=0.0, train=False)`: appearance_input (B, h, w, 30)
  = concat(image, parsing labels 1-9, pose); target_input (B, h, w, 27) =
  concat(pose, parsing labels 1-9); transforms (B, 10, 8) and masks (B, 10, h,
  w) at (h, w). Returns (image (B, H, W, 3) float32 with H = 2h if
  upsample_output else h, feat (B, h, w, decoder_widths[-2]), skips finest first).
  Parameters: `appearance_encoder`, `pose_encoder`, `decoder`.
  """
  encoder_widths: Sequence[int] = RELEASED_ENCODER_WIDTHS
  decoder_widths: Sequence[int] = RELEASED_DECODER_WIDTHS
  upsample_output: bool = True
  warped_levels: int = WARPED_LEVELS
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, appearance_input, target_input, transforms, masks, fade_app=None, fade_target=None,
               alpha=0.0, train: bool = False):
    if len(self.encoder_widths) != len(self.decoder_widths):
      raise ValueError(f"encoder_widths {tuple(self.encoder_widths)} and decoder_widths "
                       f"{tuple(self.decoder_widths)} need the same number of levels")
    _check_levels(appearance_input, len(self.encoder_widths), "the global generator's input")
    skips = _encode_and_skip(Encoder(self.encoder_widths, self.dtype, name="appearance_encoder"),
                             Encoder(self.encoder_widths, self.dtype, name="pose_encoder"),
                             appearance_input, target_input, transforms, masks, self.warped_levels,
                             fade_app, fade_target, alpha)
    image, feat = Decoder(self.decoder_widths, self.upsample_output, True, self.dropout_rate, self.dtype,
                          name="decoder")(skips[::-1], train)
    return image, feat, skips


class LocalDecoder(nn.Module):
  """The release's `local_decoder`: Block(up, norm) -> widths[0], concat(full-resolution skip), ReLU, Conv3x3, tanh.

  Call `(skip_half (B, h, w, C), skip_full (B, 2h, 2w, C'))` -> (B, 2h, 2w, widths[1]) float32.
  Parameters `block_0`, `output_conv`.
  """
  widths: Sequence[int]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, skip_half: Array, skip_full: Array) -> Array:
    out = Block(self.widths[0], False, True, leaky=False, dtype=self.dtype, name="block_0")(skip_half)
    out = jnp.concatenate([out, skip_full.astype(out.dtype)], axis=-1)
    return jnp.tanh(_conv3x3(self.widths[1], self.dtype, "output_conv")(nn.relu(out)).astype(jnp.float32))


class AppearanceGenerator(nn.Module):
  """SPT's appearance generator H_A (the release's `Local_Generator`); see the module docstring.

  Attributes:
    encoder_widths, decoder_widths: the global generator's (released values default).
    progressive: global generator at half resolution + local enhancer at full
      resolution, faded by alpha (DeepFashion); False: the global generator
      alone at full resolution (Market, synthetic).
    warped_levels, dropout_rate, dtype: as `GlobalGenerator`.

  Call `(image, parsing, pose, target_parsing, target_pose, transforms, masks,
  half=None, alpha=1.0, train=False)`:
    image (B, H, W, 3) in [-1, 1]; parsing, target_parsing (B, H, W, 9)
    (labels 1-9, one-hot or probabilities); pose, target_pose (B, H, W, 18);
    transforms (B, 10, 8) target -> source at (H, W), masks (B, 10, H, W) of
    the target pose;
    half (progressive only): the same inputs at (H/2, W/2), a dict with keys
    image, parsing, pose, target_parsing, target_pose, transforms, masks (the
    release's `down_input` and `*_128` warps: keypoints halved, heatmaps and
    warps recomputed there, parsing subsampled, image bicubic or avg-pooled);
    alpha: fade-in (scalar; the release's test uses 1).
  Returns (B, H, W, 3) float32 in (-1, 1).

  Parameters: `global_generator/{appearance_encoder, pose_encoder, decoder}`
  and, progressive, `local_appearance_encoder`, `local_pose_encoder`,
  `local_decoder/{block_0, output_conv}`.
  """
  encoder_widths: Sequence[int] = RELEASED_ENCODER_WIDTHS
  decoder_widths: Sequence[int] = RELEASED_DECODER_WIDTHS
  progressive: bool = True
  warped_levels: int = WARPED_LEVELS
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, image, parsing, pose, target_parsing, target_pose, transforms, masks, half=None,
               alpha=1.0, train: bool = False):
    global_generator = GlobalGenerator(self.encoder_widths, self.decoder_widths, self.progressive,
                                       self.warped_levels, self.dropout_rate, self.dtype, name="global_generator")
    app_input = jnp.concatenate([image, parsing, pose], axis=-1)
    target_input = jnp.concatenate([target_pose, target_parsing], axis=-1)
    if not self.progressive:
      return global_generator(app_input, target_input, transforms, masks, train=train)[0]
    if half is None:
      raise ValueError("a progressive AppearanceGenerator needs the half-resolution inputs `half`")
    local_widths = (self.encoder_widths[0] // 2, self.encoder_widths[1] // 2)
    local_app = LocalEncoder(local_widths, self.dtype, name="local_appearance_encoder")(app_input)
    local_target = LocalEncoder(local_widths, self.dtype, name="local_pose_encoder")(target_input)
    skip_full = jnp.concatenate([spt_deformable_skip(local_app[0], transforms, masks),
                                 local_target[0].astype(local_app[0].dtype)], axis=-1)
    half_app = jnp.concatenate([half["image"], half["parsing"], half["pose"]], axis=-1)
    half_target = jnp.concatenate([half["target_pose"], half["target_parsing"]], axis=-1)
    global_image, feat, global_skips = global_generator(half_app, half_target, half["transforms"], half["masks"],
                                                        local_app[1], local_target[1], alpha, train)
    if global_image.shape[1:3] != image.shape[1:3]:
      raise ValueError(f"the half-resolution inputs are {half_app.shape[1:3]}, not half of {image.shape[1:3]}")
    # The release replaces the local half-resolution skip by the global features and finest skip.
    skip_half = jnp.concatenate([feat, global_skips[0].astype(feat.dtype)], axis=-1)
    local_image = LocalDecoder((self.decoder_widths[-2] // 2, self.decoder_widths[-1]), self.dtype,
                               name="local_decoder")(skip_half, skip_full)
    alpha = jnp.asarray(alpha, jnp.float32)
    return alpha * local_image + (1 - alpha) * global_image


class SemanticGenerator(nn.Module):
  """H_S, our design (module docstring): source parsing -> target parsing logits.

  Call `(parsing, pose, pose_mask, target_pose, target_pose_mask, transforms,
  masks, train=False)`: parsing (B, h, w, 10) one-hot (all classes); pose,
  target_pose (B, h, w, 18); the pose masks (B, h, w, 1); transforms (B, 10, 8)
  and masks (B, 10, h, w) at (h, w). Returns logits (B, h, w, num_classes) float32.
  Parameters: `appearance_encoder`, `pose_encoder`, `decoder`.
  """
  encoder_widths: Sequence[int] = RELEASED_ENCODER_WIDTHS
  decoder_widths: Sequence[int] = (512, 512, 512, 256, 128, NUM_CLASSES)
  warped_levels: int = WARPED_LEVELS
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, parsing, pose, pose_mask, target_pose, target_pose_mask, transforms, masks,
               train: bool = False) -> Array:
    if len(self.encoder_widths) != len(self.decoder_widths):
      raise ValueError("H_S's encoder and decoder need the same number of levels")
    _check_levels(parsing, len(self.encoder_widths), "H_S's input")
    app_input = jnp.concatenate([parsing, pose, pose_mask], axis=-1)
    target_input = jnp.concatenate([target_pose, target_pose_mask], axis=-1)
    skips = _encode_and_skip(Encoder(self.encoder_widths, self.dtype, name="appearance_encoder"),
                             Encoder(self.encoder_widths, self.dtype, name="pose_encoder"),
                             app_input, target_input, transforms, masks, self.warped_levels)
    logits, _ = Decoder(self.decoder_widths, False, False, self.dropout_rate, self.dtype, name="decoder")(
        skips[::-1], train)
    return logits


class PatchDiscriminator(nn.Module):
  """The release's `NLayerDiscriminator` (and, with `fade_in`, `NLayerDiscriminator_fadein`).

  Conv4 s2 -> width, LReLU(0.2); n_layers - 1 times Conv4 s2 (width x min(2^n,
  8)), InstanceNorm, LReLU; Conv4 s1 (x min(2^n_layers, 8)), IN, LReLU; Conv4
  s1 -> 1. Zero padding 1, every conv with bias, instance norm without affine
  (eps 1e-5), no sigmoid (LSGAN). With `fade_in` the first layer is
  (1 - alpha) LReLU(conv_0(avgpool2(x))) + alpha avgpool2(LReLU(fade_in_conv(x))):
  the first conv then sees half-resolution input.

  Call `(x, alpha=0.0)`: (B, H, W, C) -> (B, h, w, 1) float32 patch scores.
  Parameters: `conv_{i}` (i = 0 .. n_layers), `output`, and `fade_in_conv`.
  """
  width: int = 64
  n_layers: int = 3
  fade_in: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, alpha: Array | float = 0.0) -> Array:
    x = x.astype(self.dtype)
    conv = lambda features, stride, name: layers.ReflectConv(features, 4, stride, 1, "zero", True, _KERNEL_INIT,
                                                             self.dtype, bias_init=_BIAS_INIT, name=name)
    size = min(x.shape[1:3]) // (2 if self.fade_in else 1)
    for _ in range(self.n_layers):
      size //= 2
    if size - 2 < 1:
      raise ValueError(f"a {x.shape[1]}x{x.shape[2]} input is too small for a {self.n_layers}-layer PatchGAN"
                       f"{' with fade-in' if self.fade_in else ''}")
    if self.fade_in:
      low = nn.leaky_relu(conv(self.width, 2, "conv_0")(avg_pool2(x)), 0.2)
      high = avg_pool2(nn.leaky_relu(conv(self.width, 2, "fade_in_conv")(x), 0.2))
      alpha = jnp.asarray(alpha, jnp.float32).astype(low.dtype)
      h = (1 - alpha) * low + alpha * high
    else:
      h = nn.leaky_relu(conv(self.width, 2, "conv_0")(x), 0.2)
    for n in range(1, self.n_layers + 1):
      stride = 2 if n < self.n_layers else 1
      h = conv(self.width * min(2 ** n, 8), stride, f"conv_{n}")(h)
      h = nn.leaky_relu(layers.instance_norm(h), 0.2)
    return conv(1, 1, "output")(h).astype(jnp.float32)


# ----------------------------------------------------------------------------
# Official files


def _block_entries(prefix: str, path: tuple[str, ...], down: bool, norm: bool) -> list[sd_lib.Entry]:
  """A released `Block` (`net` ModuleList): conv at 1, norm at 2 (down) or 3 (up, after Cropping2D)."""
  kind = "conv" if down else "conv_transpose"
  entries = [sd_lib.Entry(f"{prefix}.net.1.weight", "params", path + ("conv", "kernel"), kind)]
  if norm:
    index = 2 if down else 3
    entries += [sd_lib.Entry(f"{prefix}.net.{index}.weight", "params", path + ("norm", "scale"), "vector"),
                sd_lib.Entry(f"{prefix}.net.{index}.bias", "params", path + ("norm", "bias"), "vector")]
  return entries


def _encoder_entries(prefix: str, path: tuple[str, ...], levels: int, last_norm: bool = False) -> list[sd_lib.Entry]:
  entries = sd_lib.conv(f"{prefix}.net.0", "params", path + ("conv_0",))
  for i in range(1, levels):
    entries += _block_entries(f"{prefix}.net.{i}", path + (f"block_{i}",), True, i < levels - 1 or last_norm)
  return entries


def _global_entries(prefix: str, levels: int) -> list[sd_lib.Entry]:
  path = ("global_generator",)
  entries = _encoder_entries(f"{prefix}encoder_app", path + ("appearance_encoder",), levels)
  entries += _encoder_entries(f"{prefix}encoder_pose", path + ("pose_encoder",), levels)
  for i in range(levels - 1):
    entries += _block_entries(f"{prefix}decoder.net.{i}", path + ("decoder", f"block_{i}"), False, True)
  # The decoder's ModuleList holds ReLU at index levels - 1 and the output conv at `levels`.
  entries += sd_lib.conv(f"{prefix}decoder.net.{levels}", "params", path + ("decoder", "output_conv"))
  return entries


def torch_table(model: AppearanceGenerator) -> list[sd_lib.Entry]:
  """The release's `Local_Generator` state_dict keys <-> `AppearanceGenerator` variables.

  Progressive: `model_global.{encoder_app, encoder_pose, decoder}.net.*` and
  `model_local_encoder_{app,pose}.net.*`, `model_local_decoder.net.{0,2}`; a
  global generator alone (progressive=False) uses the `Global_Generator`
  keys without the `model_global.` prefix (how the release saves its global
  pre-training, `load_pretrain_global`).
  """
  levels = len(model.encoder_widths)
  if not model.progressive:
    return _global_entries("", levels)
  entries = _global_entries("model_global.", levels)
  for name, path in (("model_local_encoder_app", "local_appearance_encoder"),
                     ("model_local_encoder_pose", "local_pose_encoder")):
    entries += _encoder_entries(name, (path,), 2, last_norm=True)
  entries += _block_entries("model_local_decoder.net.0", ("local_decoder", "block_0"), False, True)
  entries += sd_lib.conv("model_local_decoder.net.2", "params", ("local_decoder", "output_conv"))
  return entries


def abstract_variables(model: AppearanceGenerator, height: int = 256, width: int = 256) -> dict:
  """Shapes of H_A's variables at an (height, width) image (no allocation)."""
  levels = len(model.encoder_widths)
  factor = 2 ** (levels - 1) * (2 if model.progressive else 1)
  height, width = -(-height // factor) * factor, -(-width // factor) * factor
  inputs = example_inputs(height, width, progressive=model.progressive)
  return sd_lib.abstract_variables(model, **inputs)


def example_inputs(height: int, width: int, *, progressive: bool, batch: int = 1) -> dict:
  """Zero H_A inputs (ShapeDtypeStructs are not enough for Flax init): keyword arguments of `__call__`."""
  def side(h, w):
    return {"image": jnp.zeros((batch, h, w, 3)), "parsing": jnp.zeros((batch, h, w, PARSING_CHANNELS)),
            "pose": jnp.zeros((batch, h, w, POSE_CHANNELS)),
            "target_parsing": jnp.zeros((batch, h, w, PARSING_CHANNELS)),
            "target_pose": jnp.zeros((batch, h, w, POSE_CHANNELS)),
            "transforms": jnp.zeros((batch, NUM_PARTS, 8)), "masks": jnp.zeros((batch, NUM_PARTS, h, w))}
  out = side(height, width)
  if progressive:
    out["half"] = side(height // 2, width // 2)
  return out


def _unused_buffer(key: str) -> str | None:
  """InstanceNorm buffers some PyTorch versions save (never read by the whole-map or affine-free norms)."""
  return "ignore" if key.rsplit(".", 1)[-1] in ("running_mean", "running_var", "num_batches_tracked") else None


def from_torch(state_dict: Mapping[str, Any], model: AppearanceGenerator, *,
               source: str = "SPT netG state_dict") -> dict:
  """The release's netG state_dict -> {'params': ...} for `model` (numpy float32 leaves)."""
  return sd_lib.state_dict_to_variables(state_dict, torch_table(model), abstract_variables(model),
                                        source=source, known_unused=_unused_buffer)


def to_torch(variables: Mapping[str, Any], model: AppearanceGenerator) -> dict[str, np.ndarray]:
  """H_A variables -> the release's netG state_dict (PyTorch layouts, float32 numpy)."""
  return sd_lib.variables_to_state_dict({"params": variables["params"]}, torch_table(model))


def hparams_from_torch(state_dict: Mapping[str, Any], source: str = "SPT netG state_dict") -> dict[str, Any]:
  """`AppearanceGenerator` kwargs read off a netG state_dict: widths, levels, progressive."""
  sd = sd_lib.strip_module_prefix(state_dict)
  progressive = any(k.startswith("model_local_") for k in sd)
  prefix = "model_global." if progressive else ""
  first = sd_lib.shape_of(sd, f"{prefix}encoder_app.net.0.weight", source)
  encoder_widths = [first[0]]
  i = 1
  while f"{prefix}encoder_app.net.{i}.net.1.weight" in sd:
    encoder_widths.append(np.shape(sd[f"{prefix}encoder_app.net.{i}.net.1.weight"])[0])
    i += 1
  levels = len(encoder_widths)
  # ConvTranspose2d weights are (in, out, kh, kw).
  decoder_widths = [sd_lib.shape_of(sd, f"{prefix}decoder.net.{j}.net.1.weight", source)[1]
                    for j in range(levels - 1)]
  decoder_widths.append(sd_lib.shape_of(sd, f"{prefix}decoder.net.{levels}.weight", source)[0])
  if first[1] != 3 + PARSING_CHANNELS + POSE_CHANNELS:
    raise sd_lib.StateDictMismatchError(source, [
        f"{prefix}encoder_app.net.0.weight takes {first[1]} input channels; SPT's appearance encoder takes "
        f"{3 + PARSING_CHANNELS + POSE_CHANNELS} (image 3 + parsing 9 + pose 18)"])
  return dict(encoder_widths=tuple(int(w) for w in encoder_widths),
              decoder_widths=tuple(int(w) for w in decoder_widths), progressive=progressive)


def hparams_from_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
  """`AppearanceGenerator` kwargs read off our own variables."""
  p = variables["params"]
  g = p["global_generator"]
  enc = g["appearance_encoder"]
  encoder_widths = [np.shape(enc["conv_0"]["kernel"])[-1]]
  encoder_widths += [np.shape(enc[f"block_{i}"]["conv"]["kernel"])[-1] for i in range(1, len(enc))]
  dec = g["decoder"]
  decoder_widths = [np.shape(dec[f"block_{i}"]["conv"]["kernel"])[-1] for i in range(len(dec) - 1)]
  decoder_widths.append(np.shape(dec["output_conv"]["kernel"])[-1])
  return dict(encoder_widths=tuple(int(w) for w in encoder_widths),
              decoder_widths=tuple(int(w) for w in decoder_widths), progressive="local_decoder" in p)


def semantic_hparams_from_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
  """`SemanticGenerator` kwargs read off its variables."""
  p = variables["params"]
  enc = p["appearance_encoder"]
  encoder_widths = [np.shape(enc["conv_0"]["kernel"])[-1]]
  encoder_widths += [np.shape(enc[f"block_{i}"]["conv"]["kernel"])[-1] for i in range(1, len(enc))]
  dec = p["decoder"]
  decoder_widths = [np.shape(dec[f"block_{i}"]["conv"]["kernel"])[-1] for i in range(len(dec) - 1)]
  decoder_widths.append(np.shape(dec["output_conv"]["kernel"])[-1])
  return dict(encoder_widths=tuple(int(w) for w in encoder_widths),
              decoder_widths=tuple(int(w) for w in decoder_widths))


def discriminator_torch_table(model: PatchDiscriminator) -> list[sd_lib.Entry]:
  """The release's `NLayerDiscriminator` keys (`model.{0, 2, 5, ..., 3 n + 2}`) [+ `model_256.0`]."""
  entries = sd_lib.conv("model.0", "params", ("conv_0",))
  for n in range(1, model.n_layers + 1):
    entries += sd_lib.conv(f"model.{3 * n - 1}", "params", (f"conv_{n}",))
  entries += sd_lib.conv(f"model.{3 * model.n_layers + 2}", "params", ("output",))
  if model.fade_in:
    entries += sd_lib.conv("model_256.0", "params", ("fade_in_conv",))
  return entries


def discriminator_from_torch(state_dict: Mapping[str, Any], model: PatchDiscriminator, in_channels: int, *,
                             source: str = "SPT netD state_dict") -> dict:
  """A released D / D_face state_dict -> {'params'} (InstanceNorm running buffers ignored)."""
  abstract = sd_lib.abstract_variables(model, jnp.zeros((1, 256, 256, in_channels)))
  return sd_lib.state_dict_to_variables(state_dict, discriminator_torch_table(model), abstract, source=source,
                                        known_unused=_unused_buffer)


def discriminator_to_torch(variables: Mapping[str, Any], model: PatchDiscriminator) -> dict[str, np.ndarray]:
  return sd_lib.variables_to_state_dict({"params": variables["params"]}, discriminator_torch_table(model))


def discriminator_hparams_from_torch(state_dict: Mapping[str, Any], source: str = "SPT netD state_dict"
                                     ) -> tuple[dict[str, Any], int]:
  """(`PatchDiscriminator` kwargs, input channels) read off a D state_dict."""
  sd = sd_lib.strip_module_prefix(state_dict)
  first = sd_lib.shape_of(sd, "model.0.weight", source)
  indices = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"model\.(\d+)\.weight", k)))
  n_layers = len(indices) - 2
  if n_layers < 1 or indices != [0] + [3 * n - 1 for n in range(1, n_layers + 2)]:
    raise sd_lib.StateDictMismatchError(source, [f"conv indices {indices} are not an NLayerDiscriminator's"])
  return dict(width=int(first[0]), n_layers=n_layers, fade_in="model_256.0.weight" in sd), int(first[1])


def discriminator_hparams_from_variables(variables: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
  p = variables["params"]
  kernel = np.shape(p["conv_0"]["kernel"])
  n_layers = sum(1 for k in p if re.fullmatch(r"conv_\d+", k)) - 1
  return dict(width=int(kernel[-1]), n_layers=n_layers, fade_in="fade_in_conv" in p), int(kernel[2])
