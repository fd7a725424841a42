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
import re
from typing import Any, Mapping

from absl import logging
import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from jaxpose.io import keras_h5
from jaxpose.io import state_dict as sd_lib
from jaxpose.io import torch_checkpoint

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


# ----------------------------------------------------------------------------
# Official weights: CMU's OpenPose COCO body network as Hzzone's .pth or pose-gan's Keras .h5
# (read through jaxpose.io.state_dict's one mapping helper)

# michalfaber's later Keras graphs (the ones with the Lambda normalisation layer)
# call stage 1 `Mconv{1..5}_stage1_L{b}` instead of caffe's `conv5_{1..5}_CPM_L{b}`.
_KERAS_STAGE1_ALIAS = re.compile(r"Mconv([1-5])_stage1_L([12])")
_OPENPOSE_NAME = re.compile(r"conv\d_\d|conv4_[34]_CPM|conv5_[1-5]_CPM_L[12]|Mconv[1-7]_stage\d+_L[12]")


def torch_table(model: OpenPoseBody, *, keras: bool = False) -> list[sd_lib.Entry]:
  """Caffe layer names <-> `params[<name>]`.

  File keys are `<name>.weight` (OIHW) / `<name>.bias`, as in Hzzone's
  body_pose_model.pth, or with keras `<name>/kernel` (HWIO) / `<name>/bias`,
  the names `from_keras` gives a Keras file's arrays.
  """
  table = []
  for spec in model.conv_specs():
    if keras:
      table += [sd_lib.Entry(f"{spec.name}/kernel", "params", (spec.name, "kernel"), "keras_conv"),
                sd_lib.Entry(f"{spec.name}/bias", "params", (spec.name, "bias"), "vector")]
    else:
      table += sd_lib.conv(spec.name, "params", (spec.name,))
  return table


def _openpose_hparams_from_channels(channels: Mapping[str, tuple[int, int]], source: str) -> dict[str, Any]:
  """OpenPoseBody kwargs from {caffe conv name: (in channels, out channels)}."""
  needed = ["conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv4_3_CPM", "conv4_4_CPM", "conv5_1_CPM_L1",
            "conv5_4_CPM_L1", "conv5_5_CPM_L1", "conv5_5_CPM_L2"]
  missing = [name for name in needed if name not in channels]
  if missing:
    raise sd_lib.StateDictMismatchError(source, [f"missing conv {name} (needed to infer the architecture)"
                                          for name in missing])
  num_stages = 1
  while f"Mconv1_stage{num_stages + 1}_L1" in channels:
    num_stages += 1
  out = {name: channels[name][1] for name in needed}
  return dict(backbone_widths=(out["conv1_1"], out["conv2_1"], out["conv3_1"], out["conv4_1"]),
              cpm_widths=(out["conv4_3_CPM"], out["conv4_4_CPM"]), stage_width=out["conv5_1_CPM_L1"],
              stage1_hidden=out["conv5_4_CPM_L1"], num_stages=num_stages, num_pafs=out["conv5_5_CPM_L1"],
              num_heatmaps=out["conv5_5_CPM_L2"])


def hparams_from_torch(state_dict: Mapping[str, Any], source: str = "OpenPose state_dict"
                                ) -> dict[str, Any]:
  """OpenPoseBody constructor kwargs read off the OIHW shapes of a body_pose_model.pth-style state_dict."""
  sd = sd_lib.strip_module_prefix(state_dict)
  channels = {key[:-len(".weight")]: (np.shape(v)[1], np.shape(v)[0]) for key, v in sd.items()
              if key.endswith(".weight") and np.ndim(v) == 4}
  return _openpose_hparams_from_channels(channels, source)


def from_torch(state_dict: Mapping[str, Any], model: OpenPoseBody, *,
               source: str = "OpenPose state_dict") -> dict:
  """Hzzone's body_pose_model.pth state_dict (184 OIHW tensors by caffe name) -> {'params': ...}."""
  return sd_lib.state_dict_to_variables(state_dict, torch_table(model), abstract_variables(model),
                                        source=source)


