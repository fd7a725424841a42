"""An independent numpy implementation of the official ADGAN/PATN computations.

Written from shared/reference/adgan.md (sections 1, 2) in the official layout:
NCHW activations, OIHW conv weights, (out, in) linear weights, float64, and the
official state_dict key names, looked up directly. It shares no code with
jaxpose.models or jaxpose.convert, so agreement between the two is evidence
that both follow the description, and it mimics the official control flow
(a Python loop over the 8 parsing components, VGG run layer by layer with the
in-place ReLU aliasing, AdaIN parameters consumed module by module).

`mistakes` arguments switch on classic reimplementation errors, so tests can
show that their tolerance would catch each of them.

Also here: builders of random state_dicts with the official key names at any
width (`adgan_generator_state_dict`, `resnet_discriminator_state_dict`).
"""

from __future__ import annotations

import re

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

MISTAKES = (
    "ln_eps_on_variance",    # LayerNorm: (x-m)/sqrt(var+eps) instead of (x-m)/(std+eps)
    "ln_biased_std",         # LayerNorm: std with n instead of n-1
    "adain_gamma_plus_one",  # AdaIN: (1 + gamma) instead of the raw MLP output
    "adain_gamma_first",     # AdaIN: gamma, beta order swapped in the MLP output
    "zero_padding",          # zero instead of reflection padding in G
    "vgg_pre_relu",          # VGG features taken before the ReLU
)


def _check(mistakes):
  unknown = set(mistakes) - set(MISTAKES)
  assert not unknown, unknown


# ----------------------------------------------------------------------------
# Primitive layers (NCHW)


def pad(x, p, mode):
  """mode 'reflect' (ReflectionPad2d) or 'zero'."""
  if p == 0:
    return x
  widths = ((0, 0), (0, 0), (p, p), (p, p))
  return np.pad(x, widths, mode="reflect") if mode == "reflect" else np.pad(x, widths)


def conv2d(x, weight, bias=None, stride=1):
  """PyTorch Conv2d with padding=0: x (N, C, H, W), weight (O, C, kh, kw)."""
  _, _, kh, kw = weight.shape
  windows = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]  # N C H' W' kh kw
  y = np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3]))  # N H' W' O
  y = y.transpose(0, 3, 1, 2)
  if bias is not None:
    y = y + bias[None, :, None, None]
  return y


def conv_transpose2d(x, weight, bias, stride, padding, output_padding):
  """PyTorch ConvTranspose2d, by scattering each input pixel: weight (C_in, C_out, kh, kw)."""
  n, c_in, h, w = x.shape
  _, c_out, kh, kw = weight.shape
  full_h = (h - 1) * stride + kh + output_padding
  full_w = (w - 1) * stride + kw + output_padding
  full = np.zeros((n, c_out, full_h, full_w))
  for i in range(h):
    for j in range(w):
      full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum(
          "nc,cokl->nokl", x[:, :, i, j], weight)
  out_h = (h - 1) * stride - 2 * padding + kh + output_padding
  out_w = (w - 1) * stride - 2 * padding + kw + output_padding
  y = full[:, :, padding:padding + out_h, padding:padding + out_w]
  return y + bias[None, :, None, None]


def relu(x):
  return np.maximum(x, 0)


def instance_norm(x, eps=1e-5):
  mean = x.mean(axis=(2, 3), keepdims=True)
  var = ((x - mean) ** 2).mean(axis=(2, 3), keepdims=True)
  return (x - mean) / np.sqrt(var + eps)


