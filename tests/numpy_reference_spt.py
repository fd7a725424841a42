"""Independent numpy references of SPT's released computations (tests only).

Written from the release (SijieSong/person_generation_spt: GlobalLocalPRDemo_
models.py, util/pose_transform.py, models/networks.py, GramMatrix_bodypart.py)
as summarised in shared/reference/peers.md section 4, in its own style and not
from jaxpose: NCHW float64 arrays, weights looked up by the release's
state_dict keys, PyTorch layer semantics spelled out per layer (`affine_grid`
and `grid_sample` as loops over pixels, OpenCV's bilinear resize by its
formula, InstanceNorm3d on the unsqueezed map). Agreement with jaxpose is
evidence that both follow the release.
"""

from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------
# Layers (NCHW)


def conv2d(x, weight, bias=None, stride=1, padding=0):
  """PyTorch Conv2d: x (N, C, H, W), weight (O, C, kh, kw)."""
  x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
  n, c, h, w = x.shape
  o, _, kh, kw = weight.shape
  out_h, out_w = (h - kh) // stride + 1, (w - kw) // stride + 1
  out = np.zeros((n, o, out_h, out_w))
  for i in range(kh):
    for j in range(kw):
      patch = x[:, :, i:i + stride * out_h:stride, j:j + stride * out_w:stride]
      out += np.einsum("nchw,oc->nohw", patch, weight[:, :, i, j])
  if bias is not None:
    out += bias[None, :, None, None]
  return out


def conv_transpose2d_crop1(x, weight):
  """ConvTranspose2d(k4, s2, no padding, no bias) followed by Cropping2D(1); weight (C_in, C_out, 4, 4)."""
  n, c, h, w = x.shape
  _, o, kh, kw = weight.shape
  out = np.zeros((n, o, (h - 1) * 2 + kh, (w - 1) * 2 + kw))
  for i in range(kh):
    for j in range(kw):
      out[:, :, i:i + 2 * h:2, j:j + 2 * w:2] += np.einsum("nchw,co->nohw", x, weight[:, :, i, j])
  return out[:, :, 1:-1, 1:-1]


