"""PATN's generator (Zhu et al., CVPR 2019; official `PATNModel`, models/model_variants.py).

Reimplemented from shared/reference/peers.md section 1.1. Two encoder streams,
a chain of Pose-Attentional Transfer Blocks (PATBs) that move the image
features towards the target pose under a pose-derived attention, and a decoder
on the image stream alone (w = width = 64, n = n_downsampling = 2):

  source_image (B,H,W,3) --image DownStream--> image features (B,H/4,W/4,4w)
  concat(source_pose, target_pose) (B,H,W,36) --pose DownStream--> pose features (B,H/4,W/4,4w)
  n_blocks x PATBlock: (image, pose) -> (image', concat(pose logits, image'))
  image features --UpStream--> image (B,H,W,3) in (-1, 1)

Official names, for the mapping at the end of this file: `stream1_down` =
`image_stream`, `stream2_down` = `pose_stream`, `att` = `blocks`,
`stream1_up` = `decoder`; in a block, `conv_block_stream1` = the image path
(`image_conv_*`), `conv_block_stream2` = the pose path (`pose_conv_*`). The
official inputs `P1`, `BP1`, `BP2` are `source_image`, `source_pose`,
`target_pose`.

Normalisation (`--norm`): 'instance' (DeepFashion): InstanceNorm without
affine, every conv has a bias; 'batch' (Market): PyTorch BatchNorm (momentum
0.1, `batch_stats` collection), no conv bias except the output conv.

Initialisation as the official `init_weights(netG, 'normal')`: conv and
transposed-conv weights N(0, 0.02), biases PyTorch's default uniform. (The
official BatchNorm weight init is N(1, 0.02); `layers.BatchNorm` starts at
exactly 1, a difference that only matters for the first few updates.)
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from absl import logging

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.io import state_dict as sd_lib
from jaxpose.models import discriminator
from jaxpose.models import layers

_KERNEL_INIT = layers.PIX2PIX_KERNEL_INIT
NORMS = ("instance", "batch")


def _check_norm(norm: str) -> None:
  if norm not in NORMS:
    raise ValueError(f"PATN norm must be one of {NORMS}, got {norm!r}")



class DownStream(nn.Module):
  """Official `stream1_down` / `stream2_down`: one encoder stream.

  ReflPad3 conv7x7 -> norm -> ReLU; n_downsampling x (conv3x3 s2 with ZERO
  padding 1, as PyTorch `Conv2d(padding=1)` -> norm -> ReLU), doubling channels.

  Attributes:
    width: channels after the stem (`ngf`, 64).
    n_downsampling: stride-2 convs (2).
    norm: 'instance' or 'batch'.
    dtype: compute dtype.

  Shapes: (B, H, W, C_in) -> (B, ceil(H / 2^n), ceil(W / 2^n), width * 2^n).
  Parameters (official index in the nn.Sequential): `stem` (1), `downsample_{i}`
  (4 + 3i), and for batch norm `stem_norm` (2), `downsample_norm_{i}` (5 + 3i).
  """
  width: int = 64
  n_downsampling: int = 2
  norm: str = "instance"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    _check_norm(self.norm)
    use_bias = self.norm == "instance"
    x = layers.ReflectConv(self.width, 7, 1, 3, "reflect", use_bias, _KERNEL_INIT, self.dtype, name="stem")(x)
    x = nn.relu(layers.normalize(x, self.norm, train, "stem_norm"))
    for i in range(self.n_downsampling):
      x = layers.ReflectConv(self.width * 2 ** (i + 1), 3, 2, 1, "zero", use_bias, _KERNEL_INIT, self.dtype,
                             name=f"downsample_{i}")(x)
      x = nn.relu(layers.normalize(x, self.norm, train, f"downsample_norm_{i}"))
    return x


class PATBlock(nn.Module):
  """One Pose-Attentional Transfer Block (official `PATBlock`).

  Image path (`conv_block_stream1`): ReflPad1 conv3x3 -> norm -> ReLU ->
  [Dropout] -> ReflPad1 conv3x3 -> norm, at C_img channels.
  Pose path (`conv_block_stream2`): ReflPad1 conv3x3 C_pose -> C_pose -> norm
  -> ReLU -> [Dropout] -> ReflPad1 conv3x3 C_pose -> C_img, with NO norm and no
  activation: these are the attention logits.

    pose_logits = pose_path(pose)
    attention   = sigmoid(pose_logits)                (official `att`)
    image_out   = image + image_path(image) * attention   (residual)
    next_pose   = concat(pose_logits, image_out)      (logits first: the
                                                       pre-sigmoid values, not
                                                       the mask)

  The first block sees the pose stream's C_img channels; every later block the
  previous block's concat, 2 * C_img (official `cated_stream2=True`).

  Attributes:
    norm: 'instance' (convs have biases) or 'batch' (no conv biases).
    dropout_rate: dropout between the two convs of both paths while training
      (0.5 officially; rng collection 'dropout').
    dtype: compute dtype.

  Call: `(image, pose, train)` with image (B, h, w, C_img), pose (B, h, w,
  C_pose) -> (image_out (B, h, w, C_img), next_pose (B, h, w, 2 C_img)). The
  attention map (B, h, w, C_img) is sown into 'intermediates' as `attention`.
  Parameters (official index): `image_conv_0` (stream1.1), `image_conv_1`
  (stream1.6), `pose_conv_0` (stream2.1), `pose_conv_1` (stream2.6) (5 instead
  of 6 without dropout), and for batch norm `image_norm_0` (.2), `image_norm_1`
  (.7), `pose_norm_0` (stream2.2).
  """
  norm: str = "instance"
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  def _path(self, x: jax.Array, out_features: int, prefix: str, norm_last: bool, train: bool) -> jax.Array:
    use_bias = self.norm == "instance"
    y = layers.ReflectConv(x.shape[-1], 3, 1, 1, "reflect", use_bias, _KERNEL_INIT, self.dtype,
                           name=f"{prefix}_conv_0")(x)
    y = nn.relu(layers.normalize(y, self.norm, train, f"{prefix}_norm_0"))
    if self.dropout_rate > 0:
      y = nn.Dropout(self.dropout_rate, deterministic=not train, name=f"{prefix}_dropout")(y)
    y = layers.ReflectConv(out_features, 3, 1, 1, "reflect", use_bias, _KERNEL_INIT, self.dtype,
                           name=f"{prefix}_conv_1")(y)
    if norm_last:
      y = layers.normalize(y, self.norm, train, f"{prefix}_norm_1")
    return y

  @nn.compact
  def __call__(self, image: jax.Array, pose: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    _check_norm(self.norm)
    channels = image.shape[-1]
    pose_logits = self._path(pose, channels, "pose", norm_last=False, train=train)
    attention = jax.nn.sigmoid(pose_logits.astype(jnp.float32))
    self.sow("intermediates", "attention", attention)
    attended = self._path(image, channels, "image", norm_last=True, train=train)
    image_out = image + (attended.astype(jnp.float32) * attention).astype(image.dtype)
    next_pose = jnp.concatenate([pose_logits.astype(image_out.dtype), image_out], axis=-1)
    return image_out, next_pose


class UpStream(nn.Module):
  """Official `stream1_up`: the decoder on the image stream.

  n_upsampling x (ConvTranspose3x3 s2 p1 output_padding 1 -> norm -> ReLU),
  halving channels and doubling H, W; ReflPad3 conv7x7 -> image_channels (with
  bias, whatever the norm); tanh.

  Attributes:
    n_upsampling: transposed convs (2).
    image_channels: output channels (3).
    norm: 'instance' or 'batch'.
    dtype: compute dtype.

  Shapes: (B, h, w, C) -> (B, h * 2^n, w * 2^n, image_channels), float32 in (-1, 1).
  Parameters (official index): `upsample_{i}` (3i), `output_conv` (3n + 1), and
  for batch norm `upsample_norm_{i}` (3i + 1).
  """
  n_upsampling: int = 2
  image_channels: int = 3
  norm: str = "instance"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    _check_norm(self.norm)
    use_bias = self.norm == "instance"
    channels = x.shape[-1]
    for i in range(self.n_upsampling):
      channels //= 2
      x = layers.ConvTranspose(channels, 3, 2, 1, 1, use_bias, _KERNEL_INIT, self.dtype, name=f"upsample_{i}")(x)
      x = nn.relu(layers.normalize(x, self.norm, train, f"upsample_norm_{i}"))
    x = layers.ReflectConv(self.image_channels, 7, 1, 3, "reflect", True, _KERNEL_INIT, self.dtype,
                           name="output_conv")(x)
    return jnp.tanh(x.astype(jnp.float32))


class PATNGenerator(nn.Module):
  """PATN's generator: source image + source and target pose heatmaps -> target image.

  Attributes (official defaults):
    image_channels: image channels in and out (3).
    pose_channels: keypoint heatmaps per pose (18); the pose stream takes 2x.
    width: `ngf`, channels after each stem (64).
    n_downsampling: stride-2 convs per stream = transposed convs (2).
    n_blocks: PATBs (9, hard-coded officially).
    norm: 'instance' (DeepFashion) or 'batch' (Market).
    dropout_rate: dropout inside every PATB while training (0.5; the official
      `--no_dropout` is never passed).
    dtype: compute dtype; params stay float32, norms run in float32, the image
      comes out float32.

  Call: `(source_image, source_pose, target_pose, train=False)` on NHWC float32
  arrays: source_image (B,H,W,3) in [-1, 1] (`P1`), source_pose and target_pose
  (B,H,W,18) heatmaps (`BP1`, `BP2`); H, W divisible by 2^n_downsampling
  (otherwise the transposed convs cannot restore the size). Returns (B,H,W,3).
  train=True turns dropout on (rng collection 'dropout') and, with batch norm,
  normalises with batch statistics and updates `batch_stats` (pass
  `mutable=['batch_stats']`).

  Variables: {'params'} or, with batch norm, {'params', 'batch_stats'}.
  Official checkpoints go in with `jaxpose.convert`.
  """
  image_channels: int = 3
  pose_channels: int = 18
  width: int = 64
  n_downsampling: int = 2
  n_blocks: int = 9
  norm: str = "instance"
  dropout_rate: float = 0.5
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, source_image: jax.Array, source_pose: jax.Array, target_pose: jax.Array,
               train: bool = False) -> jax.Array:
    _check_norm(self.norm)
    if source_image.shape[-1] != self.image_channels:
      raise ValueError(f"expected {self.image_channels} image channels, got {source_image.shape[-1]}")
    for name, pose in (("source_pose", source_pose), ("target_pose", target_pose)):
      if pose.shape[-1] != self.pose_channels:
        raise ValueError(f"expected {self.pose_channels} {name} channels, got {pose.shape[-1]}")
    factor = 2 ** self.n_downsampling
    if source_image.shape[1] % factor or source_image.shape[2] % factor:
      raise ValueError(f"H and W must be divisible by {factor}, got {source_image.shape[1:3]}")
    image = DownStream(self.width, self.n_downsampling, self.norm, self.dtype, name="image_stream")(
        source_image.astype(self.dtype), train)
    poses = jnp.concatenate([source_pose, target_pose], axis=-1).astype(self.dtype)
    pose = DownStream(self.width, self.n_downsampling, self.norm, self.dtype, name="pose_stream")(poses, train)
    for j in range(self.n_blocks):
      image, pose = PATBlock(self.norm, self.dropout_rate, self.dtype, name=f"block_{j}")(image, pose, train)
    return UpStream(self.n_downsampling, self.image_channels, self.norm, self.dtype, name="decoder")(image, train)


# ----------------------------------------------------------------------------
# Official PyTorch weights (read with jaxpose.io.state_dict's one mapping helper)


def _patn_norm_prefixes(model: PATNGenerator) -> list[tuple[str, tuple[str, ...]]]:
  """(official key prefix, Flax path) of every normalisation layer, in the official order."""
  n_down, (first, second) = model.n_downsampling, discriminator.block_conv_indices(model.dropout_rate > 0)
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


def torch_table(model: PATNGenerator) -> list[sd_lib.Entry]:
  """Official `PATNModel` keys (patn_G_state_dict.tsv) <-> jaxpose.models.patn variables, in the official order.

  With batch norm the convs lose their biases (except the output conv) and
  every norm layer brings weight, bias, running_mean, running_var.
  """
  batch = model.norm == "batch"
  bias = not batch
  n_down, (first, second) = model.n_downsampling, discriminator.block_conv_indices(model.dropout_rate > 0)
  t: list[sd_lib.Entry] = []

  def norm(prefix: str, path: tuple[str, ...]) -> None:
    if batch:
      t.extend(sd_lib.batch_norm(prefix, path))

  for stream, name in (("stream1_down", "image_stream"), ("stream2_down", "pose_stream")):
    t += sd_lib.conv(f"model.{stream}.1", "params", (name, "stem"), bias)
    norm(f"model.{stream}.2", (name, "stem_norm"))
    for i in range(n_down):
      t += sd_lib.conv(f"model.{stream}.{4 + 3 * i}", "params", (name, f"downsample_{i}"), bias)
      norm(f"model.{stream}.{5 + 3 * i}", (name, f"downsample_norm_{i}"))
  for j in range(model.n_blocks):
    block = f"model.att.{j}"
    for stream, path in (("conv_block_stream1", "image"), ("conv_block_stream2", "pose")):
      t += sd_lib.conv(f"{block}.{stream}.{first}", "params", (f"block_{j}", f"{path}_conv_0"), bias)
      norm(f"{block}.{stream}.{first + 1}", (f"block_{j}", f"{path}_norm_0"))
      t += sd_lib.conv(f"{block}.{stream}.{second}", "params", (f"block_{j}", f"{path}_conv_1"), bias)
      if path == "image":  # the pose path ends with the attention logits: no norm
        norm(f"{block}.{stream}.{second + 1}", (f"block_{j}", f"{path}_norm_1"))
  for i in range(n_down):
    t += [sd_lib.Entry(f"model.stream1_up.{3 * i}.weight", "params", ("decoder", f"upsample_{i}", "kernel"),
                       "conv_transpose")]
    if bias:
      t += [sd_lib.Entry(f"model.stream1_up.{3 * i}.bias", "params", ("decoder", f"upsample_{i}", "bias"), "vector")]
    norm(f"model.stream1_up.{3 * i + 1}", ("decoder", f"upsample_norm_{i}"))
  t += sd_lib.conv(f"model.stream1_up.{3 * n_down + 1}", "params", ("decoder", "output_conv"))
  return t


def _torch_known_unused(model: PATNGenerator) -> Callable[[str], str | None]:
  norms = {prefix for prefix, _ in _patn_norm_prefixes(model)}

  def verdict(key: str) -> str | None:
    prefix, _, leaf = key.rpartition(".")
    if prefix not in norms:
      return None
    if leaf == "num_batches_tracked":
      return "ignore"
    if model.norm == "instance" and leaf in ("running_mean", "running_var"):
      return "ignore"  # PyTorch 0.3's InstanceNorm buffers: written, never read (see from_torch).
    return None
  return verdict


def abstract_variables(model: PATNGenerator, height: int = 32, width: int = 32) -> dict:
  """Shapes of the generator's variables, without allocating them."""
  return sd_lib.abstract_variables(model, jnp.zeros((1, height, width, model.image_channels)),
                                   jnp.zeros((1, height, width, model.pose_channels)),
                                   jnp.zeros((1, height, width, model.pose_channels)))


