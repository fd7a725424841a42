"""OpenPose keypoints for a photo, computed the way the field computed them.

    estimator = PoseEstimator.from_file("pose_estimator.h5")   # or body_pose_model.pth
    keypoints = estimator.keypoints(image)    # (H, W, 3) uint8 RGB -> (18, 2) int32 (y, x), -1 missing
    batch = estimator(images)                 # (B, H, W, 3) -> (B, 18, 2): a KeypointDetector

Two protocols (`PROTOCOLS`); the network is the same, the image handling differs:

`patn` (the default, and PCKh's): Deformable GAN's and PATN's
`compute_coordinates.py`, which made the DeepFashion / Market-1501
annotation files and scored PATN's (and later papers') PCKh, run as their
READMEs say, `python2 compute_coordinates.py`, with Keras and scikit-image 0.14:
  * the photo in BGR order; scales s in (0.5, 1, 1.5, 2), each with multiplier
    `s * 368 / H` evaluated as Python 2 does: for the integer scales 1 and 2
    that is integer division, floor(368 / H) and floor(736 / H) (1 and 2 for
    256-pixel-high images, not 1.4375 and 2.875). Images taller than 368
    pixels give a multiplier of 0, with which the original crashes; here they
    raise a ValueError (resize such photos to the dataset's height first, or
    use the 'original' protocol);
  * resize to (H, W) * multiplier, truncated to int, with scikit-image 0.14's
    bicubic (jaxpose.pose.resize.skimage014_resize, order 3), no padding,
    `/ 255 - 0.5`; the network at that size (Keras pads 'same', pools floor);
  * both outputs resized straight to (H, W) with scikit-image 0.14's bilinear;
  * confidence maps averaged over the scales, PAFs only summed (the script
    never divides `paf_avg`: the PAF thresholds act on 4x larger values);
  * peaks, limbs, grouping and the highest-scoring person as in
    jaxpose.pose.postprocess.

`original`: CMU's demo (`testing/python/demo.ipynb`, config `scale_search =
0.5, 1, 1.5, 2`, read as floats): multiplier `s * 368 / H`; OpenCV cubic
resize with fx = fy = multiplier (jaxpose.pose.resize.cv2_resize_cubic_scale);
padded right and bottom to a multiple of 8 with 128; `/ 256 - 0.5`; outputs
upsampled x8 with OpenCV cubic, cropped to the resized image, resized to
(H, W) with OpenCV cubic; confidence maps and PAFs both averaged. The same
post-processing, and the highest-scoring person. (Hzzone's port runs the
single scale 0.5 and averages wrongly for more than one; it is not
reproduced.)

The network pass is jitted per input shape (four shapes per image size) and
runs on JAX's default device; resizing and post-processing are numpy, in
float64 where the originals were. Residual differences to the originals:
float32 convolutions in another order than Keras/TensorFlow or caffe (~1e-6
relative), and those listed in jaxpose.pose.resize.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.data import keypoints as kp
from jaxpose.models import openpose as openpose_lib
from jaxpose.pose import postprocess
from jaxpose.pose import resize


@dataclasses.dataclass(frozen=True)
class Protocol:
  """How a photo goes through the network; see the module docstring.

  Attributes:
    name: 'patn' or 'original' (or a name of your own).
    scales: scale_search; Python ints stay ints (they matter with python2_division).
    boxsize: the height the scale 1 maps the photo to (368).
    python2_division: compute `s * boxsize / H` as Python 2 does (integer division for integer s).
    image_resize: 'skimage014_cubic' or 'cv2_cubic'.
    input_divisor: the network sees `pixel / input_divisor - 0.5` (255 or 256).
    pad_to_stride: pad right/bottom to a multiple of 8 with `pad_value` (CMU) or not (Keras scripts).
    pad_value: the padding pixel value.
    output_resize: 'skimage014_bilinear' (straight to H x W) or 'cv2_cubic' (x8, crop, to H x W).
    average_pafs: divide the PAF sum by the number of scales (CMU) or not (the Keras scripts).
    cv2_ipp: with cv2 resizes of uint8 photos, compute as IPP builds of OpenCV do.
    thresholds: the post-processing constants.
  """
  name: str
  scales: tuple[Any, ...] = (0.5, 1, 1.5, 2)
  boxsize: int = 368
  python2_division: bool = False
  image_resize: str = "cv2_cubic"
  input_divisor: float = 256.0
  pad_to_stride: bool = True
  pad_value: int = 128
  output_resize: str = "cv2_cubic"
  average_pafs: bool = True
  cv2_ipp: bool = False
  thresholds: postprocess.Thresholds = postprocess.Thresholds()

  def multipliers(self, height: int) -> list[float]:
    """The resize factor of each scale for a photo `height` pixels high."""
    out = []
    for scale in self.scales:
      if self.python2_division and isinstance(scale, int):
        out.append((scale * self.boxsize) // height)
      else:
        out.append(scale * self.boxsize / height)
    return out


PROTOCOLS = {
    "patn": Protocol(name="patn", python2_division=True, image_resize="skimage014_cubic", input_divisor=255.0,
                     pad_to_stride=False, output_resize="skimage014_bilinear", average_pafs=False),
    "original": Protocol(name="original", scales=(0.5, 1.0, 1.5, 2.0)),
}
STRIDE = 8


def get_protocol(protocol: str | Protocol) -> Protocol:
  if isinstance(protocol, Protocol):
    return protocol
  if protocol not in PROTOCOLS:
    raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)} or a Protocol, got {protocol!r}")
  return PROTOCOLS[protocol]


def check_image(image: Any, what: str = "image") -> np.ndarray:
  """(H, W, 3) uint8 RGB, or a ValueError saying what was expected."""
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f"{what}: expected an (H, W, 3) RGB image, got shape {image.shape}")
  if image.dtype != np.uint8:
    if not np.issubdtype(image.dtype, np.number) or image.size and (
        image.min() < 0 or image.max() > 255 or not np.all(image == np.round(image))):
      raise ValueError(f"{what}: expected uint8 pixels (integers 0..255), got dtype {image.dtype}")
    image = image.astype(np.uint8)
  return image


@dataclasses.dataclass(frozen=True)
class _ScaleInput:
  batch: np.ndarray          # (B, h', w', 3) float32 network input
  resized_size: tuple[int, int]  # (h, w) of the resized photo, before padding


class PoseEstimator:
  """OpenPose with a protocol: photos -> confidence maps and PAFs -> people -> keypoints.

  Build with `from_file(path, protocol=...)` (body_pose_model.pth or a Keras
  .h5), or from a model and variables (e.g. random ones in tests). Calling the
  estimator on a (B, H, W, 3) uint8 batch returns (B, 18, 2) keypoints, so it
  serves as the metric suite's keypoint detector.
  """

  def __init__(self, model: openpose_lib.OpenPoseBody, variables: Any, protocol: str | Protocol = "patn",
               max_batch: int = 8):
    self.model = model
    self.variables = jax.tree.map(jnp.asarray, variables)
    self.protocol = get_protocol(protocol)
    self.max_batch = int(max_batch)
    self._network = jax.jit(lambda v, x: model.apply(v, x))

  @classmethod
  def from_file(cls, path: str | os.PathLike[str], protocol: str | Protocol = "patn",
                max_batch: int = 8) -> "PoseEstimator":
    """OpenPose weights from `path` (body_pose_model.pth or a Keras .h5, see convert.import_checkpoint)."""
    from jaxpose import convert  # pylint: disable=g-import-not-at-top
    path = os.fspath(path)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{path} does not exist; expected OpenPose body weights: body_pose_model.pth "
                              "(Hzzone/pytorch-openpose) or pose_estimator.h5 (pose-gan / PATN)")
    model, variables = convert.import_checkpoint("openpose_body", path)
    return cls(model, variables, protocol, max_batch)

  # ---------------------------------------------------------------- network maps

  def _scale_inputs(self, images: np.ndarray) -> list[_ScaleInput]:
    protocol = self.protocol
    _, height, width, _ = images.shape
    inputs = []
    for multiplier in protocol.multipliers(height):
      if protocol.image_resize == "skimage014_cubic":
        size = (np.array([height, width]) * multiplier).astype(np.int32)
        if multiplier <= 0 or min(size) < 1:
          raise ValueError(
              f"protocol {protocol.name!r}: a {height}x{width} image gets multiplier {multiplier} "
              f"({'Python 2 integer division of ' if protocol.python2_division else ''}scale * {protocol.boxsize}"
              f" / {height}), which leaves no pixels; the original script crashes here. Resize the image to "
              f"at most {protocol.boxsize} pixels high (e.g. the dataset's 256) or use protocol 'original'")
        resized = np.stack([resize.skimage014_resize(image, tuple(size), order=3) for image in images])
        network_input = (resized / protocol.input_divisor - 0.5).astype(np.float32)
      elif protocol.image_resize == "cv2_cubic":
        resized = np.stack([resize.cv2_resize_cubic_scale(image, multiplier, multiplier, ipp=protocol.cv2_ipp)
                            for image in images])
        size = resized.shape[1:3]
        if protocol.pad_to_stride:
          pad_h, pad_w = (-size[0]) % STRIDE, (-size[1]) % STRIDE
          resized = np.pad(resized, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=protocol.pad_value)
        network_input = resized.astype(np.float32) / np.float32(protocol.input_divisor) - np.float32(0.5)
      else:
        raise ValueError(f"unknown image_resize {protocol.image_resize!r}")
      if min(network_input.shape[1:3]) < STRIDE:
        raise ValueError(f"protocol {protocol.name!r}: a {height}x{width} image is resized to "
                         f"{network_input.shape[1]}x{network_input.shape[2]}, smaller than the network's stride "
                         f"{STRIDE}")
      inputs.append(_ScaleInput(network_input, (int(size[0]), int(size[1]))))
    return inputs

  def _to_photo(self, maps: np.ndarray, scale_input: _ScaleInput, height: int, width: int) -> np.ndarray:
    """One network output (h', w', C) float32 -> (height, width, C) at the photo's resolution."""
    if self.protocol.output_resize == "skimage014_bilinear":
      return resize.skimage014_resize(maps, (height, width), order=1)
    if self.protocol.output_resize == "cv2_cubic":
      upsampled = resize.cv2_resize_cubic_scale(maps, STRIDE, STRIDE)
      h, w = scale_input.resized_size
      return resize.cv2_resize_cubic(upsampled[:h, :w], (height, width))
    raise ValueError(f"unknown output_resize {self.protocol.output_resize!r}")

  def _network_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pafs, heatmaps = [], []
    for start in range(0, len(batch), self.max_batch):
      p, h = self._network(self.variables, jnp.asarray(batch[start:start + self.max_batch]))
      pafs.append(np.asarray(jax.device_get(p)))
      heatmaps.append(np.asarray(jax.device_get(h)))
    return np.concatenate(pafs), np.concatenate(heatmaps)

  def maps(self, images: Any) -> tuple[np.ndarray, np.ndarray]:
    """(B, H, W, 3) uint8 RGB -> (heatmaps (B, H, W, 19), pafs (B, H, W, 38)) float64 over the scales.

    Confidence maps are averaged; PAFs averaged or summed as the protocol says.
    """
    images = np.asarray(images)
    if images.ndim != 4:
      raise ValueError(f"expected a (B, H, W, 3) batch of RGB images, got shape {images.shape}")
    images = np.stack([check_image(image, f"image {i}") for i, image in enumerate(images)]) if len(images) else images
    batch, height, width, _ = images.shape
    bgr = images[..., ::-1]
    heatmap_sum = np.zeros((batch, height, width, self.model.num_heatmaps))
    paf_sum = np.zeros((batch, height, width, self.model.num_pafs))
    scale_inputs = self._scale_inputs(bgr) if batch else []
    for scale_input in scale_inputs:
      pafs, heatmaps = self._network_outputs(scale_input.batch)
      for b in range(batch):
        heatmap = self._to_photo(heatmaps[b], scale_input, height, width)
        paf = self._to_photo(pafs[b], scale_input, height, width)
        if self.protocol.average_pafs:  # CMU: += map / n per scale, in the maps' float32
          heatmap_sum[b] += heatmap / np.float32(len(scale_inputs))
          paf_sum[b] += paf / np.float32(len(scale_inputs))
        else:
          heatmap_sum[b] += heatmap
          paf_sum[b] += paf
    if not self.protocol.average_pafs:
      heatmap_sum /= len(scale_inputs)  # the Keras scripts average only the confidence maps
    return heatmap_sum, paf_sum

  # ---------------------------------------------------------------- keypoints

  def people(self, image: Any) -> postprocess.People:
    """Everyone found in one (H, W, 3) uint8 RGB photo."""
    image = check_image(image)
    heatmaps, pafs = self.maps(image[None])
    return postprocess.people_from_maps(heatmaps[0], pafs[0], image.shape[0], self.protocol.thresholds)

  def keypoints(self, image: Any) -> np.ndarray:
    """One (H, W, 3) uint8 RGB photo -> (18, 2) int32 (y, x) of the highest-scoring person, -1 missing."""
    return postprocess.single_person_keypoints(self.people(image))

  def keypoints_batch(self, images: Any) -> np.ndarray:
    """(B, H, W, 3) uint8 RGB photos of one size -> (B, 18, 2) int32 (y, x), -1 missing."""
    images = np.asarray(images)
    heatmaps, pafs = self.maps(images)
    out = np.full((len(images), kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32)
    for b in range(len(images)):
      out[b] = postprocess.keypoints_from_maps(heatmaps[b], pafs[b], images.shape[1], self.protocol.thresholds)
    return out

  def __call__(self, images: Any) -> np.ndarray:
    """`keypoints_batch`: the KeypointDetector interface of jaxpose.metrics.pckh."""
    return self.keypoints_batch(images)
