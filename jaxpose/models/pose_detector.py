"""SPT's learned pose detector: a CycleGAN ResNet generator from an image to 18 keypoint heatmaps.

SPT (Song et al., CVPR 2019, "Unsupervised Person Image Generation with
Semantic Parsing Transformation") trains its generators with a pose-consistency
loss: a frozen detector P maps the generated image to 18 heatmaps, compared
with the target pose's Gaussian heatmaps,
700 * [MSE(P(fake_A), heatmaps_A) + MSE(P(fake_B), heatmaps_B)].
Its P is `networks.define_G(3, 18, 64, 'resnet_9blocks', norm='instance')`
(`models/PoseGuidedGenerationDemo_model.py`), the CycleGAN `ResnetGenerator`;
SPT never released its weights or the script that trained it, so jaxpose
provides the architecture, its training target and loss, and the read-out of
keypoints, and trains it itself (through the training engine).

Architecture (`models/networks.py: ResnetGenerator, ResnetBlock`), NHWC:
  reflection pad 3, conv 7x7 3 -> 64, InstanceNorm, ReLU;
  2 x (conv 3x3 stride 2 pad 1 (zeros), InstanceNorm, ReLU): 128, 256;
  9 residual blocks at 256: (reflection pad 1, conv 3x3, IN, ReLU, [Dropout
  0.5], reflection pad 1, conv 3x3, IN) + x;
  2 x (ConvTranspose 3x3 stride 2 pad 1 output_padding 1, IN, ReLU): 128, 64;
  reflection pad 3, conv 7x7 64 -> 18, Tanh.
Every conv has a bias (CycleGAN's rule for instance norm); InstanceNorm2d has
affine=False, so it holds no parameters: 11,425,234 parameters in all, the
count of the instantiated SPT network (shared/reference/peers.md 4.6); the
jaxpose module matches it exactly. Its `track_running_stats=True` buffers are
not kept: SPT uses the detector inside a model left in training mode, which
normalises with each image's own statistics, as this module always does.
Whether SPT trained with dropout (CycleGAN's `--no_dropout` default is off
for this call) is not known (SPT's training options are unreleased); the
default here is none (`dropout_rate=0`).

Input: RGB in [-1, 1] (SPT's `Normalize((0.5,) * 3, (0.5,) * 3)`, the range of
generated images), (B, H, W, 3) with H and W multiples of 4; output
(B, H, W, 18) in (-1, 1). Training targets (`heatmap_targets`): per joint
exp(-d^2 / (2 * 6^2)) at full resolution, zero for a missing joint
(`pose_utils.cords_to_map(..., sigma=6)`, via jaxpose.data.heatmaps).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxpose.data import heatmaps as heatmaps_lib
from jaxpose.data import keypoints as kp
from jaxpose.models import layers

Array = jax.Array

NUM_PARAMETERS = 11_425_234
"""Parameters of SPT's detector (width 64, 9 blocks, 18 joints)."""
SIGMA = 6.0
"""Gaussian sigma of the training heatmaps (pixels)."""
SPT_POSE_LOSS_WEIGHT = 700.0
"""SPT's weight of the pose-consistency term in the generator loss."""
DEFAULT_THRESHOLD = 0.1
"""Heatmap peak below which a joint counts as missing: jaxpose's choice (SPT never reads keypoints out),
the same as OpenPose's peak threshold on its [0, 1] confidence maps."""


class ResnetPoseDetector(nn.Module):
  """SPT's pose detector (CycleGAN ResnetGenerator, 9 blocks, instance norm, Tanh); see the module docstring.

  Attributes:
    num_keypoints: output heatmaps (18).
    width: channels of the first conv (64); 2x and 4x after the downsamplings.
    num_blocks: residual blocks (9).
    dropout_rate: dropout inside the residual blocks (active only with train=True, rng 'dropout').
    dtype: compute dtype.

  Call: `(images (B, H, W, 3) in [-1, 1], train=False) -> (B, H, W, num_keypoints)` in (-1, 1).
  Parameters: `stem`, `downsample_{0,1}`, `block_{i}/conv_{0,1}`, `upsample_{0,1}`, `output`.
  """
  num_keypoints: int = kp.NUM_KEYPOINTS
  width: int = 64
  num_blocks: int = 9
  dropout_rate: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, train: bool = False) -> Array:
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] % 4 or x.shape[2] % 4:
      raise ValueError(f"ResnetPoseDetector expects (B, H, W, 3) images with H and W multiples of 4, "
                       f"got shape {x.shape}")
    init = layers.normal_init(0.02)  # CycleGAN's init_weights(net, 'normal')
    h = layers.ReflectConv(self.width, 7, padding=3, pad_mode="reflect", kernel_init=init, dtype=self.dtype,
                           name="stem")(x)
    h = nn.relu(layers.instance_norm(h))
    for i in range(2):
      h = layers.ReflectConv(self.width * 2 ** (i + 1), 3, stride=2, padding=1, pad_mode="zero", kernel_init=init,
                             dtype=self.dtype, name=f"downsample_{i}")(h)
      h = nn.relu(layers.instance_norm(h))
    for j in range(self.num_blocks):
      h = layers.ResBlock(norm="instance", dropout_rate=self.dropout_rate, use_bias=True, pad_mode="reflect",
                          kernel_init=init, dtype=self.dtype, name=f"block_{j}")(h, train=train)
    for i in range(2):
      h = layers.ConvTranspose(self.width * 2 ** (1 - i), 3, stride=2, padding=1, output_padding=1,
                               kernel_init=init, dtype=self.dtype, name=f"upsample_{i}")(h)
      h = nn.relu(layers.instance_norm(h))
    h = layers.ReflectConv(self.num_keypoints, 7, padding=3, pad_mode="reflect", kernel_init=init,
                           dtype=self.dtype, name="output")(h)
    return jnp.tanh(h.astype(jnp.float32))


