"""The ADGAN/PATN family: a generator trained against two ResnetDiscriminators.

PATN introduced, and ADGAN took over unchanged (shared/reference/adgan.md
section 2, peers.md 1.2-1.3): D_PB (shape consistency) on concat(image,
target pose) and D_PP (appearance consistency) on concat(image, source image),
and one training iteration of

  1. the generator update on L1 + perceptual (+ the system's extra terms, e.g.
     ADGAN's CX) + the mean of the two GAN terms, with both Ds in training mode;
  2. D_PP, then D_PB, on the detached fakes of the same forward pass (through a
     history pool of past fakes when `config.discriminator.pool_size` > 0:
     PATN on Market).

GAN loss (`config.loss.gan_type`): 'lsgan' (ADGAN, PATN on DeepFashion) or
'bce' (PATN on Market; D outputs logits, the loss applies the sigmoid stably).
Subclasses say how their generator is called (`generate`,
`generate_for_training`) and add loss terms (`extra_generator_terms`).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping

import jax
import jax.numpy as jnp
import optax

from jaxpose import gan
from jaxpose import losses
from jaxpose.io import torch_checkpoint
from jaxpose.models import discriminator as discriminator_lib
from jaxpose.models import vgg as vgg_lib
from jaxpose.systems import base

# The perceptual loss's layer (ADGAN's and PATN's `L1_plus_perceptualLoss`).
PERCEPTUAL_LAYER = "relu1_2"


def torch_generator_kind(kind: str, model_cls, hparams_from_torch, from_torch) -> Callable[[str], tuple[Any, dict]]:
  """An importer of an official generator .pth: hyperparameters read off the shapes -> (module, variables)."""
  def read(path: str) -> tuple[Any, dict]:
    state_dict = torch_checkpoint.load_state_dict(path)
    source = f"{path} ({kind})"
    model = model_cls(**hparams_from_torch(state_dict, source))
    return model, jax.tree.map(jnp.asarray, from_torch(state_dict, model, source=source))
  return read


def discriminator_kind(kind: str, which: str | None) -> Callable[[str], tuple[Any, dict]]:
  """An importer of ResnetDiscriminator files: D_PB ('pb'), D_PP ('pp'; swapped files are caught
  early) or any input channels (None)."""
  def read(path: str) -> tuple[Any, dict]:
    state_dict = torch_checkpoint.load_state_dict(path)
    source = f"{path} ({kind})"
    hparams, in_channels = discriminator_lib.hparams_from_torch(state_dict, source)
    # D_PP sees (image, source image) = 6 channels, D_PB (image, pose) = 3 + pose channels.
    if which == "pp" and in_channels != 6:
      raise ValueError(f"{path}: D_PP takes 6 input channels, this file has {in_channels} (a D_PB file?)")
    if which == "pb" and in_channels == 6:
      raise ValueError(f"{path}: D_PB takes image + pose channels, this file has 6 (a D_PP file?)")
    model = discriminator_lib.ResnetDiscriminator(**hparams)
    return model, jax.tree.map(jnp.asarray, discriminator_lib.from_torch(state_dict, model, in_channels,
                                                                          source=source))
  return read


def shape_input(image: jax.Array, batch: dict) -> jax.Array:
  """D_PB (shape consistency) sees the image with the target pose: 3 + 18 channels."""
  return jnp.concatenate([image, batch["target_pose"].astype(image.dtype)], axis=-1)


def appearance_input(image: jax.Array, batch: dict) -> jax.Array:
  """D_PP (appearance consistency) sees the image with the source image: 3 + 3 channels."""
  return jnp.concatenate([image, batch["source_image"].astype(image.dtype)], axis=-1)


# (name suffix, input builder), in the official update order: D_PP first, then D_PB.
_DISCRIMINATORS = (("pp", appearance_input), ("pb", shape_input))


class DualDiscriminatorGAN(base.System):
  """Shared base of ADGAN and PATN (see the module docstring)."""

  networks: ClassVar[tuple[str, ...]] = ("generator", "discriminator_pb", "discriminator_pp")

  def __init__(self, config, pretrained: base.Pretrained):
    super().__init__(config, pretrained)
    self.dtype = base.compute_dtype(config)
    d = config.discriminator
    make_d = lambda: discriminator_lib.ResnetDiscriminator(
        width=d.width, n_blocks=d.n_blocks, dropout_rate=d.dropout_rate, norm=d.get("norm", "instance"),
        dtype=self.dtype)
    self.discriminators = {"pb": make_d(), "pp": make_d()}
    arch = pretrained.archs.get("loss_vgg")
    self.loss_vgg = vgg_lib.VGG(arch=arch, dtype=self.dtype) if arch else None
    self.gan_loss = losses.gan_loss(config.loss.get("gan_type", "lsgan"))
    self.pool_size = int(config.discriminator.get("pool_size", 0))
    # Adam for G and both Ds, as the official code (a system may give a network its own, see `optimizer`).
    self.tx = {name: self.optimizer(name) for name in self.networks}
    self.generator = self.build_generator()

  # ---------------------------------------------------------------- per system

  def build_generator(self):
    raise NotImplementedError

  def init_generator(self, rng: jax.Array, example: dict, frozen: Mapping[str, Any]) -> dict:
    raise NotImplementedError

  def generate_for_training(self, variables: dict, batch: dict, rng: jax.Array) -> tuple[jax.Array, dict]:
    """Training-mode forward pass -> (image, updated non-parameter collections)."""
    raise NotImplementedError

  def extra_generator_terms(self, state: base.TrainState, fake: jax.Array, batch: dict) -> dict[str, tuple]:
    """{metric name: (weight, loss)} added to the generator loss (ADGAN: CX)."""
    return {}

  # ---------------------------------------------------------------- config

  @classmethod
  def check(cls, config, source) -> None:
    pool_size = int(config.discriminator.get("pool_size", 0))
    if pool_size < 0:
      raise ValueError(f"config.discriminator.pool_size must be >= 0, got {pool_size}")
    losses.gan_loss(config.loss.get("gan_type", "lsgan"))

  @classmethod
  def checkpoint_kinds(cls) -> dict[str, Callable[[str], tuple[Any, dict]]]:
    return {"resnet_discriminator": discriminator_kind("resnet_discriminator", None)}

  @classmethod
  def read_official(cls, config, path: str, networks: tuple[str, ...]) -> tuple[dict, str]:
    _, variables = cls.checkpoint_kinds()[cls.official_files["generator"][0]](path)
    return cls.read_official_siblings(path, networks, {"generator": variables})

  # ---------------------------------------------------------------- state

  def init(self, rng, example, frozen):
    g_rng, pb_rng, pp_rng = jax.random.split(rng, 3)
    nets = {"generator": self.init_generator(g_rng, example, frozen)}
    opt = {"generator": self.tx["generator"].init(nets["generator"]["params"])}
    aux = {}
    for name, make_input, d_rng in (("pb", shape_input, pb_rng), ("pp", appearance_input, pp_rng)):
      d_input = make_input(example["target_image"], example)
      aux[f"pool_{name}"] = gan.init_image_pool(self.pool_size, d_input.shape[1:])
      variables = dict(self.discriminators[name].init({"params": d_rng}, d_input, train=False))
      nets[f"discriminator_{name}"] = variables
      opt[f"discriminator_{name}"] = self.tx[f"discriminator_{name}"].init(variables["params"])
    return nets, opt, aux, {k: frozen.get(k) for k in ("loss_vgg", "cx_vgg")}

  # ---------------------------------------------------------------- the step

  def train_step(self, state: base.TrainState, batch: dict, rng: jax.Array) -> tuple[base.TrainState, dict]:
    """One G update, then D_PP, then D_PB; returns the new state and scalar metrics."""
    loss_cfg = self.config.loss
    rng_g_pb, rng_g_pp, rng_d_pb, rng_d_pp = jax.random.split(rng, 4)
    # Keys added for PATN (generator dropout, the pools) come from a separate
    # branch, so the four above, and with them ADGAN's runs, stay as they were.
    rng_g, rng_pool_pb, rng_pool_pp = jax.random.split(jax.random.fold_in(rng, 0x9A7), 3)
    d_rngs = {"pb": (rng_g_pb, rng_d_pb), "pp": (rng_g_pp, rng_d_pp)}
    target = batch["target_image"]
    generator_vars = state.nets["generator"]

    def generator_loss(params):
      fake, g_collections = self.generate_for_training({**generator_vars, "params": params}, batch, rng_g)
      terms = {"g_l1": losses.l1_loss(fake, target)}
      total = loss_cfg.l1 * terms["g_l1"]
      if loss_cfg.perceptual:
        terms["g_perceptual"] = losses.perceptual_loss(self.loss_vgg, state.frozen["loss_vgg"], fake, target,
                                                       PERCEPTUAL_LAYER)
        total += loss_cfg.perceptual * terms["g_perceptual"]
      for name, (weight, value) in self.extra_generator_terms(state, fake, batch).items():
        terms[name] = value
        total += weight * value
      # D in training mode, as in the official backward_G: dropout on and, with
      # batch norm, D's running statistics move with these fake batches too.
      gan_terms, d_after = [], {}
      for name, make_input in (("pb", shape_input), ("pp", appearance_input)):
        out, d_after[name] = gan.apply_discriminator(self.discriminators[name],
                                                     state.nets[f"discriminator_{name}"],
                                                     make_input(fake, batch), d_rngs[name][0])
        gan_terms.append(self.gan_loss(out, True))
      terms["g_gan"] = sum(gan_terms) / len(gan_terms)
      total += loss_cfg.gan * terms["g_gan"]
      terms["g_total"] = total
      return total, (fake, terms, g_collections, {n: gan.non_params(v) for n, v in d_after.items()})

    (_, (fake, metrics, g_collections, d_collections)), g_grads = jax.value_and_grad(
        generator_loss, has_aux=True)(generator_vars["params"])
    g_updates, g_opt = self.tx["generator"].update(g_grads, state.opt["generator"], generator_vars["params"])
    nets = {"generator": {**generator_vars, **g_collections,
                          "params": optax.apply_updates(generator_vars["params"], g_updates)}}
    opt = {"generator": g_opt}
    metrics["g_grad_norm"] = optax.tree.norm(g_grads)
    fake = jax.lax.stop_gradient(fake)

    # The D inputs of this batch's fakes, through the history pools (pass-through
    # when there are none); D_PP's pool is queried first, as the official order.
    aux, fake_inputs = {}, {}
    for name, make_input, pool_rng in (("pp", appearance_input, rng_pool_pp), ("pb", shape_input, rng_pool_pb)):
      aux[f"pool_{name}"], fake_inputs[name] = gan.query_image_pool(state.aux[f"pool_{name}"],
                                                                    make_input(fake, batch), pool_rng)
    for name, make_input in _DISCRIMINATORS:
      key = f"discriminator_{name}"
      variables = {**state.nets[key], **d_collections[name]}
      nets[key], opt[key], d_metrics = gan.discriminator_update(
          self.discriminators[name], variables, state.opt[key], self.tx[key], make_input(target, batch),
          fake_inputs[name], loss_cfg.gan, d_rngs[name][1], self.gan_loss)
      metrics[f"d_{name}"] = d_metrics["loss"]
      metrics[f"d_{name}_grad_norm"] = d_metrics["grad_norm"]
    return state.replace(nets=nets, opt=opt, aux=aux), metrics

