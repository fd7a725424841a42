"""Deformable GAN's generator and discriminator, and SDGAN's multi-scale generator.

Deformable GAN (Siarohin et al., CVPR 2018; official Keras `conditional_gan.py`:
`make_generator`, `make_discriminator`, `encoder`, `decoder`, `block`),
reimplemented from shared/reference/peers.md section 2:

  concat(source_image, source_pose) (B,H,W,21) --appearance Encoder--> a_0 .. a_{n-1}
  target_pose (B,H,W,18)                       --pose Encoder-------> p_0 .. p_{n-1}
  skip_i = concat(deformable_skip(a_i), p_i) for the 4 finest levels, concat(a_i, p_i) below
  Decoder(skips, deepest first) -> target image (B,H,W,3) in (-1, 1)

warp_skip='none' (the paper's baseline) has no warping and a single encoder on
concat(source_image, source_pose, target_pose) (39 channels). Level i has
H / 2^i x W / 2^i pixels; the official widths are the `PRESETS` (Market
128x64: six levels down to 4x2; DeepFashion 256x256: seven, down to 4x4).

Keras semantics reproduced (the defaults differ from PyTorch's):
  * `block(down=True)` = LeakyReLU(0.2) -> ZeroPadding2D(1) + Conv2D(4x4, s2,
    valid, no bias) [-> InstanceNormalization], i.e. a conv k4 s2 pad 1;
  * `block(down=False)` = ReLU -> Conv2DTranspose(4x4, s2, valid, no bias) +
    Cropping2D(1) -> InstanceNormalization [-> Dropout(0.5)], i.e. PyTorch's
    ConvTranspose2d(k4, s2, p1) (`layers.ConvTranspose`), exactly doubling H, W;
  * InstanceNormalization is keras-contrib's axis=None norm over (H, W, C)
    with scalar gamma and beta (`deformable.KerasInstanceNorm`);
  * Conv2D 'same' 3x3 = zero padding 1; glorot_uniform kernels, zero biases;
  * Dropout(0.5) on the decoder's three deepest steps, only when train=True
    (the official `--use_dropout_test 0`), rng collection 'dropout'.

The discriminator (`make_discriminator`, disc_type 'call') sees concat(x_a,
H_a, x_b, H_b) (42 channels): Conv2D(4x4, s2, valid, bias) with NO activation,
three down blocks (128, 256, 512, with norm), a last down block to 1 channel
without norm. It returns the LOGITS (the official applies a sigmoid and
flattens; the sigmoid belongs in a stable BCE, `losses.bce_discriminator_loss`):
3x1 patches at 128x64, 7x7 at 256x256.

SDGAN (Lin, Yu, Geng; "Stacked deformable GAN for pose-based person image
generation"; peers.md section 3). Its paper could not be read and its
released code never finished the idea, so two variants:

  * variant='released' reproduces the authors' PyTorch code (`models/
    networks.py`, Market 128x64 only there): the Deformable GAN generator plus
    two side outputs, each an up block (ReLU, ConvT 4x4 s2, crop, norm,
    dropout) to 3 channels at 1/4 and 1/2 resolution, flattened in NCHW order
    and mapped to the full image by a fully connected layer (`linear_2`,
    `linear_3`; PyTorch default init, no tanh). 250,024,801 parameters at
    Market. As in that code all dropout is channel-wise (`Dropout2d`) and
    every layer keeps PyTorch's default init (its glorot init is commented
    out). Not reproduced, deliberately: its bilinear `grid_sample` warp with
    swapped H/W normalisation (wrong for non-square images; we keep the TF
    warp), its eps inside the square root of the norm (1e-3, negligible), and
    the batch-size-1 `.squeeze()` bug. We pick the side branches by
    resolution (decoder states at 1/8 and 1/4), which is the code's i=2, i=3
    at Market; the code itself cannot run at other sizes (hard-coded FC sizes).
  * variant='paper' is OUR DESIGN of what the paper describes (image outputs
    at 1/4, 1/2 and full resolution, each finer scale decoding from the
    coarser scale's features together with the target pose): the Deformable
    GAN decoder unchanged down to the 1/4-resolution state S_q = concat(up
    features, skip) -> quarter image = head(S_q) (ReLU, Conv3x3, tanh, as the
    official output layer); the 1/2 state S_h = concat(up_block(S_q), skip,
    upsample2x(p_2)) -> half image = head(S_h); the full state S_f =
    concat(up_block(S_h), skip, upsample2x(p_1)) -> full image through the
    official output conv. p_l is the target-pose encoder's level-l code (the
    coarser scale's pose code, nearest-upsampled to the finer scale). Market:
    61,685,219 parameters (576,134 over Deformable GAN). A per-scale
    discriminator is left to the training system (`DefGANDiscriminator`
    accepts fewer `widths` for the small scales).

Official Keras weights (an HDF5 `model_weights/<layer>/<layer>/kernel:0`, layers
in recorded order) map onto these modules through `keras_generator_layers` /
`keras_discriminator_layers`, ordered lists of (Keras kind, Flax path, weight
names and Keras shapes).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.io import keras_h5
from jaxpose.io import state_dict as sd_lib
from jaxpose.models import deformable
from jaxpose.models import layers

Array = jax.Array

WARP_SKIPS = ("mask", "none")
SDGAN_VARIANTS = ("paper", "released")
WARPED_LEVELS = 4
"""The official warps the skips of the four finest levels (i < 4 in `concatenate_skips`)."""
DROPOUT_STEPS = 3
"""The official decoder drops out on its three deepest steps (i < 3)."""


@dataclasses.dataclass(frozen=True)
class Preset:
  """Official widths for a dataset (`make_generator` picks them by max(image_size) == 128)."""
  image_size: tuple[int, int]
  encoder_widths: tuple[int, ...]
  decoder_widths: tuple[int, ...]


PRESETS = {
    "market": Preset((128, 64), (64, 128, 256, 512, 512, 512), (512, 512, 512, 256, 128, 3)),
    "deepfashion": Preset((256, 256), (64, 128, 256, 512, 512, 512, 512), (512, 512, 512, 512, 256, 128, 3)),
}


def _preset_kwargs(dataset: str) -> dict[str, tuple[int, ...]]:
  if dataset not in PRESETS:
    raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {dataset!r}")
  return {"encoder_widths": PRESETS[dataset].encoder_widths, "decoder_widths": PRESETS[dataset].decoder_widths}


def _kernel_init(keras_init: bool):
  return nn.initializers.glorot_uniform() if keras_init else layers.torch_default_kernel_init


def _bias_init(keras_init: bool):
  return nn.initializers.zeros if keras_init else None


def _conv3x3(features: int, keras_init: bool, dtype, name: str) -> layers.ReflectConv:
  """Keras Conv2D(3x3, padding='same', bias) = zero padding 1."""
  return layers.ReflectConv(features, 3, 1, 1, "zero", True, _kernel_init(keras_init), dtype,
                            bias_init=_bias_init(keras_init), name=name)


class DownBlock(nn.Module):
  """Official `block(out, nkernels, down=True, bn=use_norm)`.

  LeakyReLU(0.2) -> ZeroPadding2D(1) + Conv2D(4x4, stride 2, valid, no bias)
  [-> InstanceNormalization].

  Shapes: (B, H, W, C) -> (B, H // 2, W // 2, features).
  Parameters: `conv/kernel` (4, 4, C, features) (= Keras `kernel:0`), and
  `norm/gamma`, `norm/beta` (1,) with use_norm.
  """
  features: int
  use_norm: bool = True
  keras_init: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = nn.leaky_relu(x, 0.2)
    x = layers.ReflectConv(self.features, 4, 2, 1, "zero", False, _kernel_init(self.keras_init), self.dtype,
                           name="conv")(x)
    if self.use_norm:
      x = deformable.KerasInstanceNorm(name="norm")(x)
    return x


class UpBlock(nn.Module):
  """Official `block(out, nkernels, down=False, leaky=False, dropout=...)`.

  ReLU -> Conv2DTranspose(4x4, stride 2, valid, no bias) + Cropping2D(1) ->
  InstanceNormalization [-> Dropout(dropout_rate) when train].

  Attributes:
    features: output channels.
    dropout_rate: 0 for no dropout (0.5 officially where used).
    channel_dropout: drop whole channels (PyTorch `Dropout2d`, SDGAN's code)
      instead of Keras' elementwise Dropout.
    keras_init: glorot_uniform kernel (Keras) or PyTorch's default.
    dtype: compute dtype.

  Call: `(x, train)`; (B, H, W, C) -> (B, 2H, 2W, features).
  Parameters: `conv/kernel` (4, 4, C, features) = Keras `kernel:0` (4, 4,
  features, C) transposed (0, 1, 3, 2); `norm/gamma`, `norm/beta` (1,).
  """
  features: int
  dropout_rate: float = 0.0
  channel_dropout: bool = False
  keras_init: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    x = nn.relu(x)
    x = layers.ConvTranspose(self.features, 4, 2, 1, 0, False, _kernel_init(self.keras_init) if self.keras_init
                             else None, self.dtype, name="conv")(x)
    x = deformable.KerasInstanceNorm(name="norm")(x)
    if self.dropout_rate > 0:
      broadcast = (1, 2) if self.channel_dropout else ()
      x = nn.Dropout(self.dropout_rate, broadcast_dims=broadcast, deterministic=not train)(x)
    return x


class Encoder(nn.Module):
  """Official `encoder(inputs, nfilters)`: a U-Net encoder returning every level.

  Level 0: Conv2D(3x3, 'same', bias); levels 1 .. n-2: DownBlock with norm;
  level n-1: DownBlock without norm.

  Call: (B, H, W, C_in) -> list of n arrays, finest first, level i of shape
  (B, H / 2^i, W / 2^i, widths[i]).
  Parameters: `conv_0`, `block_{i}` (i = 1 .. n-1).
  """
  widths: Sequence[int]
  keras_init: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> list[Array]:
    n = len(self.widths)
    x = _conv3x3(self.widths[0], self.keras_init, self.dtype, "conv_0")(x.astype(self.dtype))
    levels = [x]
    for i in range(1, n):
      x = DownBlock(self.widths[i], i < n - 1, self.keras_init, self.dtype, name=f"block_{i}")(x)
      levels.append(x)
    return levels


class Decoder(nn.Module):
  """Official `decoder(skips, nfilters)`: the U-Net decoder, deepest skip first.

  Step 0 up-samples the deepest skip; step i > 0 up-samples concat(previous
  output, skip_i [, extra_i]); the last step is ReLU -> Conv2D(3x3, 'same',
  bias) -> tanh. Up blocks 0 .. 2 use dropout.

  Attributes:
    widths: output channels per step; the last is the image's.
    dropout_rate: dropout of the three deepest up blocks while training.
    channel_dropout: whole-channel dropout (SDGAN's PyTorch code).
    keras_init: glorot/zeros (Keras) or PyTorch default initialisers.
    dtype: compute dtype.

  Call: `(skips, train=False, extras=None)`: skips deepest first, skip i at
  (B, h 2^i, w 2^i, C_i); extras an optional {step: array} concatenated after
  that step's skip (SDGAN's pose code). Returns (image (B, H, W, widths[-1])
  float32 in (-1, 1), states): states[i] is step i's input (the skip for
  i = 0, else the concatenation), which SDGAN's side outputs read.
  Parameters: `block_{i}` (i < n-1), `output_conv`.
  """
  widths: Sequence[int]
  dropout_rate: float = 0.5
  channel_dropout: bool = False
  keras_init: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, skips: Sequence[Array], train: bool = False,
               extras: dict[int, Array] | None = None) -> tuple[Array, list[Array]]:
    n = len(self.widths)
    if len(skips) != n:
      raise ValueError(f"the decoder has {n} steps but got {len(skips)} skips")
    extras = extras or {}
    states = []
    out = None
    for i, (skip, features) in enumerate(zip(skips, self.widths)):
      parts = ([] if out is None else [out]) + [skip] + ([extras[i]] if i in extras else [])
      x = jnp.concatenate([p.astype(self.dtype) for p in parts], axis=-1) if len(parts) > 1 else parts[0]
      states.append(x)
      if i == n - 1:
        x = _conv3x3(features, self.keras_init, self.dtype, "output_conv")(nn.relu(x))
        return jnp.tanh(x.astype(jnp.float32)), states
      rate = self.dropout_rate if i < DROPOUT_STEPS else 0.0
      out = UpBlock(features, rate, self.channel_dropout, self.keras_init, self.dtype, name=f"block_{i}")(x, train)
    raise AssertionError("unreachable")


def _check_widths(encoder_widths, decoder_widths, image_channels):
  n = len(encoder_widths)
  if len(decoder_widths) != n:
    raise ValueError(f"encoder_widths {tuple(encoder_widths)} and decoder_widths {tuple(decoder_widths)} "
                     "need the same number of levels")
  if n < DROPOUT_STEPS + 1:
    raise ValueError(f"the official U-Net needs at least {DROPOUT_STEPS + 1} levels, got {n}")
  if decoder_widths[-1] != image_channels:
    raise ValueError(f"the last decoder width must be image_channels={image_channels}, got {decoder_widths[-1]}")


def _check_inputs(source_image, source_pose, target_pose, image_channels, pose_channels, levels):
  for name, array, channels in (("source_image", source_image, image_channels),
                                ("source_pose", source_pose, pose_channels),
                                ("target_pose", target_pose, pose_channels)):
    if array.ndim != 4 or array.shape[-1] != channels:
      raise ValueError(f"{name} must be (B, H, W, {channels}), got {array.shape}")
    if array.shape[:3] != source_image.shape[:3]:
      raise ValueError(f"{name} has shape {array.shape}, source_image {source_image.shape}: B, H, W must agree")
  factor = 2 ** (levels - 1)
  if source_image.shape[1] % factor or source_image.shape[2] % factor:
    raise ValueError(f"H and W must be divisible by 2^(levels - 1) = {factor}, got {source_image.shape[1:3]}")


def _check_warps(transforms, masks, image_shape):
  batch, height, width = image_shape
  if transforms is None or masks is None:
    raise ValueError("warp_skip='mask' needs transforms (B, P, 8) and masks (B, P, H, W)")
  if transforms.ndim != 3 or transforms.shape[0] != batch or transforms.shape[2] != 8:
    raise ValueError(f"transforms must be (B={batch}, P, 8), got {transforms.shape}")
  if masks.shape != (batch, transforms.shape[1], height, width):
    raise ValueError(f"masks must be (B, P, H, W) = {(batch, transforms.shape[1], height, width)}, got {masks.shape}")


def _encode(source_image, source_pose, target_pose, transforms, masks, *, warp_skip, encoder_widths, keras_init,
            warped_levels, dtype) -> tuple[list[Array], list[Array] | None]:
  """Encoders and skips (official `encoder` + `concatenate_skips`); call inside a compact method.

  Returns (skips finest first, target-pose encoder levels or None for 'none').
  """
  if warp_skip == "none":
    if transforms is not None or masks is not None:
      raise ValueError("warp_skip='none' takes no transforms or masks")
    inputs = jnp.concatenate([source_image, source_pose, target_pose], axis=-1)
    return Encoder(encoder_widths, keras_init, dtype, name="encoder")(inputs), None
  _check_warps(transforms, masks, source_image.shape[:3])
  appearance = Encoder(encoder_widths, keras_init, dtype, name="appearance_encoder")(
      jnp.concatenate([source_image, source_pose], axis=-1))
  pose = Encoder(encoder_widths, keras_init, dtype, name="pose_encoder")(target_pose)
  skips = []
  for i, (a, p) in enumerate(zip(appearance, pose)):
    if i < warped_levels:
      a = deformable.deformable_skip(a, transforms, masks)
    skips.append(jnp.concatenate([a, p], axis=-1))
  return skips, pose


class DefGANGenerator(nn.Module):
  """Deformable GAN's generator (official `make_generator`, `--use_input_pose 1`, `pose_rep_type hm`).

  Attributes (Market defaults; `DefGANGenerator.preset('deepfashion')` for 256x256):
    warp_skip: 'mask' (deformable skips, the paper's dsc/full models) or
      'none' (baseline: one encoder on image + both poses, plain skips).
    encoder_widths: channels per encoder level, finest first.
    decoder_widths: channels per decoder step, deepest first; the last is 3.
    image_channels: 3.
    pose_channels: keypoint heatmaps per pose (18).
    warped_levels: finest levels with deformable skips (4).
    dropout_rate: decoder dropout on the three deepest steps when train=True.
    dtype: compute dtype; parameters and norms stay float32.

  Call: `(source_image, source_pose, target_pose, transforms=None,
  masks=None, train=False)`: source_image (B, H, W, 3) in [-1, 1] (x_a),
  source_pose and target_pose (B, H, W, 18) heatmaps (H_a, H_b); with 'mask'
  transforms (B, 10, 8) float32 and masks (B, 10, H, W) from
  `jaxpose.data.part_transforms` (target -> source, full resolution). H and W
  divisible by 2^(levels - 1). Returns (B, H, W, 3) float32 in (-1, 1).

  Parameters: 'mask': `appearance_encoder`, `pose_encoder`, `decoder`; 'none':
  `encoder`, `decoder` (see `keras_generator_layers` for the Keras names).
  Market: 61,109,085 ('mask') / 36,072,533 ('none'); DeepFashion 82,080,611
  / 48,655,449.
  """
  warp_skip: str = "mask"
  encoder_widths: Sequence[int] = PRESETS["market"].encoder_widths
  decoder_widths: Sequence[int] = PRESETS["market"].decoder_widths
  image_channels: int = 3
  pose_channels: int = 18
  warped_levels: int = WARPED_LEVELS
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @classmethod
  def preset(cls, dataset: str, **kwargs) -> DefGANGenerator:
    """The official widths for 'market' (128x64) or 'deepfashion' (256x256); kwargs override."""
    return cls(**_preset_kwargs(dataset), **kwargs)

  @nn.compact
  def __call__(self, source_image: Array, source_pose: Array, target_pose: Array, transforms: Array | None = None,
               masks: Array | None = None, train: bool = False) -> Array:
    if self.warp_skip not in WARP_SKIPS:
      raise ValueError(f"warp_skip must be one of {WARP_SKIPS}, got {self.warp_skip!r}")
    _check_widths(self.encoder_widths, self.decoder_widths, self.image_channels)
    _check_inputs(source_image, source_pose, target_pose, self.image_channels, self.pose_channels,
                  len(self.encoder_widths))
    skips, _ = _encode(source_image, source_pose, target_pose, transforms, masks, warp_skip=self.warp_skip,
                       encoder_widths=self.encoder_widths, keras_init=True, warped_levels=self.warped_levels,
                       dtype=self.dtype)
    image, _ = Decoder(self.decoder_widths, self.dropout_rate, False, True, self.dtype, name="decoder")(
        skips[::-1], train)
    return image


class ImageHead(nn.Module):
  """SDGAN (paper variant) side output: ReLU -> Conv2D(3x3, 'same', bias) -> tanh, like the official last step.

  (B, h, w, C) -> (B, h, w, image_channels) float32. Parameters: `conv`.
  """
  image_channels: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = _conv3x3(self.image_channels, True, self.dtype, "conv")(nn.relu(x))
    return jnp.tanh(x.astype(jnp.float32))


class SDGANOutputs(NamedTuple):
  """SDGAN's three images, each (B, h, w, 3) float32.

  variant='paper': full (H, W), half (H/2, W/2), quarter (H/4, W/4), all tanh.
  variant='released': all three (H, W); half and quarter are the side
  outputs decoded at 1/2 and 1/4 resolution and mapped to full size by the
  fully connected layers, without tanh (the code's `out_3`, `out_2`).
  """
  full: Array
  half: Array
  quarter: Array


class SDGANGenerator(nn.Module):
  """SDGAN's multi-scale generator: a Deformable GAN generator with 1/4 and 1/2 scale outputs.

  See the module docstring for both variants; 'paper' is our design,
  'released' the authors' code. Always with deformable skips ('mask').

  Attributes:
    variant: 'paper' or 'released'.
    encoder_widths, decoder_widths, image_channels, pose_channels,
      warped_levels, dropout_rate, dtype: as `DefGANGenerator`.

  Call: as `DefGANGenerator` with transforms and masks required. Returns
  `SDGANOutputs(full, half, quarter)`.

  Parameters: `appearance_encoder`, `pose_encoder`, `decoder` (as
  `DefGANGenerator`, so its weights load unchanged into the 'released'
  variant), plus 'paper': `quarter_head`, `half_head` (and wider decoder
  steps at 1/2 and full resolution); 'released': `quarter_block`,
  `quarter_linear`, `half_block`, `half_linear` (the code's `model_dec_2`,
  `linear_2`, `model_dec_3`, `linear_3`). Market 'released': 250,024,801.
  """
  variant: str = "paper"
  encoder_widths: Sequence[int] = PRESETS["market"].encoder_widths
  decoder_widths: Sequence[int] = PRESETS["market"].decoder_widths
  image_channels: int = 3
  pose_channels: int = 18
  warped_levels: int = WARPED_LEVELS
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @classmethod
  def preset(cls, dataset: str, **kwargs) -> SDGANGenerator:
    """Deformable GAN's official widths for 'market' or 'deepfashion' (the released code ran at Market only)."""
    return cls(**_preset_kwargs(dataset), **kwargs)

  @nn.compact
  def __call__(self, source_image: Array, source_pose: Array, target_pose: Array, transforms: Array,
               masks: Array, train: bool = False) -> SDGANOutputs:
    if self.variant not in SDGAN_VARIANTS:
      raise ValueError(f"variant must be one of {SDGAN_VARIANTS}, got {self.variant!r}")
    _check_widths(self.encoder_widths, self.decoder_widths, self.image_channels)
    n = len(self.encoder_widths)
    _check_inputs(source_image, source_pose, target_pose, self.image_channels, self.pose_channels, n)
    released = self.variant == "released"
    skips, pose = _encode(source_image, source_pose, target_pose, transforms, masks, warp_skip="mask",
                          encoder_widths=self.encoder_widths, keras_init=not released,
                          warped_levels=self.warped_levels, dtype=self.dtype)
    decoder = Decoder(self.decoder_widths, self.dropout_rate, released, not released, self.dtype, name="decoder")
    if not released:
      # Decoder step n-2 works at 1/2 resolution, n-1 at full: each also gets the coarser level's pose code.
      extras = {n - 2: layers.upsample_nearest2x(pose[2]), n - 1: layers.upsample_nearest2x(pose[1])}
      full, states = decoder(skips[::-1], train, extras)
      quarter = ImageHead(self.image_channels, self.dtype, name="quarter_head")(states[n - 3])
      half = ImageHead(self.image_channels, self.dtype, name="half_head")(states[n - 2])
      return SDGANOutputs(full, half, quarter)

    full, states = decoder(skips[::-1], train)
    batch, height, width, _ = source_image.shape

    def side_output(state, prefix):
      x = UpBlock(self.image_channels, self.dropout_rate, True, False, self.dtype, name=f"{prefix}_block")(
          state, train)
      x = x.transpose(0, 3, 1, 2).reshape(batch, -1)  # PyTorch's NCHW `view(B, C * H * W)`
      x = layers.Dense(self.image_channels * height * width, dtype=self.dtype, name=f"{prefix}_linear")(x)
      return x.reshape(batch, self.image_channels, height, width).transpose(0, 2, 3, 1).astype(jnp.float32)

    quarter = side_output(states[n - 4], "quarter")  # the code's `model_dec_2` at decoder step 2 (Market)
    half = side_output(states[n - 3], "half")  # `model_dec_3` at step 3
    return SDGANOutputs(full, half, quarter)


class DefGANDiscriminator(nn.Module):
  """Deformable GAN's 'call' PatchGAN (official `make_discriminator`, disc_type='call'), returning logits.

  concat(x_a, H_a, x_b, H_b) -> Conv2D(widths[0], 4x4, s2, valid, bias; no
  activation) -> DownBlock(w, norm) for w in widths[1:] -> DownBlock(1, no
  norm). The official widths (64, 128, 256, 512) give 2,803,782 parameters
  and 3x1 patches at 128x64, 7x7 at 256x256; fewer widths make a shallower D
  (e.g. for SDGAN's small scales, our choice).

  Attributes:
    widths: channels of the first conv and the normalised blocks.
    image_channels: 3.
    pose_channels: 18.
    dtype: compute dtype.

  Call: `(source_image, source_pose, target_image, target_pose)`, each (B, H,
  W, 3 or 18); target_image real or generated. Returns logits (B, h, w, 1)
  float32 (the official flattens sigmoid(logits) to (B, h * w)).
  Parameters: `conv_0`, `block_{i}` (i = 1 .. len(widths)).
  """
  widths: Sequence[int] = (64, 128, 256, 512)
  image_channels: int = 3
  pose_channels: int = 18
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, source_image: Array, source_pose: Array, target_image: Array, target_pose: Array) -> Array:
    expected = (self.image_channels, self.pose_channels, self.image_channels, self.pose_channels)
    inputs = (source_image, source_pose, target_image, target_pose)
    if any(x.ndim != 4 or x.shape[-1] != c or x.shape[:3] != source_image.shape[:3]
           for x, c in zip(inputs, expected)):
      raise ValueError(f"discriminator inputs must be (B, H, W, C) with C = {expected}, "
                       f"got {[x.shape for x in inputs]}")
    size = min(source_image.shape[1:3])
    size = (size - 4) // 2 + 1
    for _ in self.widths:
      size //= 2
    if size < 1:
      raise ValueError(f"a {source_image.shape[1]}x{source_image.shape[2]} input is too small for "
                       f"{len(self.widths) + 1} stride-2 convs")
    x = jnp.concatenate(inputs, axis=-1).astype(self.dtype)
    x = layers.ReflectConv(self.widths[0], 4, 2, 0, "none", True, _kernel_init(True), self.dtype,
                           bias_init=_bias_init(True), name="conv_0")(x)
    for i, features in enumerate(self.widths[1:], start=1):
      x = DownBlock(features, True, True, self.dtype, name=f"block_{i}")(x)
    x = DownBlock(1, False, True, self.dtype, name=f"block_{len(self.widths)}")(x)
    return x.astype(jnp.float32)


# ----------------------------------------------------------------------------
# Official Keras weights: the layer order.


class KerasLayer(NamedTuple):
  """One weighted Keras layer and where its weights go.

  kind: 'Conv2D', 'Conv2DTranspose' or 'InstanceNormalization' (the h5 layer
    name is kind in snake case plus a session counter, e.g. `conv2d_7`).
  path: the module path in our 'params' tree, e.g. ('decoder', 'block_0', 'conv').
  weights: ((keras weight name, Keras shape), ...) in the h5's order, e.g.
    (('kernel:0', (3, 3, 21, 64)), ('bias:0', (64,))). Our parameter of the
    same name ('kernel', 'bias', 'gamma', 'beta') is the Keras array, except a
    Conv2DTranspose kernel, which is transposed (0, 1, 3, 2): Keras stores
    (kh, kw, out, in), we (kh, kw, in, out); no spatial flip (both are the
    transpose of a cross-correlation).
  """
  kind: str
  path: tuple[str, ...]
  weights: tuple[tuple[str, tuple[int, ...]], ...]


def keras_to_flax(layer: KerasLayer, weight_name: str, value):
  """A Keras weight array in our layout (see `KerasLayer`)."""
  if layer.kind == "Conv2DTranspose" and weight_name.startswith("kernel"):
    return value.transpose(0, 1, 3, 2)
  return value


def _keras_encoder_layers(prefix, widths, in_channels):
  """Per level, the weighted layers of one official `encoder`: [[conv], [conv, norm], ..., [conv]]."""
  n = len(widths)
  levels = [[KerasLayer("Conv2D", (prefix, "conv_0"), (("kernel:0", (3, 3, in_channels, widths[0])),
                                                          ("bias:0", (widths[0],))))]]
  for i in range(1, n):
    level = [KerasLayer("Conv2D", (prefix, f"block_{i}", "conv"), (("kernel:0", (4, 4, widths[i - 1], widths[i])),))]
    if i < n - 1:
      level.append(KerasLayer("InstanceNormalization", (prefix, f"block_{i}", "norm"),
                              (("gamma:0", (1,)), ("beta:0", (1,)))))
    levels.append(level)
  return levels


def keras_generator_layers(warp_skip: str = "mask", encoder_widths: Sequence[int] = PRESETS["market"].encoder_widths,
                           decoder_widths: Sequence[int] = PRESETS["market"].decoder_widths,
                           image_channels: int = 3, pose_channels: int = 18) -> list[KerasLayer]:
  """The official generator's weighted Keras layers in recorded order, mapped onto `DefGANGenerator`.

  Order: for 'mask', the appearance and the pose encoder interleaved layer by
  layer, appearance first (a_conv_0, p_conv_0, a_conv_1, p_conv_1, a_norm_1,
  p_norm_1, ...); for 'none', the single encoder; then the decoder (ConvT,
  norm per step, the output Conv2D last). The interleaving is what the
  PyTorch port's Keras converter (saurabhsharma1993/pose-transfer,
  src_deformable/unitTests.py) undoes with `model_layers[2 * i]` /
  `[2 * i + 1]`; it has not been checked against an official .h5 here, and
  the two encoders' deeper layers have identical shapes, so an importer
  should also compare the level-0 kernels' input channels (21 appearance vs
  18 pose). Layers without weights (LeakyReLU, padding, concatenation, the
  warp) are not listed: drop them from the h5's `layer_names` before zipping.
  """
  if warp_skip not in WARP_SKIPS:
    raise ValueError(f"warp_skip must be one of {WARP_SKIPS}, got {warp_skip!r}")
  _check_widths(encoder_widths, decoder_widths, image_channels)
  result = []
  if warp_skip == "mask":
    appearance = _keras_encoder_layers("appearance_encoder", encoder_widths, image_channels + pose_channels)
    pose = _keras_encoder_layers("pose_encoder", encoder_widths, pose_channels)
    for a_level, p_level in zip(appearance, pose):
      for a, p in zip(a_level, p_level):
        result += [a, p]
    skip_widths = [2 * w for w in encoder_widths]
  else:
    for level in _keras_encoder_layers("encoder", encoder_widths, image_channels + 2 * pose_channels):
      result += level
    skip_widths = list(encoder_widths)
  skip_widths = skip_widths[::-1]
  n = len(decoder_widths)
  channels = 0
  for i, features in enumerate(decoder_widths):
    in_channels = channels + skip_widths[i]
    if i == n - 1:
      result.append(KerasLayer("Conv2D", ("decoder", "output_conv"),
                               (("kernel:0", (3, 3, in_channels, features)), ("bias:0", (features,)))))
    else:
      result.append(KerasLayer("Conv2DTranspose", ("decoder", f"block_{i}", "conv"),
                               (("kernel:0", (4, 4, features, in_channels)),)))
      result.append(KerasLayer("InstanceNormalization", ("decoder", f"block_{i}", "norm"),
                               (("gamma:0", (1,)), ("beta:0", (1,)))))
    channels = features
  return result


def keras_discriminator_layers(widths: Sequence[int] = (64, 128, 256, 512), in_channels: int = 42,
                               ) -> list[KerasLayer]:
  """The official 'call' discriminator's weighted Keras layers in order, mapped onto `DefGANDiscriminator`."""
  result = [KerasLayer("Conv2D", ("conv_0",), (("kernel:0", (4, 4, in_channels, widths[0])),
                                               ("bias:0", (widths[0],))))]
  previous = widths[0]
  for i, features in enumerate(list(widths[1:]) + [1], start=1):
    result.append(KerasLayer("Conv2D", (f"block_{i}", "conv"), (("kernel:0", (4, 4, previous, features)),)))
    if i < len(widths):
      result.append(KerasLayer("InstanceNormalization", (f"block_{i}", "norm"), (("gamma:0", (1,)), ("beta:0", (1,)))))
    previous = features
  return result


# ----------------------------------------------------------------------------
# Architectures read off weights, and the official Keras .h5 generator files.


def hparams_from_variables(variables: dict) -> dict:
  """DefGANGenerator / SDGANGenerator keyword arguments read off a generator's variables.

  warp_skip from which encoders exist, widths from the kernel shapes, and for
  SDGAN the variant (`quarter_head`: 'paper', `quarter_block`: 'released').
  Returns e.g. {'warp_skip': 'mask', 'encoder_widths': (...), 'decoder_widths': (...)}
  (SDGAN: 'variant' instead of 'warp_skip').
  """
  params = variables["params"]
  encoder = params["appearance_encoder"] if "appearance_encoder" in params else params["encoder"]
  levels = 1 + sum(1 for k in encoder if k.startswith("block_"))
  encoder_widths = [encoder["conv_0"]["kernel"].shape[-1]]
  encoder_widths += [encoder[f"block_{i}"]["conv"]["kernel"].shape[-1] for i in range(1, levels)]
  decoder = params["decoder"]
  decoder_widths = [decoder[f"block_{i}"]["conv"]["kernel"].shape[-1] for i in range(levels - 1)]
  decoder_widths.append(decoder["output_conv"]["kernel"].shape[-1])
  out = {"encoder_widths": tuple(int(w) for w in encoder_widths),
         "decoder_widths": tuple(int(w) for w in decoder_widths)}
  if "quarter_head" in params:
    out["variant"] = "paper"
  elif "quarter_block" in params:
    out["variant"] = "released"
  else:
    out["warp_skip"] = "mask" if "appearance_encoder" in params else "none"
  return out


def _keras_generator_candidates(weighted, source) -> tuple[dict, list[tuple[str, list[KerasLayer]]]]:
  """Architecture and layer order of an official generator file, from its layer count and shapes.

  The file's first kernel tells the layout: 21 input channels (image + source
  pose) is the 'mask' generator's appearance encoder, 18 its pose encoder
  (Keras may record either encoder first), 39 the 'none' generator's single
  encoder. Returns (hparams, [(order label, expected layers aligned with
  `weighted`)]).
  """
  kernels = [layer.arrays[0] for layer in weighted if layer.arrays and layer.arrays[0].ndim == 4]
  if not kernels:
    raise sd_lib.CheckpointLayoutError(source, ["no convolution kernels in the file"], "")
  first = kernels[0]
  in_channels = first.shape[2]
  image, pose = 3, 18
  if in_channels == image + 2 * pose:
    warp_skip, per_level = "none", None
    count = len(weighted)  # 4n - 3 layers: encoder 2n - 2, decoder 2n - 1
    levels = (count + 3) / 4
  elif in_channels in (image + pose, pose):
    warp_skip = "mask"
    levels = (len(weighted) + 5) / 6  # encoders 2 (2n - 2), decoder 2n - 1
  else:
    raise sd_lib.CheckpointLayoutError(
        source, [f"the first kernel {tuple(first.shape)} takes {in_channels} input channels: a Deformable GAN "
                 f"generator's takes {image + pose} (appearance encoder) or {pose} (pose encoder) with "
                 f"warp_skip 'mask', {image + 2 * pose} with 'none'"], "")
  if levels != int(levels) or levels < DROPOUT_STEPS + 1:
    raise sd_lib.CheckpointLayoutError(
        source, [f"{len(weighted)} layers with weights is no Deformable GAN generator with warp_skip "
                 f"{warp_skip!r} (6n - 5 layers for 'mask', 4n - 3 for 'none', n >= 4 levels)"], "")
  levels = int(levels)
  # Keras records two branches of equal depth interleaved layer by layer (what the PyTorch port's converter
  # undoes); a file could also hold one encoder after the other: the second kernel tells (the pose encoder's
  # 3x3 conv_0, or the first encoder's 4x4 block_1).
  interleaved = warp_skip == "mask" and len(kernels) > 1 and tuple(kernels[1].shape[:2]) == (3, 3)
  encoder_kernels = kernels[0:2 * levels:2] if interleaved else kernels[:levels]
  encoder_widths = tuple(int(k.shape[-1]) for k in encoder_kernels)
  decoder_kernels = [layer.arrays[0] for layer in weighted[-(2 * levels - 1):] if layer.arrays[0].ndim == 4]
  # Keras ConvT kernels are (kh, kw, out, in); the output conv's (kh, kw, in, out).
  decoder_widths = tuple(int(k.shape[2]) for k in decoder_kernels[:-1]) + (int(decoder_kernels[-1].shape[-1]),)
  hparams = {"warp_skip": warp_skip, "encoder_widths": encoder_widths, "decoder_widths": decoder_widths}
  try:
    expected = keras_generator_layers(warp_skip, encoder_widths, decoder_widths)
  except ValueError as e:
    raise sd_lib.CheckpointLayoutError(source, [f"widths read off the file do not make a generator: {e}"],
                                       "") from None
  if warp_skip == "none":
    return hparams, [("recorded order", expected)]
  appearance = [layer for layer in expected if layer.path[0] == "appearance_encoder"]
  pose_layers = [layer for layer in expected if layer.path[0] == "pose_encoder"]
  decoder = [layer for layer in expected if layer.path[0] == "decoder"]
  appearance_first = in_channels == image + pose
  a, p = (appearance, pose_layers) if appearance_first else (pose_layers, appearance)
  first, second = ("appearance", "pose") if appearance_first else ("pose", "appearance")
  if interleaved:
    return hparams, [(f"recorded order, the encoders interleaved layer by layer, {first} first",
                      [layer for pair in zip(a, p) for layer in pair] + decoder)]
  return hparams, [(f"recorded order, the {first} encoder, then the {second} encoder", a + p + decoder)]


def _fit_keras_layers(weighted, expected: Sequence[KerasLayer], backend: str) -> tuple[dict, list[str]]:
  """Keras arrays -> {'params': ...} along `expected`; returns (variables, problems)."""
  params, problems = {}, []
  for layer, want in zip(weighted, expected):
    shapes = tuple(tuple(a.shape) for a in layer.arrays)
    want_shapes = tuple(shape for _, shape in want.weights)
    if shapes != want_shapes:
      problems.append(f"{layer.name}: {shapes}, expected {want.kind} {'/'.join(want.path)} {want_shapes}")
      continue
    node = params
    for key in want.path:
      node = node.setdefault(key, {})
    for (weight_name, _), array in zip(want.weights, layer.arrays):
      array = np.asarray(array, np.float32)
      if backend == "theano" and array.ndim == 4:
        array = array[::-1, ::-1]  # Keras' own convert_kernel for Theano files
      node[weight_name.split(":")[0]] = keras_to_flax(want, weight_name, array)
  return {"params": params}, problems


def from_keras(weights, *, source: str | None = None) -> tuple[DefGANGenerator, dict]:
  """An official Deformable GAN generator file (`keras_h5.read_keras_h5`) -> (DefGANGenerator, variables).

  The Keras layer names carry session counters (`conv2d_7`), so layers are
  matched by their recorded order (weightless ones dropped) and checked by
  shape. The file's architecture (warp_skip, widths, number of levels) is read
  off its layer count and kernels; the two encoders of a 'mask' generator
  have identical shapes below their first layer, so which one is which comes
  from the first kernel's input channels (21 appearance vs 18 pose). The
  encoders may be recorded interleaved layer by layer (what Keras records for
  two branches of equal depth) or one after the other (the second kernel
  tells). A layout whose every shape fits is used; anything else raises
  `state_dict.CheckpointLayoutError` listing the problems and then what the
  file holds.
  """
  source = source or f"{weights.path} (defgan_generator)"
  weighted = weights.weighted_layers()
  if not weights.layer_order_recorded:
    raise sd_lib.CheckpointLayoutError(source, ["the file records no layer order (no 'layer_names'), and its "
                                                "Keras layer names carry no meaning to match by"], weights.describe())
  try:
    hparams, candidates = _keras_generator_candidates(weighted, source)
  except sd_lib.CheckpointLayoutError as e:
    raise sd_lib.CheckpointLayoutError(source, e.problems, weights.describe()) from None
  failures = []
  for label, expected in candidates:
    if len(expected) != len(weighted):
      failures.append(f"{label}: {len(weighted)} layers with weights, the generator has {len(expected)}")
      continue
    variables, problems = _fit_keras_layers(weighted, expected, weights.backend)
    if not problems:
      model = DefGANGenerator(**hparams)
      _check_against_model(model, variables, source)
      return model, variables
    failures.append(f"{label}: {len(problems)} layers do not fit, first: {problems[0]}")
  raise sd_lib.CheckpointLayoutError(source, failures, weights.describe())


def _check_against_model(model: DefGANGenerator, variables: dict, source: str) -> None:
  """The imported tree must be exactly the module's (a bug in the layer list must never pass silently)."""
  size = 2 ** (len(model.encoder_widths) - 1)
  image = jax.ShapeDtypeStruct((1, size, size, model.image_channels), jnp.float32)
  pose = jax.ShapeDtypeStruct((1, size, size, model.pose_channels), jnp.float32)
  warps = ((jax.ShapeDtypeStruct((1, 10, 8), jnp.float32), jax.ShapeDtypeStruct((1, 10, size, size), jnp.float32))
           if model.warp_skip == "mask" else ())
  abstract = jax.eval_shape(lambda *inputs: model.init(jax.random.key(0), *inputs), image, pose, pose, *warps)
  want = {p: tuple(x.shape) for p, x in sd_lib.leaves(dict(abstract)).items()}
  have = {p: tuple(np.shape(x)) for p, x in sd_lib.leaves(variables).items()}
  if want != have:
    raise AssertionError(f"{source}: internal Keras layer list mismatch: missing {sorted(want.keys() - have.keys())}, "
                         f"unknown {sorted(have.keys() - want.keys())}")


def import_keras_file(path: str) -> tuple[DefGANGenerator, dict]:
  """An official generator .h5 (h5py only; nothing from the file is executed) -> (DefGANGenerator, variables)."""
  return from_keras(keras_h5.read_keras_h5(path), source=f"{path} (defgan_generator)")


def to_keras_layers(variables: dict, model: DefGANGenerator) -> list[tuple[str, list[tuple[str, np.ndarray]]]]:
  """Our variables as the official file's weighted layers in recorded order (encoders interleaved,
  appearance first), [(keras layer name, [(weight name, array), ...])], e.g. for test fixtures."""
  counters: dict[str, int] = {}
  out = []
  for layer in keras_generator_layers(model.warp_skip, model.encoder_widths, model.decoder_widths,
                                      model.image_channels, model.pose_channels):
    node = variables["params"]
    for key in layer.path:
      node = node[key]
    snake = {"Conv2D": "conv2d", "Conv2DTranspose": "conv2d_transpose",
             "InstanceNormalization": "instance_normalization"}[layer.kind]
    counters[snake] = counters.get(snake, 0) + 1
    name = f"{snake}_{counters[snake]}"
    out.append((name, [(f"{name}/{w}", keras_to_flax(layer, w, np.asarray(node[w.split(':')[0]], np.float32)))
                       for w, _ in layer.weights]))
  return out