def heatmap_targets(keypoints, height: int, width: int, sigma: float = SIGMA) -> np.ndarray:
  """(B, 18, 2) or (18, 2) (y, x) keypoints, -1 missing -> (B, H, W, 18) or (H, W, 18) float32 in [0, 1]."""
  keypoints = np.asarray(keypoints)
  if keypoints.ndim == 2:
    return heatmaps_lib.keypoints_to_heatmaps(keypoints, height, width, sigma=sigma)
  return np.stack([heatmaps_lib.keypoints_to_heatmaps(k, height, width, sigma=sigma) for k in keypoints])


def detector_loss(predicted: Array, targets: Array) -> Array:
  """Mean squared error over every element (PyTorch's MSELoss), the detector's training loss."""
  return jnp.mean(jnp.square(predicted.astype(jnp.float32) - targets.astype(jnp.float32)))


def pose_consistency_loss(predicted: Array, targets: Array) -> Array:
  """SPT's generator term for one direction: 700 * MSE(P(generated), target heatmaps)."""
  return SPT_POSE_LOSS_WEIGHT * detector_loss(predicted, targets)


def heatmaps_to_keypoints(heatmaps, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
  """(H, W, 18) or (B, H, W, 18) heatmaps -> (18, 2) or (B, 18, 2) int32 (y, x) of each map's maximum.

  A joint whose maximum is below `threshold` is missing (-1, -1); ties go to
  the first pixel in row-major order.
  """
  heatmaps = np.asarray(heatmaps, np.float32)
  single = heatmaps.ndim == 3
  if single:
    heatmaps = heatmaps[None]
  if heatmaps.ndim != 4:
    raise ValueError(f"expected (H, W, K) or (B, H, W, K) heatmaps, got shape {heatmaps.shape}")
  batch, height, width, joints = heatmaps.shape
  flat = heatmaps.reshape(batch, height * width, joints)
  index = np.argmax(flat, axis=1)
  peak = np.take_along_axis(flat, index[:, None, :], axis=1)[:, 0]
  out = np.stack([index // width, index % width], axis=-1).astype(np.int32)
  out[peak < threshold] = kp.MISSING
  return out[0] if single else out


class LearnedKeypointDetector:
  """A `jaxpose.metrics.pckh.KeypointDetector` of a trained detector: uint8 RGB batch -> (B, 18, 2).

  Attributes:
    model, variables: the detector and its variables.
    threshold: heatmap peak below which a joint is missing.
    image_size: (height, width) it was trained at, when known; the metric
      suite skips `pckh_learned` on images of another size (a detector trained
      on 64x44 people finds nothing useful on 256x176 ones).
  """

  def __init__(self, model: ResnetPoseDetector, variables: Any, threshold: float = DEFAULT_THRESHOLD,
               image_size: tuple[int, int] | None = None):
    self.model = model
    self.variables = variables
    self.threshold = threshold
    self.image_size = tuple(image_size) if image_size is not None else None
    self._apply = jax.jit(model.apply)

  def heatmaps(self, images: np.ndarray) -> np.ndarray:
    """(B, H, W, 3) uint8 RGB -> (B, H, W, 18) float32 heatmaps."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f"expected a (B, H, W, 3) uint8 RGB batch, got shape {images.shape}")
    x = jnp.asarray(images, jnp.float32) / 127.5 - 1.0
    return np.asarray(jax.device_get(self._apply(self.variables, x)))

  def __call__(self, images: np.ndarray) -> np.ndarray:
    return heatmaps_to_keypoints(self.heatmaps(images), self.threshold)


def keypoint_detector(model: ResnetPoseDetector, variables: Any, threshold: float = DEFAULT_THRESHOLD,
                      image_size: tuple[int, int] | None = None) -> LearnedKeypointDetector:
  """A trained detector as the metric suite's `pckh_learned` hook (see `LearnedKeypointDetector`).

  `MetricSuite.from_config(config.eval, learned_pose_detector=keypoint_detector(model, variables))`,
  or set `config.eval.learned_pose_detector_path` and the suite loads one itself.
  """
  return LearnedKeypointDetector(model, variables, threshold, image_size)


def hparams_from_variables(variables: Any) -> dict[str, int]:
  """{'width', 'num_blocks', 'num_keypoints'} of a detector, read off its variables' shapes."""
  params = variables["params"] if "params" in variables else variables
  missing = [k for k in ("stem", "output") if k not in params]
  if missing:
    raise ValueError(f"not a ResnetPoseDetector's variables: no {missing} (it holds {sorted(params)[:10]})")
  return {"width": int(np.shape(params["stem"]["kernel"])[-1]),
          "num_blocks": sum(1 for k in params if k.startswith("block_")),
          "num_keypoints": int(np.shape(params["output"]["kernel"])[-1])}


def abstract_variables(model: ResnetPoseDetector, height: int = 256, width: int = 256) -> dict:
  """Shapes of the detector's variables, without allocating them."""
  return dict(jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, height, width, 3)))))