def to_torch(variables: Mapping[str, Any], model: OpenPoseBody | None = None
                             ) -> dict[str, np.ndarray]:
  """Flax variables -> the body_pose_model.pth layout (`conv1_1.weight` OIHW, ...), e.g. for test fixtures."""
  if model is None:
    model = OpenPoseBody(**_openpose_hparams_from_channels(
        {name: tuple(np.shape(v["kernel"])[2:]) for name, v in variables["params"].items()}, "variables"))
  return sd_lib.variables_to_state_dict({"params": variables["params"]}, torch_table(model))


def _keras_arrays(layer: keras_h5.KerasLayer, name: str, backend: str) -> dict[str, np.ndarray]:
  """A Keras conv layer's arrays keyed `<name>/kernel`, `<name>/bias` (other weights keep their short name)."""
  out = {}
  for short, array in zip(layer.short_names, layer.arrays):
    # Keras 2 names them kernel/bias; Keras 1 `<layer>_W` / `<layer>_b`.
    if short == "kernel" or short == "W" or short.endswith("_W"):
      role = "kernel"
    elif short == "bias" or short == "b" or short.endswith("_b"):
      role = "bias"
    else:
      role = short
    if role == "kernel" and backend == "theano" and array.ndim == 4:
      # What Keras' own loader does with a Theano file (convert_kernel): Theano convolves, TF correlates.
      array = array[::-1, ::-1]
    out[f"{name}/{role}"] = array
  return out


def _openpose_keras_orders(num_layers: int) -> list[tuple[str, list[str]]]:
  """Candidate caffe names for weighted layers in a file's recorded order, when its names are unknown.

  Keras records a functional model's layers by depth; the two branches of a
  stage may then alternate, or follow one another. Each candidate is checked
  against the shapes afterwards, and only an unambiguous match is used.
  """
  rest = num_layers - len(backbone_names()) - 10
  if rest < 0 or rest % 14:
    return []
  stages = 1 + rest // 14
  orders = []
  for label, first, interleave in (("branch 1 then branch 2 per stage", 1, False),
                                   ("branch 2 then branch 1 per stage", 2, False),
                                   ("branches alternating by depth, branch 1 first", 1, True),
                                   ("branches alternating by depth, branch 2 first", 2, True)):
    names = list(backbone_names())
    for stage in range(1, stages + 1):
      a, b = stage_names(stage, first), stage_names(stage, 3 - first)
      names += [n for pair in zip(a, b) for n in pair] if interleave else a + b
    orders.append((label, names))
  return orders


def _openpose_from_named_arrays(arrays: Mapping[str, np.ndarray], source: str
                                ) -> tuple[OpenPoseBody, dict]:
  channels = {key[:-len("/kernel")]: (np.shape(v)[2], np.shape(v)[3]) for key, v in arrays.items()
              if key.endswith("/kernel") and np.ndim(v) == 4}
  model = OpenPoseBody(**_openpose_hparams_from_channels(channels, source))
  variables = sd_lib.state_dict_to_variables(arrays, torch_table(model, keras=True),
                                             abstract_variables(model), source=source)
  return model, variables


