"""Image and score-map resampling exactly as the field's OpenPose scripts did it, in numpy.

The pose protocols (jaxpose.pose.estimate) resize the photo to four scales
and the network's stride-8 maps back to the photo; which interpolation does
that moves peaks by a pixel and so changes keypoints and PCKh. Neither library
the originals called is a jaxpose dependency, and today's versions of them no
longer compute what the originals computed, so both are reimplemented here.

* `skimage014_resize(image, (height, width), order)`: what
  `skimage.transform.resize(image, shape, order=order, preserve_range=True)`
  returned in scikit-image 0.13/0.14, the versions PATN's PCKh step ran with:
  its README runs `python2 compute_coordinates.py`, `requirements_tf.txt` pins
  scikit-image==0.14.2, and 0.14 was the last release for Python 2. There,
  resize was an affine warp: output pixel (r, c) samples the input at
  ((r + 0.5) * H_in / H_out - 0.5, (c + 0.5) * W_in / W_out - 0.5);
  order 3 is Catmull-Rom cubic convolution (Keys, a = -0.5) and order 1
  bilinear, row-wise first, in float64; the default mode 'constant' counts
  pixels outside the image as 0; no anti-aliasing (0.14 still defaulted to
  none); then the output is clipped to the input's [min, max] over all
  channels (if 0 lies outside that range, outputs exactly equal to 0 are left
  at 0). Since 0.19 scikit-image resizes with B-splines through
  scipy.ndimage.zoom, mirrors the border and anti-aliases when downsampling,
  which gives other numbers.
  Residual difference: scikit-image got the sample positions from an affine
  matrix estimated by least squares from three corners; those differ from the
  closed form used here by about 1e-15 pixel, i.e. ~1e-13 relative on the
  output.

* `cv2_resize_cubic(image, (height, width))` / `cv2_resize_cubic_scale(image,
  fx, fy)`: OpenCV's `cv2.resize(..., interpolation=cv2.INTER_CUBIC)`, as
  CMU's demo (and Hzzone's port) resize the photo and the network outputs.
  Sample positions (dx + 0.5) * scale - 0.5 computed in float32, Keys cubic
  with a = -0.75, borders replicated, separable (rows first). With `fx`/`fy`
  the output size is round-half-even(size * f) and the scale 1 / f (not
  in/out); an output of the input's size is a copy. float32 images are
  computed in float32. uint8 images depend on the OpenCV build:
    - OpenCV's own code (`ipp=False`, the default; every build without Intel
      IPP, OpenCV 2.4, or `cv2.ipp.setUseIPP(False)`): coefficients rounded to
      1/2048, the horizontal pass in integers, the vertical pass rounded and
      saturated to 0..255;
    - the pip wheels (`opencv-python`), built with Intel IPP, hand uint8
      cubic resizes to IPP, which computes in floating point (`ipp=True`: the
      exact sum, rounded half to even).
  The two differ by one grey level on about 3% of pixels.
  Measured against opencv-python-headless 5.0.0: float32 maps agree to
  5e-7; uint8 with IPP off agrees except 0.001% of pixels (by one level: its
  vectorised vertical pass sums in float32), with IPP on except 0.03%
  (IPP's own float32 accumulation).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["cv2_resize_cubic", "cv2_resize_cubic_scale", "cv2_scaled_size", "skimage014_resize"]


# ----------------------------------------------------------------------------
# scikit-image 0.14


def _catmull_rom(x: np.ndarray, f0, f1, f2, f3) -> np.ndarray:
  """scikit-image's `cubic_interpolation`, term for term (same float64 operation order)."""
  return f1 + 0.5 * x * (f2 - f0 + x * (2.0 * f0 - 5.0 * f1 + 4.0 * f2 - f3 + x * (3.0 * (f1 - f2) + f3 - f0)))


def _take_constant(a: np.ndarray, index: np.ndarray, axis: int) -> np.ndarray:
  """a.take(index, axis) with zeros where index falls outside (scikit-image's mode 'constant', cval 0)."""
  inside = (index >= 0) & (index < a.shape[axis])
  out = np.take(a, np.clip(index, 0, a.shape[axis] - 1), axis=axis)
  shape = [1] * a.ndim
  shape[axis] = len(index)
  return np.where(inside.reshape(shape), out, 0.0)


