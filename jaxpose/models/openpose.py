"""The OpenPose COCO-18 body network (Cao et al., CVPR 2017, "Realtime Multi-Person 2D Pose
Estimation using Part Affinity Fields"), as the field runs it to annotate and to score poses.

Every pose-transfer dataset's keypoints (DeepFashion, Market-1501) and every
PCKh number of the field come from this network, through the scripts of
Deformable GAN, PATN and ADGAN (`compute_coordinates.py`) with CMU's trained
COCO weights. jaxpose reimplements it so those numbers can be reproduced and
users can annotate their own photos; the weights themselves are never shipped
(the CMU licence forbids redistribution): `jaxpose.convert.import_checkpoint(
'openpose_body', path)` reads the files users hold (`body_pose_model.pth`,
`pose_estimator.h5`).

Architecture (CMU's `pose_deploy.prototxt`; 92 convs, all with bias,
52,311,446 parameters at the default widths):
  * backbone, stride 8: the first ten VGG-19 convs `conv1_1` ... `conv4_2`
    (3x3, ReLU, 2x2/2 max-pool after conv1_2, conv2_2 and conv3_4), then
    `conv4_3_CPM` (256) and `conv4_4_CPM` (128), 3x3 with ReLU: the features F;
  * stage 1, two branches b = 1 (part affinity fields, 38 = 19 limbs x (x, y))
    and b = 2 (confidence maps, 19 = 18 parts + background):
    `conv5_{1,2,3}_CPM_L{b}` 3x3 128 + ReLU, `conv5_4_CPM_L{b}` 1x1 512 + ReLU,
    `conv5_5_CPM_L{b}` 1x1 to 38 / 19, no ReLU;
  * stages s = 2..6 on concat(PAFs, confidence maps, F) (38 + 19 + 128 = 185
    channels, in that order): `Mconv{1..5}_stage{s}_L{b}` 7x7 128 + ReLU,
    `Mconv6_stage{s}_L{b}` 1x1 128 + ReLU, `Mconv7_stage{s}_L{b}` 1x1 to 38 / 19,
    no ReLU.
Flax variables: `params[<caffe layer name>] = {'kernel': (k, k, in, out), 'bias': (out,)}`,
so the official names index the tree directly.

Input and output: `model.apply(variables, x)` with x (B, H, W, 3) float32, the
image in **BGR** order already scaled as the caller's protocol does it
(`/255 - 0.5` in the Keras scripts of the field, `/256 - 0.5` in CMU's demo;
see jaxpose.pose.estimate), returns the last stage's
(pafs (B, H', W', 38), heatmaps (B, H', W', 19)) with H' = H // 8, W' = W // 8:
convs pad 'same', pools are 2x2/2 'valid' and floor odd sizes, as Keras does
(caffe's pooling rounds up instead; CMU's demo pads its inputs to a multiple
of 8, where the two agree). `all_stages=True` returns every stage's pair
(OpenPose trains with a loss on each).

Neither output has a ReLU, as in the caffe original. Hzzone's PyTorch port
(`src/model.py`) lists `Mconv7_stage6_L1` twice in `no_relu_layers` and so
omits `Mconv7_stage6_L2`: its final heatmaps go through a ReLU by mistake.
`final_heatmap_relu=True` reproduces that port, should anyone need to.

Convs run at `precision=HIGHEST` by default: the protocols compare against
float32 Keras/caffe runs, and TF32 convolutions on recent GPUs would move the
peaks the post-processing thresholds.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array

NUM_PAFS = 38
NUM_HEATMAPS = 19
NUM_PARAMETERS = 52_311_446
"""Parameters of the default (CMU COCO) network."""


@dataclasses.dataclass(frozen=True)
class ConvSpec:
  """One conv of the network: caffe name, square kernel size, channels, whether a ReLU follows."""
  name: str
  kernel_size: int
  in_channels: int
  out_channels: int
  relu: bool


def backbone_names() -> list[str]:
  """The 12 backbone convs, in order."""
  return ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv3_4",
          "conv4_1", "conv4_2", "conv4_3_CPM", "conv4_4_CPM"]


def stage_names(stage: int, branch: int) -> list[str]:
  """Conv names of one stage (1-based) and branch (1 = PAFs, 2 = heatmaps), input to output."""
  if stage == 1:
    return [f"conv5_{i}_CPM_L{branch}" for i in range(1, 6)]
  return [f"Mconv{i}_stage{stage}_L{branch}" for i in range(1, 8)]


# After which backbone convs a 2x2/2 max-pool follows (caffe's pool1_stage1 ... pool3_stage1).
POOL_AFTER = ("conv1_2", "conv2_2", "conv3_4")


class OpenPoseBody(nn.Module):
  """The OpenPose COCO body network; see the module docstring.

  Attributes:
    backbone_widths: output channels of conv1_x, conv2_x, conv3_x and conv4_1/conv4_2.
    cpm_widths: output channels of conv4_3_CPM and conv4_4_CPM (the features F).
    stage_width: channels of every hidden stage conv but conv5_4_CPM.
    stage1_hidden: channels of conv5_4_CPM_L* (1x1).
    num_stages: stages (6 in CMU's model).
    num_pafs, num_heatmaps: output channels of branch 1 and branch 2.
    final_heatmap_relu: apply Hzzone's mistaken ReLU to the last heatmaps (off: caffe's network).
    precision: conv precision (HIGHEST: true float32 on every backend).
    dtype: compute dtype; parameters stay float32.
  """
  backbone_widths: tuple[int, int, int, int] = (64, 128, 256, 512)
  cpm_widths: tuple[int, int] = (256, 128)
  stage_width: int = 128
  stage1_hidden: int = 512
  num_stages: int = 6
  num_pafs: int = NUM_PAFS
  num_heatmaps: int = NUM_HEATMAPS
  final_heatmap_relu: bool = False
  precision: Any = lax.Precision.HIGHEST
  dtype: Any = jnp.float32

  def conv_specs(self, in_channels: int = 3) -> list[ConvSpec]:
    """All convs in the order of the official files: backbone, then per stage branch 1 and branch 2."""
    w1, w2, w3, w4 = self.backbone_widths
    widths = [w1, w1, w2, w2, w3, w3, w3, w3, w4, w4, *self.cpm_widths]
    specs, c = [], in_channels
    for name, width in zip(backbone_names(), widths):
      specs.append(ConvSpec(name, 3, c, width, True))
      c = width
    features = c
    outputs = {1: self.num_pafs, 2: self.num_heatmaps}
    for stage in range(1, self.num_stages + 1):
      for branch in (1, 2):
        names = stage_names(stage, branch)
        if stage == 1:
          kernels = [3, 3, 3, 1, 1]
          outs = [self.stage_width] * 3 + [self.stage1_hidden, outputs[branch]]
          c = features
        else:
          kernels = [7] * 5 + [1, 1]
          outs = [self.stage_width] * 6 + [outputs[branch]]
          c = self.num_pafs + self.num_heatmaps + features
        for i, (name, k, out) in enumerate(zip(names, kernels, outs)):
          specs.append(ConvSpec(name, k, c, out, relu=i < len(names) - 1))
          c = out
    return specs

  def _conv(self, x: Array, spec: ConvSpec) -> Array:
    y = nn.Conv(spec.out_channels, (spec.kernel_size, spec.kernel_size), padding="SAME",
                # CMU's training prototxt: gaussian std 0.01 weights, zero biases.
                kernel_init=nn.initializers.normal(0.01), bias_init=nn.initializers.zeros,
                precision=self.precision, dtype=self.dtype, param_dtype=jnp.float32, name=spec.name)(x)
    return nn.relu(y) if spec.relu else y

  @nn.compact
  def __call__(self, x: Array, all_stages: bool = False):
    """(B, H, W, 3) BGR, scaled -> (pafs (B, H//8, W//8, 38), heatmaps (B, H//8, W//8, 19)).

    With all_stages, a list of (pafs, heatmaps) for stages 1..num_stages.
    """
    if x.ndim != 4 or x.shape[-1] != 3:
      raise ValueError(f"OpenPoseBody expects (B, H, W, 3) BGR images, got shape {x.shape}")
    specs = {s.name: s for s in self.conv_specs(x.shape[-1])}
    h = x.astype(self.dtype)
    for name in backbone_names():
      h = self._conv(h, specs[name])
      if name in POOL_AFTER:
        # 'VALID' floors odd sizes, as Keras' MaxPooling2D does.
        h = nn.max_pool(h, (2, 2), strides=(2, 2), padding="VALID")
    features = h
    outputs = []
    stage_input = features
    for stage in range(1, self.num_stages + 1):
      branch_outputs = []
      for branch in (1, 2):
        y = stage_input
        for name in stage_names(stage, branch):
          y = self._conv(y, specs[name])
        branch_outputs.append(y)
      pafs, heatmaps = branch_outputs
      outputs.append((pafs, heatmaps))
      stage_input = jnp.concatenate([pafs, heatmaps, features], axis=-1)  # caffe's concat_stage{s+1}
    if self.final_heatmap_relu:
      pafs, heatmaps = outputs[-1]
      outputs[-1] = (pafs, nn.relu(heatmaps))
    return outputs if all_stages else outputs[-1]


def abstract_variables(model: OpenPoseBody, height: int = 16, width: int = 16) -> dict:
  """Shapes of the model's variables ({'params': {name: {'kernel', 'bias'}}}), without allocating them."""
  return dict(jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, height, width, 3)))))


def parameter_count(model: OpenPoseBody) -> int:
  """Number of parameters, from the layer list (no allocation)."""
  return sum(s.kernel_size ** 2 * s.in_channels * s.out_channels + s.out_channels for s in model.conv_specs())
