"""Independent numpy references of Deformable GAN's computations (tests only).

Written from shared/reference/peers.md section 2 in the official style, not
from jaxpose: keypoints as a dict of named (x, y) points, the fits and the
polygons by scikit-image itself, the warp as a per-pixel loop, the networks
in the official Keras layout (NHWC, Keras kernel shapes, weights consumed in
the recorded layer order, each layer a small numpy function), float64.
Agreement with jaxpose is evidence that both follow the description.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
import skimage.measure
import skimage.transform

# The official `pose_utils.LABELS` order.
LABELS = ("nose", "neck", "Rsho", "Relb", "Rwri", "Lsho", "Lelb", "Lwri", "Rhip", "Rkne", "Rank", "Lhip", "Lkne",
          "Lank", "Leye", "Reye", "Lear", "Rear")
NO_POINT = np.array([[1, 0, 1000], [0, 1, 1000], [0, 0, 1]], np.float64)


# ----------------------------------------------------------------------------
# Part transforms and masks (official pose_transform.py semantics)


def named_points(keypoints):
  """(18, 2) (y, x) -> {name: (x, y) float array} without the missing joints."""
  return {name: np.array(keypoints[i][::-1], np.float64) for i, name in enumerate(LABELS)
          if keypoints[i][0] != -1 and keypoints[i][1] != -1}


def torso_size(kp):
  return math.sqrt((np.sum((kp["Rhip"] - kp["Rsho"]) ** 2) + np.sum((kp["Lhip"] - kp["Lsho"]) ** 2)) / 2.0)


def rectangle(start, end, st, inc_to):
  """The official limb polygon (inc_from 0.1, half-widths 0.2 st), vertices (x, y)."""
  start = start + (start - end) * 0.1
  end = end + (end - start) * inc_to
  normal = np.array([-(start - end)[1], (start - end)[0]])
  length = np.linalg.norm(normal)
  if length == 0:
    return np.array([start + 1, start - 1, end - 1, end + 1])
  normal = normal / length
  return np.array([start + st * 0.2 * normal, start - st * 0.2 * normal, end - st * 0.2 * normal,
                   end + st * 0.2 * normal])


def skimage_affine(src, dst):
  """scikit-image's fit src -> dst as a 3x3 matrix, or the no-point matrix where it fails or is singular."""
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    fit = skimage.transform.estimate_transform("affine", src=np.asarray(src), dst=np.asarray(dst))
  params = getattr(fit, "params", None)
  if not fit or params is None or not np.all(np.isfinite(params)) or abs(np.linalg.det(params[:2, :2])) < 1e-9:
    return NO_POINT
  return params


def is_degenerate(points):
  """True if the (x, y) points lie on one line (the fit is then undefined)."""
  centred = np.asarray(points, np.float64) - np.mean(points, axis=0)
  return np.linalg.matrix_rank(centred, tol=1e-9 * max(1.0, np.abs(centred).max())) < 2


LIMBS = (("Rhip", "Rkne"), ("Lhip", "Lkne"), ("Rkne", "Rank"), ("Lkne", "Lank"),
         ("Rsho", "Relb"), ("Lsho", "Lelb"), ("Relb", "Rwri"), ("Lelb", "Lwri"))
LIMB_INC_TRANSFORM = (0.1, 0.1, 0.3, 0.3, 0.1, 0.1, 0.3, 0.3)
LIMB_INC_MASK = (0.1, 0.1, 0.5, 0.5, 0.1, 0.1, 0.5, 0.5)
HEAD = ("nose", "Leye", "Reye", "Lear", "Rear")


def mirror(name):
  return ("L" + name[1:]) if name[0] == "R" else ("R" + name[1:])


def part_fits(source_keypoints, target_keypoints):
  """The official ten fits as a list of (target points, source points) or None (no-point)."""
  kp1, kp2 = named_points(source_keypoints), named_points(target_keypoints)
  st1, st2 = torso_size(kp1), torso_size(kp2)
  body = ["Rhip", "Lhip", "Lsho", "Rsho"]
  fits = [(np.array([kp2[n] for n in body]), np.array([kp1[n] for n in body]))]
  head = [n for n in HEAD if n in kp1 and n in kp2]
  if head:
    head += ["Lsho", "Rsho"]
    fits.append((np.array([kp2[n] for n in head]), np.array([kp1[n] for n in head])))
  else:
    fits.append(None)
  for (fr, to), inc in zip(LIMBS, LIMB_INC_TRANSFORM):
    if fr not in kp2 or to not in kp2:
      fits.append(None)
      continue
    if fr in kp1 and to in kp1:
      source = rectangle(kp1[fr], kp1[to], st1, inc)
    elif mirror(fr) in kp1 and mirror(to) in kp1:
      source = rectangle(kp1[mirror(fr)], kp1[mirror(to)], st1, inc)
    else:
      fits.append(None)
      continue
    fits.append((rectangle(kp2[fr], kp2[to], st2, inc), source))
  return fits