def adaptive_instance_norm(x, weight, bias, eps=1e-5):
  """MUNIT AdaptiveInstanceNorm2d: batch_norm(training=True) on x viewed as (1, B*C, H, W)."""
  b, c, h, w = x.shape
  x_reshaped = x.reshape(1, b * c, h, w)
  mean = x_reshaped.mean(axis=(0, 2, 3))
  var = x_reshaped.var(axis=(0, 2, 3))  # biased, as batch_norm normalises
  out = (x_reshaped - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
  out = out * weight.reshape(-1)[None, :, None, None] + bias.reshape(-1)[None, :, None, None]
  return out.reshape(b, c, h, w)


def munit_layer_norm(x, gamma, beta, eps=1e-5, mistakes=()):
  flat = x.reshape(x.shape[0], -1)
  mean = flat.mean(axis=1)[:, None, None, None]
  ddof = 0 if "ln_biased_std" in mistakes else 1
  std = flat.std(axis=1, ddof=ddof)[:, None, None, None]
  if "ln_eps_on_variance" in mistakes:
    out = (x - mean) / np.sqrt(std ** 2 + eps)
  else:
    out = (x - mean) / (std + eps)
  return out * gamma[None, :, None, None] + beta[None, :, None, None]


def batch_norm_eval(x, weight, bias, running_mean, running_var, eps=1e-5):
  r = lambda v: v[None, :, None, None]
  return (x - r(running_mean)) / np.sqrt(r(running_var) + eps) * r(weight) + r(bias)


def batch_norm_train(x, weight, bias, eps=1e-5):
  """Returns (output, batch mean, unbiased batch variance) as PyTorch's training-mode BatchNorm2d."""
  mean = x.mean(axis=(0, 2, 3))
  var = x.var(axis=(0, 2, 3))
  n = x.shape[0] * x.shape[2] * x.shape[3]
  r = lambda v: v[None, :, None, None]
  return (x - r(mean)) / np.sqrt(r(var) + eps) * r(weight) + r(bias), mean, var * n / (n - 1)


def upsample_nearest(x, factor=2):
  return x.repeat(factor, axis=2).repeat(factor, axis=3)


def max_pool2(x):
  n, c, h, w = x.shape
  x = x[:, :, :h // 2 * 2, :w // 2 * 2]
  return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def linear(x, weight, bias):
  return x @ weight.T + bias


# ----------------------------------------------------------------------------
# torchvision VGG `features`

VGG_CFG = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def vgg_modules(arch):
  """[(index, 'conv'|'relu'|'pool')] as torchvision's make_layers numbers them."""
  mods = []
  for v in VGG_CFG[arch]:
    if v == "M":
      mods.append((len(mods), "pool"))
    else:
      mods.append((len(mods), "conv"))
      mods.append((len(mods), "relu"))
  return mods


def vgg_run(sd, prefix, x, arch, capture, mistakes=()):
  """Runs `features` module by module like ADGAN's get_features.

  capture: {index: name}; the output of module `index` is stored. The ReLU is
  applied IN PLACE (np.maximum(..., out=x)), reproducing nn.ReLU(inplace=True):
  a stored conv output is overwritten by the ReLU that follows, so features
  captured at conv indices end up post-ReLU. With 'vgg_pre_relu' the stored
  tensor is a copy (the classic mistake). The official code runs the whole
  stack; this stops one module after the last capture, so the ReLU following a
  captured conv still runs (nothing later can change a captured tensor).
  """
  feats = {}
  last = max(capture)
  for index, kind in vgg_modules(arch):
    if index > last + 1:
      break
    if kind == "conv":
      x = conv2d(pad(x, 1, "zero"), sd[f"{prefix}{index}.weight"], sd[f"{prefix}{index}.bias"])
    elif kind == "relu":
      np.maximum(x, 0, out=x)
    else:
      x = max_pool2(x)
    if index in capture:
      feats[capture[index]] = x.copy() if "vgg_pre_relu" in mistakes else x
  return feats


def vgg_named_features(sd, prefix, x, arch, names):
  """Post-ReLU features by name ('relu3_2' ...), torchvision numbering found by counting."""
  capture, block, conv_in_block = {}, 1, 0
  for index, kind in vgg_modules(arch):
    if kind == "pool":
      block, conv_in_block = block + 1, 0
    elif kind == "relu":
      conv_in_block += 1
      name = f"relu{block}_{conv_in_block}"
      if name in names:
        capture[index] = name
  return vgg_run(sd, prefix, x.copy(), arch, capture)


# ----------------------------------------------------------------------------
# ADGAN generator (official ADGen.forward(BP2, P1, SP1))


def _conv_block(sd, prefix, x, pad_width, stride, mistakes):
  mode = "zero" if "zero_padding" in mistakes else "reflect"
  return conv2d(pad(x, pad_width, mode), sd[f"{prefix}.conv.weight"], sd[f"{prefix}.conv.bias"], stride)


def _count(sd, pattern):
  return len({m.group(1) for k in sd if (m := re.fullmatch(pattern, k))})


def content_encoder(sd, bp, mistakes=()):
  """enc_content: RefPad3 conv7 IN ReLU, n x (RefPad1 conv4 s2 IN ReLU), ResBlocks(IN)."""
  x = relu(instance_norm(_conv_block(sd, "enc_content.model.0", bp, 3, 1, mistakes)))
  n_down = _count(sd, r"enc_content\.model\.(\d+)\.conv\.weight") - 1
  for i in range(1, n_down + 1):
    x = relu(instance_norm(_conv_block(sd, f"enc_content.model.{i}", x, 1, 2, mistakes)))
  res = f"enc_content.model.{n_down + 1}.model"
  for j in range(_count(sd, re.escape(res) + r"\.(\d+)\.model\.0\.conv\.weight")):
    y = relu(instance_norm(_conv_block(sd, f"{res}.{j}.model.0", x, 1, 1, mistakes)))
    y = instance_norm(_conv_block(sd, f"{res}.{j}.model.1", y, 1, 1, mistakes))
    x = x + y
  return x


def _vgg_arch_of(sd):
  return "vgg19" if "enc_style.vgg.34.weight" in sd or "enc_style.vgg.16.weight" in sd else "vgg16"


def texture_encoder(sd, x, mistakes=()):
  """enc_style.texture_enc on one masked image batch (N, 3, H, W) -> (N, style_dim/8, 1, 1)."""
  arch = _vgg_arch_of(sd)
  # get_features' layer table {'0','5','10','19'} is VGG19's; for VGG16 conv4_1 is index 17.
  capture = {0: "conv1_1", 5: "conv2_1", 10: "conv3_1", 19 if arch == "vgg19" else 17: "conv4_1"}
  feats = vgg_run(sd, "enc_style.vgg.", x.copy(), arch, capture, mistakes)
  h = relu(_conv_block(sd, "enc_style.conv1", x, 3, 1, mistakes))
  h = np.concatenate([h, feats["conv1_1"]], axis=1)
  h = relu(_conv_block(sd, "enc_style.conv2", h, 1, 2, mistakes))
  h = np.concatenate([h, feats["conv2_1"]], axis=1)
  h = relu(_conv_block(sd, "enc_style.conv3", h, 1, 2, mistakes))
  h = np.concatenate([h, feats["conv3_1"]], axis=1)
  h = relu(_conv_block(sd, "enc_style.conv4", h, 1, 2, mistakes))
  h = np.concatenate([h, feats["conv4_1"]], axis=1)
  h = h.mean(axis=(2, 3), keepdims=True)  # AdaptiveAvgPool2d(1)
  return conv2d(h, sd["enc_style.model.1.weight"], sd["enc_style.model.1.bias"])


def style_encoder(sd, p1, sp1, mistakes=()):
  """enc_style.forward: a loop over the parsing components, codes concatenated in label order."""
  codes = []
  for i in range(sp1.shape[1]):
    xi = p1 * sp1[:, i:i + 1]  # the mask broadcasts over the 3 colour channels
    codes.append(texture_encoder(sd, xi, mistakes))
  return np.concatenate(codes, axis=1)  # (B, style_dim, 1, 1)


def mlp_output(sd, style):
  """fc (Linear+ReLU), then MLP: Linear+ReLU, ..., Linear (no activation)."""
  s = relu(linear(style.reshape(style.shape[0], -1), sd["fc.fc.weight"], sd["fc.fc.bias"]))
  n = _count(sd, r"mlp\.model\.(\d+)\.fc\.weight")
  for i in range(n):
    s = linear(s, sd[f"mlp.model.{i}.fc.weight"], sd[f"mlp.model.{i}.fc.bias"])
    if i < n - 1:
      s = relu(s)
  return s


def decoder(sd, content, adain_params, mistakes=()):
  """dec with AdaIN weights assigned like MUNIT's assign_adain_params, module by module."""
  n_res = _count(sd, r"dec\.model\.0\.model\.(\d+)\.model\.0\.conv\.weight")
  remaining = adain_params
  x = content
  def next_adain(c):
    nonlocal remaining
    first, second = remaining[:, :c], remaining[:, c:2 * c]
    remaining = remaining[:, 2 * c:]
    mean, std = (second, first) if "adain_gamma_first" in mistakes else (first, second)
    if "adain_gamma_plus_one" in mistakes:
      std = std + 1
    return std, mean  # (weight, bias)
  for j in range(n_res):
    y = x
    for c in range(2):
      y = _conv_block(sd, f"dec.model.0.model.{j}.model.{c}", y, 1, 1, mistakes)
      weight, bias = next_adain(y.shape[1])
      y = adaptive_instance_norm(y, weight, bias)
      if c == 0:
        y = relu(y)
    x = x + y
  assert remaining.shape[1] == 0, remaining.shape
  n_up = _count(sd, r"dec\.model\.(\d+)\.norm\.gamma")
  for i in range(n_up):
    idx = 2 + 2 * i
    x = upsample_nearest(x)
    x = _conv_block(sd, f"dec.model.{idx}", x, 2, 1, mistakes)
    x = relu(munit_layer_norm(x, sd[f"dec.model.{idx}.norm.gamma"], sd[f"dec.model.{idx}.norm.beta"],
                              mistakes=mistakes))
  x = _conv_block(sd, f"dec.model.{2 + 2 * n_up - 1}", x, 3, 1, mistakes)
  return np.tanh(x)


def decode(sd, bp2, style, mistakes=()):
  return decoder(sd, content_encoder(sd, bp2, mistakes), mlp_output(sd, style), mistakes)


def adgan_generator(sd, bp2, p1, sp1, mistakes=()):
  """netG(BP2, P1, SP1): NCHW float64 in, NCHW out."""
  _check(mistakes)
  sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
  return decode(sd, bp2, style_encoder(sd, p1, sp1, mistakes), mistakes)


# ----------------------------------------------------------------------------
# PATN/ADGAN ResnetDiscriminator (eval: no dropout)


def resnet_discriminator(sd, x, norm="instance", dropout=True, train_batch_norm=False, mistakes=()):
  """ReflPad3 conv7 N ReLU, 2x (conv3 s2 zero-pad1 N ReLU), ResnetBlocks; returns the 256-ch map.

  norm 'instance' or 'batch' (eval: running stats; train_batch_norm=True: batch
  stats, returning also {key: new running value} for momentum 0.1).
  mistakes: ('reflect_stride2',) pads the stride-2 convs by reflection.
  """
  sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
  updates = {}

  def normalise(y, idx):
    if norm == "instance":
      return instance_norm(y)
    w, b = sd[f"{idx}.weight"], sd[f"{idx}.bias"]
    rm, rv = sd[f"{idx}.running_mean"], sd[f"{idx}.running_var"]
    if not train_batch_norm:
      return batch_norm_eval(y, w, b, rm, rv)
    out, mean, var_unbiased = batch_norm_train(y, w, b)
    updates[f"{idx}.running_mean"] = 0.9 * rm + 0.1 * mean
    updates[f"{idx}.running_var"] = 0.9 * rv + 0.1 * var_unbiased
    return out

  def conv(y, key, stride=1):
    return conv2d(y, sd[f"{key}.weight"], sd.get(f"{key}.bias"), stride)

  y = relu(normalise(conv(pad(x, 3, "reflect"), "model.1"), "model.2"))
  idx = 4
  while f"model.{idx}.weight" in sd and sd[f"model.{idx}.weight"].ndim == 4:
    mode = "reflect" if "reflect_stride2" in mistakes else "zero"
    y = relu(normalise(conv(pad(y, 1, mode), f"model.{idx}", 2), f"model.{idx + 1}"))
    idx += 3
  second = 6 if dropout else 5
  while f"model.{idx}.conv_block.1.weight" in sd:
    blk = f"model.{idx}.conv_block"
    z = relu(normalise(conv(pad(y, 1, "reflect"), f"{blk}.1"), f"{blk}.2"))
    z = normalise(conv(pad(z, 1, "reflect"), f"{blk}.{second}"), f"{blk}.{second + 1}")
    y = y + z
    idx += 1
  return (y, updates) if train_batch_norm else y


# ----------------------------------------------------------------------------
# Random state_dicts with the official key names


def _conv_weights(rng, sd, key, c_out, c_in, k, bias=True, gain=2.0):
  sd[f"{key}.weight"] = (rng.normal(size=(c_out, c_in, k, k)) * np.sqrt(gain / (c_in * k * k))).astype(np.float32)
  if bias:
    sd[f"{key}.bias"] = (0.1 * rng.normal(size=(c_out,))).astype(np.float32)


def vgg_state_dict(rng, arch="vgg19", widths=(64, 128, 256, 512, 512), prefix="features."):
  """Random torchvision-numbered VGG conv weights under `prefix`."""
  sd, c_in, block = {}, 3, 0
  for index, kind in vgg_modules(arch):
    if kind == "pool":
      block += 1
      if block == len(widths):
        break
    elif kind == "conv":
      _conv_weights(rng, sd, f"{prefix}{index}", widths[block], c_in, 3)
      c_in = widths[block]
  return sd


def adgan_generator_state_dict(rng, *, pose_channels=18, parsing_channels=8, width=64, style_dim=512,
                               n_downsample=2, n_res=8, mlp_dim=256, vgg_arch="vgg19",
                               vgg_widths=(64, 128, 256, 512, 512), image_channels=3):
  """Random netG state_dict with the official keys (adgan_G_state_dict.tsv at the defaults).

  vgg_widths has 5 entries: the official checkpoint carries the whole VGG19.
  """
  sd = vgg_state_dict(rng, vgg_arch, vgg_widths, "enc_style.vgg.")
  _conv_weights(rng, sd, "enc_style.conv1.conv", width, 3, 7)
  dim = width
  for i, v in zip(range(2, 5), vgg_widths):
    _conv_weights(rng, sd, f"enc_style.conv{i}.conv", 2 * dim, dim + v, 4)
    dim *= 2
  _conv_weights(rng, sd, "enc_style.model.1", style_dim // parsing_channels, dim + vgg_widths[3], 1, gain=1.0)
  _conv_weights(rng, sd, "enc_content.model.0.conv", width, pose_channels, 7)
  dim = width
  for i in range(n_downsample):
    _conv_weights(rng, sd, f"enc_content.model.{1 + i}.conv", 2 * dim, dim, 4)
    dim *= 2
  for j in range(n_res):
    for c in range(2):
      _conv_weights(rng, sd, f"enc_content.model.{1 + n_downsample}.model.{j}.model.{c}.conv", dim, dim, 3)
  for j in range(n_res):
    for c in range(2):
      key = f"dec.model.0.model.{j}.model.{c}"
      sd[f"{key}.norm.running_mean"] = np.zeros((dim,), np.float32)
      sd[f"{key}.norm.running_var"] = np.ones((dim,), np.float32)
      _conv_weights(rng, sd, f"{key}.conv", dim, dim, 3)
  for i in range(n_downsample):
    key = f"dec.model.{2 + 2 * i}"
    sd[f"{key}.norm.gamma"] = rng.uniform(0.5, 1.5, size=(dim // 2,)).astype(np.float32)
    sd[f"{key}.norm.beta"] = (0.1 * rng.normal(size=(dim // 2,))).astype(np.float32)
    _conv_weights(rng, sd, f"{key}.conv", dim // 2, dim, 5)
    dim //= 2
  _conv_weights(rng, sd, f"dec.model.{1 + 2 * n_downsample}.conv", image_channels, dim, 7, gain=1.0)
  sd["fc.fc.weight"] = (rng.normal(size=(style_dim, style_dim)) * np.sqrt(2 / style_dim)).astype(np.float32)
  sd["fc.fc.bias"] = (0.1 * rng.normal(size=(style_dim,))).astype(np.float32)
  num_adain = n_res * 2 * 2 * width * 2 ** n_downsample
  for i, (c_out, c_in) in enumerate([(mlp_dim, style_dim), (mlp_dim, mlp_dim), (num_adain, mlp_dim)]):
    sd[f"mlp.model.{i}.fc.weight"] = (rng.normal(size=(c_out, c_in)) * np.sqrt(1 / c_in)).astype(np.float32)
    sd[f"mlp.model.{i}.fc.bias"] = (0.1 * rng.normal(size=(c_out,))).astype(np.float32)
  return sd


def resnet_discriminator_state_dict(rng, in_channels, *, width=64, n_downsampling=2, n_blocks=3,
                                    norm="instance", dropout=True):
  """Random ResnetDiscriminator state_dict (model.{i} keys of nn.Sequential)."""
  sd = {}
  bias = norm == "instance"

  def bn(key, c):
    if norm == "batch":
      sd[f"{key}.weight"] = rng.uniform(0.5, 1.5, size=(c,)).astype(np.float32)
      sd[f"{key}.bias"] = (0.1 * rng.normal(size=(c,))).astype(np.float32)
      sd[f"{key}.running_mean"] = (0.1 * rng.normal(size=(c,))).astype(np.float32)
      sd[f"{key}.running_var"] = rng.uniform(0.5, 2.0, size=(c,)).astype(np.float32)
      sd[f"{key}.num_batches_tracked"] = np.array(7, np.int64)

  _conv_weights(rng, sd, "model.1", width, in_channels, 7, bias)
  bn("model.2", width)
  dim, idx = width, 4
  for _ in range(n_downsampling):
    _conv_weights(rng, sd, f"model.{idx}", 2 * dim, dim, 3, bias)
    bn(f"model.{idx + 1}", 2 * dim)
    dim, idx = 2 * dim, idx + 3
  second = 6 if dropout else 5
  for _ in range(n_blocks):
    _conv_weights(rng, sd, f"model.{idx}.conv_block.1", dim, dim, 3, bias)
    bn(f"model.{idx}.conv_block.2", dim)
    _conv_weights(rng, sd, f"model.{idx}.conv_block.{second}", dim, dim, 3, bias)
    bn(f"model.{idx}.conv_block.{second + 1}", dim)
    idx += 1
  return sd


# ----------------------------------------------------------------------------
# PATN generator (official PATNModel: model.stream1_down / stream2_down / att / stream1_up),
# written from shared/reference/peers.md 1.1. NCHW, float64, official keys looked up directly.

PATN_MISTAKES = (
    "mask_in_concat",        # next pose input = concat(sigmoid mask, ...) instead of the logits
    "image_first_concat",    # concat(updated image, logits) instead of concat(logits, updated image)
    "no_residual",           # image_out = attended path alone, without + image
    "norm_on_logits",        # a norm after the pose path's last conv
    "reflect_stride2",       # reflection instead of zero padding in the stride-2 convs
    "transposed_as_upsample",  # nearest x2 + conv instead of the transposed conv
)


def _patn_check(mistakes):
  unknown = set(mistakes) - set(PATN_MISTAKES)
  assert not unknown, unknown


class PatnNorm:
  """The norm of one PATN forward pass: 'instance', or 'batch' in eval mode (running
  statistics) or train mode (batch statistics; the new running values, momentum
  0.1 with the unbiased variance as PyTorch, are collected in `updates`)."""

  def __init__(self, sd, norm, train_batch_norm=False):
    self.sd, self.norm, self.train = sd, norm, train_batch_norm
    self.updates = {}

  def __call__(self, x, key):
    if self.norm == "instance":
      return instance_norm(x)
    sd = self.sd
    w, b, rm, rv = (sd[f"{key}.{n}"] for n in ("weight", "bias", "running_mean", "running_var"))
    if not self.train:
      return batch_norm_eval(x, w, b, rm, rv)
    out, mean, var_unbiased = batch_norm_train(x, w, b)
    self.updates[f"{key}.running_mean"] = 0.9 * rm + 0.1 * mean
    self.updates[f"{key}.running_var"] = 0.9 * rv + 0.1 * var_unbiased
    return out


def _patn_conv(sd, key, x, stride=1):
  return conv2d(x, sd[f"{key}.weight"], sd.get(f"{key}.bias"), stride)


def patn_down_stream(sd, stream, x, normalise, mistakes=()):
  """model.<stream> = [ReflPad3, Conv7, N, ReLU, (Conv3 s2 zero-pad 1, N, ReLU) x n]."""
  y = relu(normalise(_patn_conv(sd, f"model.{stream}.1", pad(x, 3, "reflect")), f"model.{stream}.2"))
  idx = 4
  while f"model.{stream}.{idx}.weight" in sd:
    mode = "reflect" if "reflect_stride2" in mistakes else "zero"
    y = relu(normalise(_patn_conv(sd, f"model.{stream}.{idx}", pad(y, 1, mode), 2), f"model.{stream}.{idx + 1}"))
    idx += 3
  return y


def patn_block(sd, j, x1, x2, normalise, mistakes=()):
  """model.att.<j>.forward(x1, x2) -> (out, concat, attention).

  stream1 = [ReflPad1, Conv, N, ReLU, Dropout, ReflPad1, Conv, N];
  stream2 = [ReflPad1, Conv, N, ReLU, Dropout, ReflPad1, Conv] (eval: dropout
  is the identity; indices shift by one when the file has no dropout).
  """
  blk = f"model.att.{j}"
  second = 6 if np.ndim(sd.get(f"{blk}.conv_block_stream1.6.weight")) == 4 else 5  # a BatchNorm weight is 1-D

  def stream(name, x, norm_last):
    y = relu(normalise(_patn_conv(sd, f"{blk}.{name}.1", pad(x, 1, "reflect")), f"{blk}.{name}.2"))
    y = _patn_conv(sd, f"{blk}.{name}.{second}", pad(y, 1, "reflect"))
    if norm_last:
      y = normalise(y, f"{blk}.{name}.{second + 1}")
    return y

  x2_out = stream("conv_block_stream2", x2, norm_last=False)
  if "norm_on_logits" in mistakes:
    x2_out = instance_norm(x2_out)
  att = 1.0 / (1.0 + np.exp(-x2_out))
  x1_out = stream("conv_block_stream1", x1, norm_last=True) * att
  out = x1_out if "no_residual" in mistakes else x1 + x1_out
  first = att if "mask_in_concat" in mistakes else x2_out
  concat = np.concatenate([out, first] if "image_first_concat" in mistakes else [first, out], axis=1)
  return out, concat, att


def patn_up_stream(sd, x, normalise, mistakes=()):
  """model.stream1_up = [(ConvT3 s2 p1 op1, N, ReLU) x n, ReflPad3, Conv7 (bias), Tanh].

  n = the number of downsampling convs of stream1_down (the decoder mirrors it).
  """
  n = 0
  while f"model.stream1_down.{4 + 3 * n}.weight" in sd:
    n += 1
  for i in range(n):
    w = sd[f"model.stream1_up.{3 * i}.weight"]  # (C_in, C_out, kh, kw)
    b = sd.get(f"model.stream1_up.{3 * i}.bias", np.zeros(w.shape[1]))
    if "transposed_as_upsample" in mistakes:
      y = conv2d(pad(upsample_nearest(x), 1, "zero"), w.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], b)
    else:
      y = conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    x = relu(normalise(y, f"model.stream1_up.{3 * i + 1}"))
  return np.tanh(_patn_conv(sd, f"model.stream1_up.{3 * n + 1}", pad(x, 3, "reflect")))


def patn_generator(sd, p1, bp1, bp2, train_batch_norm=False, mistakes=(), return_attention=False):
  """netG([P1, concat(BP1, BP2)]) in eval mode (dropout off): NCHW float64 in, NCHW out.

  The norm is read off the keys (BatchNorm has weights, InstanceNorm none);
  train_batch_norm=True returns (image, {running-stat key: new value}).
  return_attention=True also returns the list of per-block attention masks.
  """
  _patn_check(mistakes)
  sd = {k: np.asarray(v, np.float64) for k, v in sd.items()}
  if sd and all(k.startswith("module.") for k in sd):
    sd = {k[len("module."):]: v for k, v in sd.items()}
  normalise = PatnNorm(sd, "batch" if "model.stream1_down.2.weight" in sd else "instance", train_batch_norm)
  x1 = patn_down_stream(sd, "stream1_down", p1, normalise, mistakes)
  x2 = patn_down_stream(sd, "stream2_down", np.concatenate([bp1, bp2], axis=1), normalise, mistakes)
  attention = []
  j = 0
  while f"model.att.{j}.conv_block_stream1.1.weight" in sd:
    x1, x2, att = patn_block(sd, j, x1, x2, normalise, mistakes)
    attention.append(att)
    j += 1
  out = patn_up_stream(sd, x1, normalise, mistakes)
  result = (out, normalise.updates) if train_batch_norm else out
  return (result, attention) if return_attention else result


def patn_generator_state_dict(rng, *, image_channels=3, pose_channels=18, width=64, n_downsampling=2,
                              n_blocks=9, norm="instance", dropout=True, instance_norm_buffers=False):
  """Random netG state_dict with the official keys, in the official order (patn_G_state_dict.tsv
  at the defaults). instance_norm_buffers: add the running_mean/var of every InstanceNorm2d, as
  PyTorch 0.3 saved them; batch norm brings weight, bias, running stats and num_batches_tracked."""
  sd = {}
  bias = norm == "instance"

  def norm_layer(key, c):
    if norm == "batch":
      sd[f"{key}.weight"] = rng.uniform(0.5, 1.5, size=(c,)).astype(np.float32)
      sd[f"{key}.bias"] = (0.1 * rng.normal(size=(c,))).astype(np.float32)
      sd[f"{key}.running_mean"] = (0.1 * rng.normal(size=(c,))).astype(np.float32)
      sd[f"{key}.running_var"] = rng.uniform(0.5, 2.0, size=(c,)).astype(np.float32)
      sd[f"{key}.num_batches_tracked"] = np.array(11, np.int64)
    elif instance_norm_buffers:
      sd[f"{key}.running_mean"] = np.zeros((c,), np.float32)
      sd[f"{key}.running_var"] = np.ones((c,), np.float32)

  for stream, c_in in (("stream1_down", image_channels), ("stream2_down", 2 * pose_channels)):
    _conv_weights(rng, sd, f"model.{stream}.1", width, c_in, 7, bias)
    norm_layer(f"model.{stream}.2", width)
    dim = width
    for i in range(n_downsampling):
      _conv_weights(rng, sd, f"model.{stream}.{4 + 3 * i}", 2 * dim, dim, 3, bias)
      norm_layer(f"model.{stream}.{5 + 3 * i}", 2 * dim)
      dim *= 2
  second = 6 if dropout else 5
  for j in range(n_blocks):
    blk = f"model.att.{j}"
    _conv_weights(rng, sd, f"{blk}.conv_block_stream1.1", dim, dim, 3, bias)
    norm_layer(f"{blk}.conv_block_stream1.2", dim)
    _conv_weights(rng, sd, f"{blk}.conv_block_stream1.{second}", dim, dim, 3, bias, gain=1.0)
    norm_layer(f"{blk}.conv_block_stream1.{second + 1}", dim)
    pose_dim = dim if j == 0 else 2 * dim
    _conv_weights(rng, sd, f"{blk}.conv_block_stream2.1", pose_dim, pose_dim, 3, bias)
    norm_layer(f"{blk}.conv_block_stream2.2", pose_dim)
    _conv_weights(rng, sd, f"{blk}.conv_block_stream2.{second}", dim, pose_dim, 3, bias, gain=1.0)
  for i in range(n_downsampling):
    key = f"model.stream1_up.{3 * i}"
    sd[f"{key}.weight"] = (rng.normal(size=(dim, dim // 2, 3, 3)) * np.sqrt(2.0 / (dim * 9 / 4))).astype(np.float32)
    if bias:
      sd[f"{key}.bias"] = (0.1 * rng.normal(size=(dim // 2,))).astype(np.float32)
    norm_layer(f"model.stream1_up.{3 * i + 1}", dim // 2)
    dim //= 2
  _conv_weights(rng, sd, f"model.stream1_up.{3 * n_downsampling + 1}", image_channels, dim, 7, gain=1.0)
  return sd
