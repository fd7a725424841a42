"""SSIM in its three incompatible published variants, plus PSNR and L1.

All functions take batches of RGB images (B, H, W, 3), uint8 or float on the
[0, 255] scale, and return one value per image, shape (B,); the published
number is the mean over the test pairs. The heavy part is jitted jnp.

The variants (shared/reference/evaluation.md 2.1):
  * `ssim_patn`: PATN / ADGAN / XingGAN `getMetrics_*.py`, i.e. skimage
    `compare_ssim(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    multichannel=True, data_range=gen.max() - gen.min())` on uint8 images. For
    DeepFashion the official script first pads both images with 40 white columns
    per side (`pad_white=True`), which inflates SSIM: the white bands match
    perfectly.
  * `ssim_256`: GFLA's "SSIM_256" (also DPTN, CFLD): the same formula without
    padding; PIDM/PCDMs use sigma=1.2.
  * `ssim_gfla`: GFLA's "SSIM": 51x51 uniform window, sample covariance, on
    [0, 1] floats with data_range 1.
  * `mask_ssim`: Market's mask-SSIM: `ssim_patn` of both images multiplied by the
    target-keypoint body mask (`masks.body_masks`).

skimage evaluates the filters everywhere (reflect padding) and then crops
(win_size - 1) / 2 pixels per side before averaging; that crop removes exactly
the pixels whose window touches the padding, so a 'valid' filter gives the same
numbers with no padding logic at all.
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxpose.metrics import masks as masks_lib

K1 = 0.01
K2 = 0.03
WHITE_PAD = 40
"""Columns of white the official DeepFashion script adds on each side (`addBounding`)."""


def gaussian_taps(sigma: float, truncate: float = 3.5) -> tuple[float, ...]:
  """Normalised 1-D Gaussian window, as scipy.ndimage.gaussian_filter builds it.

  skimage's SSIM uses truncate 3.5, so the radius is int(3.5 * sigma + 0.5):
  11 taps for sigma 1.5, 9 taps for sigma 1.2.
  """
  radius = int(truncate * sigma + 0.5)
  x = np.arange(-radius, radius + 1, dtype=np.float64)
  w = np.exp(-0.5 * x**2 / sigma**2)
  return tuple(float(v) for v in w / w.sum())


def _filter_valid(x: jax.Array, taps: Sequence[float]) -> jax.Array:
  """Separable 'valid' correlation over H and W of (B, H, W, C) with a 1-D window.

  A sum of shifted slices rather than lax.conv: plain float32 multiply-adds on
  every backend (GPU convolutions may silently use TF32), which XLA fuses.
  """
  k = len(taps)
  h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
  rows = sum(t * x[:, i:i + h] for i, t in enumerate(taps))
  return sum(t * rows[:, :, i:i + w] for i, t in enumerate(taps))


_TWO_PASS_MAX_TAPS = 15


def _moments_two_pass(x, y, taps):
  """Local means, variances and covariance, variances as sum_k w_k (x_k - mean)^2.

  float32 precision: the textbook E[x^2] - E[x]^2 cancels badly when the local
  mean is large and the local variance small (smooth regions of [0, 255]
  images, against C2 = (0.03 * 255)^2 = 58.5), which costs up to ~4e-6 in
  the mean SSIM. Subtracting the local mean first keeps every term small; it
  needs the full 2-D window (121 taps for sigma 1.5); on CPU it runs at about the
  speed of the separable one-pass version (0.5 s for 8 images of 256x256).
  """
  ux = _filter_valid(x, taps)
  uy = _filter_valid(y, taps)
  k = len(taps)
  h, w = ux.shape[1], ux.shape[2]
  weights = np.outer(np.asarray(taps), np.asarray(taps)).astype(np.float32)

  def window_row(a, sums):
    # One row offset of the window per iteration (a loop keeps compile time
    # low); the k column offsets are unrolled.
    vx, vy, vxy = sums
    xa = lax.dynamic_slice_in_dim(x, a, h, axis=1)
    ya = lax.dynamic_slice_in_dim(y, a, h, axis=1)
    row_weights = jnp.asarray(weights)[a]
    for b in range(k):
      dx = xa[:, :, b:b + w] - ux
      dy = ya[:, :, b:b + w] - uy
      vx = vx + row_weights[b] * (dx * dx)
      vy = vy + row_weights[b] * (dy * dy)
      vxy = vxy + row_weights[b] * (dx * dy)
    return vx, vy, vxy

  zeros = jnp.zeros_like(ux)
  vx, vy, vxy = lax.fori_loop(0, k, window_row, (zeros, zeros, zeros))
  # Dividing by the float32 weights' own sum makes this an exact weighted
  # variance whatever their rounding (otherwise off by (sum - 1) * mean^2).
  total = float(weights.sum(dtype=np.float64))
  return ux, uy, vx / total, vy / total, vxy / total


def _moments_one_pass(x, y, taps):
  """The separable E[x^2] - E[x]^2 form, for windows too large for the 2-D loop.

  Centering each image-channel on the pair's mean changes nothing in exact
  arithmetic (variances are shift-invariant) but keeps the second moments
  smaller; the means are filtered from the raw values.
  """
  shift = 0.5 * (jnp.mean(x, axis=(1, 2), keepdims=True) + jnp.mean(y, axis=(1, 2), keepdims=True))
  xc, yc = x - shift, y - shift
  ux = _filter_valid(x, taps)
  uy = _filter_valid(y, taps)
  uxc, uyc = ux - shift, uy - shift
  vx = _filter_valid(xc * xc, taps) - uxc * uxc
  vy = _filter_valid(yc * yc, taps) - uyc * uyc
  vxy = _filter_valid(xc * yc, taps) - uxc * uyc
  return ux, uy, vx, vy, vxy


@functools.partial(jax.jit, static_argnames=("taps", "cov_norm"))
def _ssim_per_image(x: jax.Array, y: jax.Array, data_range: jax.Array, taps: tuple[float, ...],
                    cov_norm: float) -> jax.Array:
  """Mean SSIM map of each image pair. x, y: (B, H, W, C); data_range: (B,). Returns (B,)."""
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  moments = _moments_two_pass if len(taps) <= _TWO_PASS_MAX_TAPS else _moments_one_pass
  ux, uy, vx, vy, vxy = moments(x, y, taps)
  vx, vy, vxy = cov_norm * vx, cov_norm * vy, cov_norm * vxy
  r = data_range.astype(jnp.float32)[:, None, None, None]
  c1 = (K1 * r)**2
  c2 = (K2 * r)**2
  s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
  # skimage averages each channel's map, then the channels: equal sizes, so one mean.
  return jnp.mean(s, axis=(1, 2, 3))


def _check_pair(generated, target, name: str) -> tuple[jax.Array, jax.Array]:
  g = jnp.asarray(generated)
  t = jnp.asarray(target)
  if g.ndim != 4 or g.shape != t.shape:
    raise ValueError(f"{name}: expected two (B, H, W, C) batches of equal shape, got {g.shape} and {t.shape}")
  return g.astype(jnp.float32), t.astype(jnp.float32)


def add_bounding(images: jax.Array, bound: int = WHITE_PAD) -> jax.Array:
  """(B, H, W, C) -> (B, H, W + 2 * bound, C): white (255) columns left and right.

  The official DeepFashion `addBounding`, which turns 176-wide crops into 256x256.
  """
  return jnp.pad(jnp.asarray(images), ((0, 0), (0, 0), (bound, bound), (0, 0)), constant_values=255)


def ssim_patn(generated, target, *, pad_white: bool = False, sigma: float = 1.5) -> jax.Array:
  """PATN/ADGAN SSIM of each pair (skimage Gaussian SSIM, data_range from `generated`).

  Args:
    generated: (B, H, W, 3) uint8 or float in [0, 255].
    target: the same shape and scale.
    pad_white: first pad both with 40 white columns per side (the DeepFashion
      protocol of PATN/ADGAN; data_range is then taken from the padded
      generated image, as the official script pads at load time).
    sigma: Gaussian sigma, 1.5 (PATN, GFLA, CFLD) or 1.2 (PIDM, PCDMs).

  Returns:
    (B,) float32 SSIM. A constant generated image has data_range 0 and gives
    nan, as skimage does.
  """
  g, t = _check_pair(generated, target, "ssim_patn")
  if pad_white:
    g, t = add_bounding(g), add_bounding(t)
  taps = gaussian_taps(sigma)
  if min(g.shape[1:3]) < len(taps):
    raise ValueError(f"ssim_patn: images {g.shape[1:3]} smaller than the {len(taps)}-tap window")
  data_range = jnp.max(g, axis=(1, 2, 3)) - jnp.min(g, axis=(1, 2, 3))
  return _ssim_per_image(g, t, data_range, taps, 1.0)


def ssim_256(generated, target, *, sigma: float = 1.5) -> jax.Array:
  """GFLA's "SSIM_256": `ssim_patn` without padding (sigma 1.2 for PIDM's variant). (B,) out."""
  return ssim_patn(generated, target, pad_white=False, sigma=sigma)


def ssim_gfla(generated, target, *, win_size: int = 51) -> jax.Array:
  """GFLA's "SSIM": skimage `compare_ssim(gt, pred, data_range=1, win_size=51, multichannel=True)`.

  A uniform win_size x win_size window with sample covariance (N / (N - 1)) on
  images divided by 255, data_range 1. Inputs (B, H, W, 3) uint8 or float in
  [0, 255], H and W >= win_size. Returns (B,) float32.
  """
  g, t = _check_pair(generated, target, "ssim_gfla")
  if min(g.shape[1:3]) < win_size:
    raise ValueError(f"ssim_gfla: images {g.shape[1:3]} smaller than the {win_size} window")
  taps = tuple([1.0 / win_size] * win_size)
  num = win_size**2
  data_range = jnp.ones((g.shape[0],), jnp.float32)
  return _ssim_per_image(g / 255.0, t / 255.0, data_range, taps, num / (num - 1.0))


def mask_ssim(generated, target, target_keypoints, *, sigma: float = 1.5) -> jax.Array:
  """Market's mask-SSIM: `ssim_patn` of both images times the target's body mask.

  Args:
    generated, target: (B, H, W, 3) uint8 or float in [0, 255].
    target_keypoints: (B, 18, 2) (y, x) pixel coordinates of the target pose in
      the images' frame, -1 for missing joints.
    sigma: as in `ssim_patn`.

  Returns:
    (B,) float32; data_range comes from the masked generated image, as in the
    official `getMetrics_market.py`.
  """
  g, t = _check_pair(generated, target, "mask_ssim")
  mask = jnp.asarray(masks_lib.body_masks(target_keypoints, g.shape[1], g.shape[2]))[..., None]
  return ssim_patn(g * mask, t * mask, sigma=sigma)


@jax.jit
def _psnr(g, t, data_range):
  mse = jnp.mean(jnp.square(g - t), axis=(1, 2, 3))
  return 10.0 * jnp.log10(data_range**2 / mse)


def psnr(generated, target, data_range: float = 255.0) -> jax.Array:
  """Peak signal-to-noise ratio in dB per pair, as skimage `peak_signal_noise_ratio`.

  Inputs (B, H, W, C) on the [0, 255] scale (uint8 or float); data_range is the
  peak value. Returns (B,) float32; identical images give +inf.
  """
  g, t = _check_pair(generated, target, "psnr")
  return _psnr(g, t, jnp.float32(data_range))


@jax.jit
def _l1(g, t):
  return jnp.mean(jnp.abs(g - t), axis=(1, 2, 3)) / 255.0


def l1(generated, target) -> jax.Array:
  """Mean absolute difference per pair on the [0, 1] scale.

  Inputs (B, H, W, C) on the [0, 255] scale. Returns (B,) float32. Note that the
  PATN/ADGAN `l1_score` works on [-1, 1] images, so it is twice this value.
  """
  g, t = _check_pair(generated, target, "l1")
  return _l1(g, t)
