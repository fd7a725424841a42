"""SDGAN (Lin, Yu, Geng, "Stacked deformable GAN for pose-based person image generation") as a jaxpose system.

SDGAN is Deformable GAN with a multi-scale generator (shared/reference/
peers.md section 3): everything here that is not about the three scales is
`jaxpose.systems.defgan.DeformableGAN` (data, part warps, the D-first step on
two batches, BCE on logits, Adam 2e-4).

Networks: `jaxpose.models.defgan.SDGANGenerator` (always with deformable
skips) in one of two variants (`config.generator.variant`):

  * 'released', the authors' code: side outputs at 1/4 and 1/2 resolution
    mapped to the full image by fully connected layers (250,024,801
    parameters at Market; the FC sizes grow with the image, so only small
    images are practical);
  * 'paper', our design of what the paper describes: tanh images at 1/4, 1/2
    and full resolution, each finer scale decoded from the coarser one's
    features and the pose code.

Discriminator: 'released' as the released code, one shared 'call'
discriminator judging all three (full-size) outputs; 'paper': the same
discriminator judges the full image only, and the 1/2 and 1/4 images learn
from their L1 terms alone. We first let it judge them nearest-upsampled to
full size too; on the synthetic people the discriminator told the blocky
upsampled images apart at once and the generator answered with high-contrast
checkerboards at 1/2 scale (its adversarial term rose to 13 and the L1 of
the 1/2 image from 0.22 to 0.33 over 800 steps).

Losses as the released code: D: sum over the judged outputs of [-mean log
D(real) - mean log(1 - D(fake))]; G: the adversarial term on each judged
output, plus l1 * (w_full * reconstruction(full) + w_half * L1(half) +
w_quarter * L1(quarter)) with `config.loss.scale_weights` = (w_full, w_half,
w_quarter).
The released code counts L1(full) twice when it uses no content loss: its
Market config says (2, 1, 1). The full-scale reconstruction is Deformable
GAN's (L1, nearest-neighbour, content features); the side scales use plain
L1, against the target itself ('released') or the target averaged down to
their size ('paper').

Generation returns {'image': full, 'image_half', 'image_quarter'}; the
sample grids show all three (`sample_columns`). SDGAN's code never saved its
weights, so there is no official checkpoint to read.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxpose import losses
from jaxpose import visualize
from jaxpose.models import defgan as defgan_lib
from jaxpose.systems import defgan


def upsample_nearest(images: jax.Array, size: tuple[int, int]) -> jax.Array:
  """(B, h, w, C) -> (B, H, W, C) by pixel repetition (H, W integer multiples of h, w)."""
  factor_h, factor_w = size[0] // images.shape[1], size[1] // images.shape[2]
  return jnp.repeat(jnp.repeat(images, factor_h, axis=1), factor_w, axis=2)


def average_down(images: jax.Array, size: tuple[int, int]) -> jax.Array:
  """(B, H, W, C) -> (B, h, w, C), each output pixel the mean of its block (H, W integer multiples of h, w)."""
  batch, height, width, channels = images.shape
  return images.reshape(batch, size[0], height // size[0], size[1], width // size[1], channels).mean(axis=(2, 4))


class SDGAN(defgan.DeformableGAN):
  """SDGAN: see the module docstring."""

  name: ClassVar[str] = "sdgan"
  official_files: ClassVar[Mapping[str, tuple[str, str]]] = {}

  @classmethod
  def warped(cls, config) -> bool:
    return True  # SDGAN's generator always warps its skips

  @classmethod
  def check(cls, config, source) -> None:
    super().check(config, source)
    if config.generator.variant not in defgan_lib.SDGAN_VARIANTS:
      raise ValueError(f"config.generator.variant must be one of {defgan_lib.SDGAN_VARIANTS}, got "
                       f"{config.generator.variant!r}")
    if len(config.loss.scale_weights) != 3:
      raise ValueError(f"config.loss.scale_weights must be (full, half, quarter), got {config.loss.scale_weights}")

  @classmethod
  def checkpoint_kinds(cls):
    return {}

  @classmethod
  def read_official(cls, config, path, networks):
    raise ValueError(f"{path}: SDGAN's code never saved its weights, so there is no official SDGAN file to read "
                     "(a Deformable GAN generator .h5 is read by config.model='defgan'); use one of our run "
                     "directories")

  def build_generator(self):
    g = self.config.generator
    return defgan_lib.SDGANGenerator(variant=g.variant, encoder_widths=tuple(g.encoder_widths),
                                     decoder_widths=tuple(g.decoder_widths), dropout_rate=g.dropout_rate,
                                     dtype=self.dtype)

  def generator_outputs(self, variables, batch, train, rng=None):
    """{'image': full, 'image_half', 'image_quarter'} (the smaller two at their own size for 'paper')."""
    out = self.generator.apply(variables, batch["source_image"], batch["source_pose"], batch["target_pose"],
                               batch["part_transforms"], batch["part_masks"], train=train,
                               rngs={"dropout": rng} if train else None)
    return {"image": out.full, "image_half": out.half, "image_quarter": out.quarter}

  def _full_size(self, outputs: dict) -> list[jax.Array]:
    size = outputs["image"].shape[1:3]
    return [outputs["image"]] + [upsample_nearest(outputs[k], size) for k in ("image_half", "image_quarter")]

  def discriminated(self, outputs):
    """'released': the three outputs (all full size); 'paper': the full image only (see the module docstring)."""
    return self._full_size(outputs) if self.config.generator.variant == "released" else [outputs["image"]]

  def reconstruction_terms(self, outputs, batch, frozen):
    target = batch["target_image"]
    full, half, quarter = (float(w) for w in self.config.loss.scale_weights)
    l1 = self.config.loss.l1
    terms = {"g_reconstruction": (l1 * full, self.reconstruction(outputs["image"], target, frozen))}
    for name, weight in (("half", half), ("quarter", quarter)):
      image = outputs[f"image_{name}"]
      terms[f"g_l1_{name}"] = (l1 * weight, losses.l1_loss(image, average_down(target, image.shape[1:3])))
    return terms

  def loss_panels(self):
    return (("discriminator", ("d_loss",)),
            ("generator", ("g_total", "g_gan", "g_reconstruction", "g_l1_half", "g_l1_quarter")))

  def sample_columns(self, batch: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    del batch
    full, half, quarter = (visualize.to_uint8(np.asarray(x)) for x in self._full_size(outputs))
    return {"full": full, "1/2 scale": half, "1/4 scale": quarter}


SYSTEM = SDGAN