def from_torch(state_dict: Mapping[str, Any], model: PATNGenerator,
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
  verdict = _torch_known_unused(model)
  legacy = [k for k in sd_lib.strip_module_prefix(state_dict) if verdict(k) == "ignore" and "running_" in k]
  variables = sd_lib.state_dict_to_variables(state_dict, torch_table(model), abstract_variables(model),
                                             source=source, known_unused=verdict)
  if legacy:
    layers = len({k.rpartition(".")[0] for k in legacy})
    logging.info("%s: ignored the running_mean/running_var of %d InstanceNorm layers (%d buffers), which "
                 "PyTorch 0.3 saved but instance norm never reads (PATN issue #12)", source, layers, len(legacy))
  return variables


def to_torch(variables: Mapping[str, Any], model: PATNGenerator | None = None, *,
             instance_norm_buffers: bool = False) -> dict[str, np.ndarray]:
  """Flax generator variables -> official netG state_dict (PyTorch layouts, float32 numpy).

  instance_norm_buffers=True also writes the PyTorch 0.3 InstanceNorm
  `running_mean` (zeros) / `running_var` (ones) keys, as old checkpoints have
  them; BatchNorm's `num_batches_tracked` is not written.
  """
  if model is None:
    model = PATNGenerator(**hparams_from_variables(variables))
  collections = ("params", "batch_stats") if model.norm == "batch" else ("params",)
  state_dict = sd_lib.variables_to_state_dict({k: variables[k] for k in collections}, torch_table(model))
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


def hparams_from_torch(state_dict: Mapping[str, Any], source: str = "PATN generator state_dict"
                                 ) -> dict[str, Any]:
  """PATNGenerator constructor kwargs read off the tensor shapes of an official netG state_dict."""
  sd = sd_lib.strip_module_prefix(state_dict)
  image_stem = sd_lib.shape_of(sd, "model.stream1_down.1.weight", source)
  pose_stem = sd_lib.shape_of(sd, "model.stream2_down.1.weight", source)
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


def hparams_from_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
  """PATNGenerator constructor kwargs read off our own variables' shapes (dropout: the official 0.5)."""
  p = variables["params"]
  image_stem = np.shape(p["image_stream"]["stem"]["kernel"])
  # Count the convs only: with batch norm the stream also holds `downsample_norm_{i}`.
  return dict(image_channels=image_stem[2], pose_channels=np.shape(p["pose_stream"]["stem"]["kernel"])[2] // 2,
              width=image_stem[3],
              n_downsampling=sum(1 for k in p["image_stream"] if re.fullmatch(r"downsample_\d+", k)),
              n_blocks=sum(1 for k in p if k.startswith("block_")),
              norm="batch" if "batch_stats" in variables else "instance")