def from_keras(weights: keras_h5.KerasWeightsFile, *, source: str | None = None
                             ) -> tuple[OpenPoseBody, dict]:
  """A Keras OpenPose file (pose-gan's pose_estimator.h5, michalfaber's model.h5) -> (model, variables).

  The layout of pose_estimator.h5 is not documented anywhere we could check,
  so the layers are probed: first by name (caffe's, or michalfaber's later
  `Mconv{i}_stage1_L{b}` for stage 1); if no layer has such a name, by the
  recorded layer order, trying the orders Keras can record the two branches
  in and keeping the one whose shapes all fit (a warning says so). Weightless
  layers (Input, Activation, pooling, Concatenate, a Lambda normalisation) are
  ignored. Anything else raises `CheckpointLayoutError`, which lists every
  problem and then what the file holds.
  """
  source = source or f"{weights.path} (openpose_body)"
  weighted = weights.weighted_layers()
  named = {}
  for layer in weighted:
    alias = _KERAS_STAGE1_ALIAS.fullmatch(layer.name)
    named[f"conv5_{alias.group(1)}_CPM_L{alias.group(2)}" if alias else layer.name] = layer
  if any(_OPENPOSE_NAME.fullmatch(name) for name in named):
    arrays = {}
    for name, layer in named.items():
      arrays.update(_keras_arrays(layer, name, weights.backend))
    try:
      return _openpose_from_named_arrays(arrays, source)
    except sd_lib.StateDictMismatchError as e:
      raise sd_lib.CheckpointLayoutError(source, e.problems, weights.describe()) from None
  if not weights.layer_order_recorded:
    raise sd_lib.CheckpointLayoutError(source, ["no layer has an OpenPose (caffe) name, and the file records no "
                                         "layer order (no 'layer_names' attribute) to match them by"],
                                weights.describe())
  orders = _openpose_keras_orders(len(weighted))
  if not orders:
    raise sd_lib.CheckpointLayoutError(
        source, [f"no layer has an OpenPose (caffe) name, and its {len(weighted)} layers with weights are not "
                 "12 + 10 + 14k, the convs of an OpenPose body network with k + 1 stages"], weights.describe())
  fits, failures = [], []
  for label, names in orders:
    arrays = {}
    for name, layer in zip(names, weighted):
      arrays.update(_keras_arrays(layer, name, weights.backend))
    try:
      model, variables = _openpose_from_named_arrays(arrays, source)
    except sd_lib.StateDictMismatchError as e:
      failures.append(f"by recorded order ({label}): {len(e.problems)} problems, first: {e.problems[0]}")
      continue
    # Shapes alone cannot tell the branches apart (swapping them swaps 38 and 19 consistently):
    # branch 1 is the one with the 38 PAF channels.
    if (model.num_pafs, model.num_heatmaps) != (NUM_PAFS, NUM_HEATMAPS):
      failures.append(f"by recorded order ({label}): branch 1 would output {model.num_pafs} channels, "
                      f"branch 2 {model.num_heatmaps} (expected {NUM_PAFS} PAFs, "
                      f"{NUM_HEATMAPS} confidence maps)")
      continue
    fits.append((label, names, (model, variables)))
  if len(fits) != 1:
    reason = (["no layer has an OpenPose (caffe) name, and no order of its layers fits the network's shapes:"]
              + failures if not fits else
              [f"layer names unknown and {len(fits)} orders fit the shapes ({', '.join(f[0] for f in fits)}): "
               "ambiguous"])
    raise sd_lib.CheckpointLayoutError(source, reason, weights.describe())
  label, names, result = fits[0]
  logging.warning("%s: no layer has an OpenPose (caffe) name; matched the %d convs by the recorded layer order "
                  "(%s) and their shapes: %s", source, len(names), label,
                  ", ".join(f"{layer.name}->{name}" for layer, name in zip(weighted, names)))
  return result


def import_file(path: str) -> tuple[OpenPoseBody, dict]:
  """body_pose_model.pth (torch-free reader) or a Keras .h5 (h5py), told apart by content -> (model, variables)."""
  source = f"{path} (openpose_body)"
  if keras_h5.is_hdf5(path):
    model, variables = from_keras(keras_h5.read_keras_h5(path), source=source)
  else:
    state_dict = torch_checkpoint.load_state_dict(path)
    model = OpenPoseBody(**hparams_from_torch(state_dict, source))
    variables = from_torch(state_dict, model, source=source)
  return model, variables