def _skimage014_axis(a: np.ndarray, out_size: int, axis: int, order: int) -> np.ndarray:
  in_size = a.shape[axis]
  factor = float(in_size) / float(out_size)
  position = factor * (np.arange(out_size, dtype=np.float64) + 0.5) - 0.5
  shape = [1] * a.ndim
  shape[axis] = out_size
  if order == 1:
    low, high = np.floor(position).astype(np.int64), np.ceil(position).astype(np.int64)
    t = (position - low).reshape(shape)
    return (1 - t) * _take_constant(a, low, axis) + t * _take_constant(a, high, axis)
  base = np.floor(position).astype(np.int64)
  t = (position - base).reshape(shape)
  f = [_take_constant(a, base + k, axis) for k in (-1, 0, 1, 2)]
  return _catmull_rom(t, *f)


def skimage014_resize(image: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
  """scikit-image 0.14's `resize(image, shape, order=order, preserve_range=True)` (mode 'constant', clip).

  Args:
    image: (H, W) or (H, W, C), any real dtype (taken as float64, values kept).
    shape: (height, width) of the output.
    order: 1 (bilinear) or 3 (Catmull-Rom cubic).

  Returns:
    float64 (height, width[, C]).
  """
  if order not in (1, 3):
    raise ValueError(f"order must be 1 (bilinear) or 3 (cubic), got {order}")
  height, width = (int(s) for s in shape)
  if height < 1 or width < 1:
    raise ValueError(f"cannot resize to {height}x{width}: both sides must be at least 1 pixel")
  image = np.asarray(image, dtype=np.float64)
  if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
    raise ValueError(f"expected an (H, W) or (H, W, C) array with H, W >= 1, got shape {image.shape}")
  # scikit-image interpolates each row at the output columns first, then across rows.
  out = _skimage014_axis(image, width, 1, order)
  out = _skimage014_axis(out, height, 0, order)
  low, high = image.min(), image.max()
  keep_zero = not (low <= 0.0 <= high)  # 0.14's `preserve_cval` for mode 'constant', cval 0
  zeros = out == 0.0 if keep_zero else None
  np.clip(out, low, high, out=out)
  if keep_zero:
    out[zeros] = 0.0
  return out


# ----------------------------------------------------------------------------
# OpenCV INTER_CUBIC

_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS  # OpenCV's INTER_RESIZE_COEF_SCALE


def _keys_coefficients(x: np.ndarray) -> np.ndarray:
  """OpenCV's `interpolateCubic` (A = -0.75) in float32: (n,) fractions -> (n, 4) weights."""
  a = np.float32(-0.75)
  one = np.float32(1)
  x = x.astype(np.float32)
  xp = x + one
  c0 = ((a * xp - np.float32(5) * a) * xp + np.float32(8) * a) * xp - np.float32(4) * a
  c1 = ((a + np.float32(2)) * x - (a + np.float32(3))) * x * x + one
  xm = one - x
  c2 = ((a + np.float32(2)) * xm - (a + np.float32(3))) * xm * xm + one
  c3 = one - c0 - c1 - c2
  return np.stack([c0, c1, c2, c3], axis=-1).astype(np.float32)


def _cv2_taps(in_size: int, out_size: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
  """(indices (out, 4) clamped to the image, float32 weights (out, 4)) along one axis."""
  position = ((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
  base = np.floor(position).astype(np.int64)
  fraction = position - base.astype(np.float32)
  indices = np.clip(base[:, None] + np.arange(-1, 3)[None, :], 0, in_size - 1)
  return indices, _keys_coefficients(fraction)


def _round_half_even_int(value: float) -> int:
  # OpenCV's saturate_cast<int>(double) is cvRound: round half to even.
  return int(np.rint(value))


def cv2_scaled_size(height: int, width: int, fx: float, fy: float) -> tuple[int, int]:
  """The (height, width) `cv2.resize(image, (0, 0), fx=fx, fy=fy)` produces."""
  return _round_half_even_int(height * fy), _round_half_even_int(width * fx)


def _cv2_resize(image: np.ndarray, height: int, width: int, scale_y: float, scale_x: float,
                ipp: bool) -> np.ndarray:
  in_h, in_w = image.shape[:2]
  if (height, width) == (in_h, in_w):
    return image.copy()
  rows, row_weights = _cv2_taps(in_h, height, scale_y)
  cols, col_weights = _cv2_taps(in_w, width, scale_x)
  squeeze = image.ndim == 2
  a = image[..., None] if squeeze else image
  if image.dtype == np.uint8 and ipp:
    src = a.astype(np.float64)
    horizontal = sum(src[:, cols[:, k], :] * col_weights[None, :, k, None].astype(np.float64) for k in range(4))
    total = sum(horizontal[rows[:, k], :, :] * row_weights[:, k, None, None].astype(np.float64) for k in range(4))
    out = np.clip(np.rint(total), 0, 255).astype(np.uint8)
  elif image.dtype == np.uint8:
    col_fixed = np.rint(col_weights * np.float32(_COEF_SCALE)).astype(np.int64)
    row_fixed = np.rint(row_weights * np.float32(_COEF_SCALE)).astype(np.int64)
    src = a.astype(np.int64)
    horizontal = sum(src[:, cols[:, k], :] * col_fixed[None, :, k, None] for k in range(4))
    total = sum(horizontal[rows[:, k], :, :] * row_fixed[:, k, None, None] for k in range(4))
    out = np.clip(np.rint(total / float(_COEF_SCALE * _COEF_SCALE)), 0, 255).astype(np.uint8)
  elif image.dtype == np.float32:
    horizontal = a[:, cols[:, 0], :] * col_weights[None, :, 0, None]
    for k in range(1, 4):
      horizontal = horizontal + a[:, cols[:, k], :] * col_weights[None, :, k, None]
    out = horizontal[rows[:, 0], :, :] * row_weights[:, 0, None, None]
    for k in range(1, 4):
      out = out + horizontal[rows[:, k], :, :] * row_weights[:, k, None, None]
  else:
    raise ValueError(f"cv2_resize_cubic takes uint8 or float32 images (OpenCV's two paths here), got {image.dtype}")
  return out[..., 0] if squeeze else out


def _check_image(image: np.ndarray) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim not in (2, 3) or min(image.shape[:2]) < 1:
    raise ValueError(f"expected an (H, W) or (H, W, C) image with H, W >= 1, got shape {image.shape}")
  return image


def cv2_resize_cubic(image: np.ndarray, shape: Sequence[int], *, ipp: bool = False) -> np.ndarray:
  """`cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC)`; note `shape` is (height, width).

  Args:
    image: (H, W) or (H, W, C) uint8 or float32.
    shape: (height, width) of the output.
    ipp: for uint8, compute as OpenCV builds with Intel IPP do (the pip wheels) rather than OpenCV's own code.

  Returns:
    The same dtype, (height, width[, C]).
  """
  image = _check_image(image)
  height, width = (int(s) for s in shape)
  if height < 1 or width < 1:
    raise ValueError(f"cannot resize to {height}x{width}: both sides must be at least 1 pixel")
  return _cv2_resize(image, height, width, image.shape[0] / height, image.shape[1] / width, ipp)


def cv2_resize_cubic_scale(image: np.ndarray, fx: float, fy: float, *, ipp: bool = False) -> np.ndarray:
  """`cv2.resize(image, (0, 0), fx=fx, fy=fy, interpolation=cv2.INTER_CUBIC)`: size rounded, scale 1/f."""
  image = _check_image(image)
  if not (fx > 0 and fy > 0 and math.isfinite(fx) and math.isfinite(fy)):
    raise ValueError(f"scale factors must be positive and finite, got fx={fx}, fy={fy}")
  height, width = cv2_scaled_size(image.shape[0], image.shape[1], fx, fy)
  if height < 1 or width < 1:
    raise ValueError(f"scaling {image.shape[0]}x{image.shape[1]} by ({fy}, {fx}) leaves no pixels")
  return _cv2_resize(image, height, width, 1.0 / fy, 1.0 / fx, ipp)