def affine_transforms(source_keypoints, target_keypoints):
  """(10, 8) float64 through scikit-image, no-point where the official gives it."""
  matrices = [NO_POINT if fit is None else skimage_affine(*fit) for fit in part_fits(source_keypoints,
                                                                                       target_keypoints)]
  return np.array(matrices).reshape(-1, 9)[:, :8]


def pose_masks(target_keypoints, image_size):
  """(10, H, W) through scikit-image's `grid_points_in_poly`."""
  kp = named_points(target_keypoints)
  st = torso_size(kp)
  masks = [np.ones(image_size)]
  head = [kp[n] for n in HEAD if n in kp]
  head_mask = np.zeros(image_size)
  if head:
    centre = np.mean(head, axis=0).astype(int)
    r = int(0.4 * st)
    lo = np.maximum(centre - r, 0)
    hi = np.minimum(centre + r, image_size[::-1])
    head_mask[lo[1]:hi[1], lo[0]:hi[0]] = 1
  masks.append(head_mask)
  for (fr, to), inc in zip(LIMBS, LIMB_INC_MASK):
    if fr in kp and to in kp:
      masks.append(skimage.measure.grid_points_in_poly(image_size, rectangle(kp[fr], kp[to], st, inc)[:, ::-1]))
    else:
      masks.append(np.zeros(image_size))
  return np.array(masks, np.float64)


# ----------------------------------------------------------------------------
# The deformable skip (tf.contrib.image.transform, NEAREST, TF 1.x mask resize, max)


def cpp_round(value):
  """std::round of a float32 value (exact: the float64 sum of a float32 and 0.5 does not round)."""
  value = float(value)
  return int(math.copysign(math.floor(abs(value) + 0.5), value))


def affine_transform_layer(features, transforms, masks):
  """features (B, h, w, C), transforms (B, P, 8), masks (B, P, H, W) -> (B, h, w, C), pixel by pixel."""
  batch, h, w, channels = features.shape
  height = masks.shape[2]
  factor = height // h
  out = np.zeros((batch, len(transforms[0]), h, w, channels), np.float64)
  for b in range(batch):
    for p, t in enumerate(np.asarray(transforms, np.float32)[b]):
      a0, a1, a2, b0, b1, b2, c0, c1 = t
      a2 = np.float32(a2) / np.float32(factor)
      b2 = np.float32(b2) / np.float32(factor)
      for y in range(h):
        for x in range(w):
          fx, fy = np.float32(x), np.float32(y)
          k = c0 * fx + c1 * fy + np.float32(1)
          sx = cpp_round((a0 * fx + a1 * fy + a2) / k)
          sy = cpp_round((b0 * fx + b1 * fy + b2) / k)
          if 0 <= sx < w and 0 <= sy < h:
            out[b, p, y, x] = features[b, sy, sx] * masks[b, p, (y * height) // h, (x * masks.shape[3]) // w]
  return out.max(axis=1)


# ----------------------------------------------------------------------------
# Keras layers (NHWC, Keras kernel layouts)


def conv2d(x, kernel, bias=None, stride=1, pad=0):
  """Keras Conv2D after ZeroPadding2D(pad): kernel (kh, kw, in, out)."""
  if pad:
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  kh, kw = kernel.shape[:2]
  windows = sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]  # B h w C kh kw
  y = np.einsum("bhwcij,ijco->bhwo", windows, kernel)
  return y if bias is None else y + bias


def conv2d_transpose_cropped(x, kernel):
  """Keras Conv2DTranspose(4x4, strides 2, 'valid', no bias) then Cropping2D(1); kernel (kh, kw, out, in)."""
  batch, h, w, _ = x.shape
  kh, kw, out_channels, _ = kernel.shape
  full = np.zeros((batch, 2 * (h - 1) + kh, 2 * (w - 1) + kw, out_channels))
  for i in range(h):
    for j in range(w):
      full[:, 2 * i:2 * i + kh, 2 * j:2 * j + kw] += np.einsum("bc,ijoc->bijo", x[:, i, j], kernel)
  return full[:, 1:-1, 1:-1]