def instance_norm3d_1(x, weight, bias, eps=1e-3):
  """`InstanceNorm3d(1, eps, affine=True)(x.unsqueeze(1)).squeeze(1)`: statistics over C, H, W."""
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  var = x.var(axis=(1, 2, 3), keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * weight[0] + bias[0]


def instance_norm2d(x, eps=1e-5):
  """InstanceNorm2d(affine=False) in training mode: per sample and channel."""
  mean = x.mean(axis=(2, 3), keepdims=True)
  var = x.var(axis=(2, 3), keepdims=True)
  return (x - mean) / np.sqrt(var + eps)


def leaky_relu(x, slope=0.2):
  return np.where(x > 0, x, slope * x)


def relu(x):
  return np.maximum(x, 0)



def avg_pool2(x):
  n, c, h, w = x.shape
  return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def block(sd, prefix, x, down=True, bn=True, leaky=True):
  """The release's `Block` (no dropout: test mode)."""
  x = leaky_relu(x) if leaky else relu(x)
  if down:
    x = conv2d(x, sd[f"{prefix}.net.1.weight"], stride=2, padding=1)
    norm = f"{prefix}.net.2"
  else:
    x = conv_transpose2d_crop1(x, sd[f"{prefix}.net.1.weight"])
    norm = f"{prefix}.net.3"
  if bn:
    x = instance_norm3d_1(x, sd[f"{norm}.weight"], sd[f"{norm}.bias"])
  return x


# ----------------------------------------------------------------------------
# The warp


def cv2_resize_linear(mask, out_h, out_w):
  """cv2.resize(mask (H, W), (out_w, out_h)) with INTER_LINEAR on float data, by its formula."""
  in_h, in_w = mask.shape
  if (in_h, in_w) == (out_h, out_w):
    return mask.copy()
  out = np.zeros((out_h, out_w))
  for i in range(out_h):
    sy = max((i + 0.5) * in_h / out_h - 0.5, 0.0)
    y0 = int(np.floor(sy))
    fy = sy - y0
    y0 = min(y0, in_h - 1)
    y1 = min(y0 + 1, in_h - 1)
    for j in range(out_w):
      sx = max((j + 0.5) * in_w / out_w - 0.5, 0.0)
      x0 = int(np.floor(sx))
      fx = sx - x0
      x0 = min(x0, in_w - 1)
      x1 = min(x0 + 1, in_w - 1)
      out[i, j] = ((1 - fy) * ((1 - fx) * mask[y0, x0] + fx * mask[y0, x1])
                   + fy * ((1 - fx) * mask[y1, x0] + fx * mask[y1, x1]))
  return out


def release_theta(transform, h, w):
  """The release's `normalize_transforms(transforms, H, W)`, literally (right for square maps only)."""
  t = np.array(transform[:6], np.float64).reshape(2, 3)
  t[0, 1] = t[0, 1] * w / h
  t[0, 2] = t[0, 2] * 2 / h + t[0, 0] + t[0, 1] - 1
  t[1, 0] = t[1, 0] * h / w
  t[1, 2] = t[1, 2] * 2 / w + t[1, 0] + t[1, 1] - 1
  return t


def affine_grid_sample(feature, theta):
  """F.affine_grid + F.grid_sample (bilinear, zeros, align_corners=True), pixel by pixel: (C, h, w)."""
  c, h, w = feature.shape
  xs = np.linspace(-1, 1, w) if w > 1 else np.array([-1.0])
  ys = np.linspace(-1, 1, h) if h > 1 else np.array([-1.0])
  out = np.zeros((c, h, w))
  for i in range(h):
    for j in range(w):
      gx, gy = theta @ np.array([xs[j], ys[i], 1.0])
      ix, iy = (gx + 1) / 2 * (w - 1), (gy + 1) / 2 * (h - 1)
      x0, y0 = int(np.floor(ix)), int(np.floor(iy))
      for yy, wy in ((y0, 1 - (iy - y0)), (y0 + 1, iy - y0)):
        for xx, wx in ((x0, 1 - (ix - x0)), (x0 + 1, ix - x0)):
          if 0 <= xx < w and 0 <= yy < h:
            out[:, i, j] += wy * wx * feature[:, yy, xx]
  return out


def affine_transform_layer(x, warps, masks, init_size):
  """`AffineTransformLayer(P, init_size, 'mask')`: x (N, C, h, w), warps (N, P, 8), masks (N, P, H0, W0)."""
  n, c, h, w = x.shape
  affine_mul = np.array([1, 1, init_size[0] // h, 1, 1, init_size[1] // w, 1, 1], np.float64)
  out = np.full((n, c, h, w), -np.inf)
  for b in range(n):
    for p in range(warps.shape[1]):
      warped = affine_grid_sample(x[b], release_theta(warps[b, p] / affine_mul, h, w))
      mask = cv2_resize_linear(masks[b, p].astype(np.float64), h, w) if masks is not None else 1.0
      out[b] = np.maximum(out[b], warped * mask)
  return out


# ----------------------------------------------------------------------------
# Networks


def encoder(sd, prefix, x, levels, fade_in=None, alpha=0.0):
  out = conv2d(x, sd[f"{prefix}.net.0.weight"], sd[f"{prefix}.net.0.bias"], padding=1)
  if fade_in is not None:
    out = (1 - alpha) * out + alpha * fade_in
  outputs = [out]
  for i in range(1, levels):
    out = block(sd, f"{prefix}.net.{i}", out, down=True, bn=i < levels - 1)
    outputs.append(out)
  return outputs


def local_encoder(sd, prefix, x):
  first = conv2d(x, sd[f"{prefix}.net.0.weight"], sd[f"{prefix}.net.0.bias"], padding=1)
  return [first, block(sd, f"{prefix}.net.1", first, down=True, bn=True)]


def decoder(sd, prefix, skips, levels, upsample):
  """The release's `decoder.forward` (skips finest first); returns (out, feat)."""
  out = None
  for i in range(levels):
    if i == 0:
      out = block(sd, f"{prefix}.net.0", skips[-1], down=False, leaky=False)
    elif i < levels - 1:
      out = block(sd, f"{prefix}.net.{i}", np.concatenate([out, skips[-(i + 1)]], 1), down=False, leaky=False)
    else:
      feat = out
      out = np.concatenate([out, skips[0]], 1)
      if upsample:
        out = out.repeat(2, axis=2).repeat(2, axis=3)
      out = conv2d(relu(out), sd[f"{prefix}.net.{levels}.weight"], sd[f"{prefix}.net.{levels}.bias"], padding=1)
  return np.tanh(out), feat


def global_generator(sd, prefix, app_input, target_input, warps, masks, levels, upsample, fade_app=None,
                     fade_pose=None, alpha=0.0):
  size = app_input.shape[2:]
  skips_app = encoder(sd, f"{prefix}encoder_app", app_input, levels, fade_app, alpha)
  skips_pose = encoder(sd, f"{prefix}encoder_pose", target_input, levels, fade_pose, alpha)
  skips = []
  for i, (a, p) in enumerate(zip(skips_app, skips_pose)):
    if i < 4:
      a = affine_transform_layer(a, warps, masks, size)
    skips.append(np.concatenate([a, p], 1))
  out, feat = decoder(sd, f"{prefix}decoder", skips, levels, upsample)
  return out, feat, skips


def local_generator(sd, inputs, half, levels, alpha):
  """The release's `Local_Generator.forward`; inputs/half: dicts of NCHW arrays (image, parsing, pose,
  target_parsing, target_pose) and warps (N, 10, 8), masks (N, 10, H, W)."""
  app = np.concatenate([inputs["image"], inputs["parsing"], inputs["pose"]], 1)
  target = np.concatenate([inputs["target_pose"], inputs["target_parsing"]], 1)
  size = app.shape[2:]
  local_app = local_encoder(sd, "model_local_encoder_app", app)
  local_pose = local_encoder(sd, "model_local_encoder_pose", target)
  skip_full = np.concatenate([affine_transform_layer(local_app[0], inputs["warps"], inputs["masks"], size),
                              local_pose[0]], 1)
  half_app = np.concatenate([half["image"], half["parsing"], half["pose"]], 1)
  half_target = np.concatenate([half["target_pose"], half["target_parsing"]], 1)
  global_out, feat, global_skips = global_generator(sd, "model_global.", half_app, half_target, half["warps"],
                                                    half["masks"], levels, True, local_app[1], local_pose[1],
                                                    alpha)
  skip_half = np.concatenate([feat, global_skips[0]], 1)
  out = block(sd, "model_local_decoder.net.0", skip_half, down=False, leaky=False)
  out = np.concatenate([out, skip_full], 1)
  out = np.tanh(conv2d(relu(out), sd["model_local_decoder.net.2.weight"], sd["model_local_decoder.net.2.bias"],
                       padding=1))
  return alpha * out + (1 - alpha) * global_out


def nlayer_discriminator(sd, x, n_layers=3, fade_in=False, alpha=0.0):
  """`NLayerDiscriminator` (instance norm, LSGAN) or `NLayerDiscriminator_fadein.forward`."""
  if fade_in:
    low = leaky_relu(conv2d(avg_pool2(x), sd["model.0.weight"], sd["model.0.bias"], stride=2, padding=1))
    high = avg_pool2(leaky_relu(conv2d(x, sd["model_256.0.weight"], sd["model_256.0.bias"], stride=2,
                                       padding=1)))
    h = low * (1 - alpha) + high * alpha
  else:
    h = leaky_relu(conv2d(x, sd["model.0.weight"], sd["model.0.bias"], stride=2, padding=1))
  for n in range(1, n_layers + 1):
    stride = 2 if n < n_layers else 1
    h = conv2d(h, sd[f"model.{3 * n - 1}.weight"], sd[f"model.{3 * n - 1}.bias"], stride=stride, padding=1)
    h = leaky_relu(instance_norm2d(h))
  k = 3 * n_layers + 2
  return conv2d(h, sd[f"model.{k}.weight"], sd[f"model.{k}.bias"], padding=1)


# ----------------------------------------------------------------------------
# Losses


def gram(features):
  """`gram_matrix`: (N, C, H, W) -> (N, C, C) / (H W)."""
  n, c, h, w = features.shape
  f = features.reshape(n, c, h * w)
  return f @ f.transpose(0, 2, 1) / (h * w)


def patch_gram_matrix(features, masks):
  """`patch_gram_matrix(input, pose_map)`: the Gram of the features masked by each of the first 8 maps."""
  return np.stack([gram(features * masks[:, i:i + 1]) for i in range(8)], axis=1)
