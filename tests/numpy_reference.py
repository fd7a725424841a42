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