def instance_norm(x, gamma, beta, eps=1e-3):
  """keras-contrib InstanceNormalization(axis=None): population std over H, W, C, eps on the std."""
  mean = x.mean(axis=(1, 2, 3), keepdims=True)
  std = np.sqrt(((x - mean) ** 2).mean(axis=(1, 2, 3), keepdims=True))
  return (x - mean) / (std + eps) * gamma + beta


def leaky_relu(x):
  return np.where(x > 0, x, 0.2 * x)


def relu(x):
  return np.maximum(x, 0)


class Weights:
  """Keras weights consumed in recorded layer order: `take(kind)` returns the next layer's arrays."""

  def __init__(self, layers):
    self._layers = list(layers)  # [(kind, [arrays])]

  def take(self, kind):
    got, arrays = self._layers.pop(0)
    assert got == kind, (got, kind)
    return arrays

  def done(self):
    assert not self._layers, f"{len(self._layers)} layers unused"


def down_block(w, x, norm=True):
  """LeakyReLU(0.2) -> ZeroPadding2D(1) -> Conv2D(4x4, s2, no bias) [-> InstanceNormalization]."""
  (kernel,) = w.take("Conv2D")
  x = conv2d(leaky_relu(x), kernel, stride=2, pad=1)
  if norm:
    x = instance_norm(x, *w.take("InstanceNormalization"))
  return x


def up_block(w, x):
  """ReLU -> Conv2DTranspose(4x4, s2, valid) -> Cropping2D(1) -> InstanceNormalization (dropout off)."""
  (kernel,) = w.take("Conv2DTranspose")
  return instance_norm(conv2d_transpose_cropped(relu(x), kernel), *w.take("InstanceNormalization"))


def generator(layers, source_image, source_pose, target_pose, transforms=None, masks=None, num_levels=6,
              return_states=False):
  """The official Keras `make_generator` graph at test time (dropout off), Keras-ordered weights.

  `layers`: [(kind, [arrays])] in recorded order (encoders interleaved
  appearance/pose when warping). With transforms/masks: warp_skip 'mask'.
  """
  w = Weights(layers)
  warp = transforms is not None
  if warp:
    inputs = [np.concatenate([source_image, source_pose], -1), target_pose]
  else:
    inputs = [np.concatenate([source_image, source_pose, target_pose], -1)]
  # Encoders, layer by layer, interleaved across the encoders as the recorded order.
  levels = [[] for _ in inputs]
  outs = list(inputs)
  for e in range(len(inputs)):
    kernel, bias = w.take("Conv2D")
    outs[e] = conv2d(outs[e], kernel, bias, pad=1)
    levels[e].append(outs[e])
  for i in range(1, num_levels):
    kernels = [w.take("Conv2D")[0] for _ in inputs]
    outs = [conv2d(leaky_relu(o), k, stride=2, pad=1) for o, k in zip(outs, kernels)]
    if i < num_levels - 1:
      outs = [instance_norm(o, *w.take("InstanceNormalization")) for o in outs]
    for e in range(len(inputs)):
      levels[e].append(outs[e])
  skips = []
  for i in range(num_levels):
    if warp:
      a = levels[0][i]
      if i < 4:
        a = affine_transform_layer(a, transforms, masks)
      skips.append(np.concatenate([a, levels[1][i]], -1))
    else:
      skips.append(levels[0][i])
  skips = skips[::-1]
  states = []
  out = None
  for i, skip in enumerate(skips):
    x = skip if out is None else np.concatenate([out, skip], -1)
    states.append(x)
    if i == num_levels - 1:
      kernel, bias = w.take("Conv2D")
      image = np.tanh(conv2d(relu(x), kernel, bias, pad=1))
    else:
      out = up_block(w, x)
  w.done()
  return (image, states) if return_states else image


def discriminator(layers, x, num_blocks=3):
  """The official 'call' discriminator up to its logits (before the sigmoid)."""
  w = Weights(layers)
  kernel, bias = w.take("Conv2D")
  x = conv2d(x, kernel, bias, stride=2)
  for _ in range(num_blocks):
    x = down_block(w, x)
  x = down_block(w, x, norm=False)
  w.done()
  return x


# ----------------------------------------------------------------------------
# Losses


def nn_loss(generated, reference, n):
  """The official `nn_loss` (mean of its map): min over the n x n window of sum_c |ref - gen|, ref padded -10000."""
  pad = n // 2
  padded = np.pad(reference, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-10000.0)
  batch, height, width, _ = generated.shape
  out = np.zeros((batch, height, width))
  for b in range(batch):
    for i in range(height):
      for j in range(width):
        window = padded[b, i:i + n, j:j + n]  # n n C
        out[b, i, j] = np.abs(window - generated[b, i, j]).sum(-1).min()
  return out.mean()
