"""Deformable GAN's losses, as pure functions (to move into jaxpose/losses.py).

Official `conditional_gan.py` (`nn_loss`, `CGAN`) and the `gan` submodule's
`GAN` at the pinned commit (shared/reference/peers.md section 2.4):

  * discriminator: -mean log D(real) - mean log(1 - D(fake));
  * generator: gan_penalty_weight * (-mean log D(fake)) + l1_penalty_weight *
    reconstruction, the reconstruction being mean |x_hat - x| or, with
    `--nn_loss_area_size n > 1`, `nearest_neighbour_loss` (on images or on
    VGG19 block1_conv2 features).

The official takes log(D + 1e-7) of the discriminator's sigmoid output; here
the discriminator returns logits (`DefGANDiscriminator`) and the BCE terms
are written with log-sigmoid, log D = -softplus(-logit) and log(1 - D) =
-softplus(logit): the same values without the 1e-7 floor (which only caps
each term at -log(1e-7) ~ 16.1 for a saturated D) and without overflow. SDGAN
sums these terms over its three outputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def nearest_neighbour_loss(generated: Array, reference: Array, area: int) -> Array:
  """The official `nn_loss(reference, target=generated, (area, area))`, averaged.

  For each generated pixel, the smallest L1 distance (summed over channels)
  to the reference's pixels in the area x area window around the same
  position; the reference is padded with -10000, so positions off the image
  never win. The mean over batch and pixels is returned (Keras averages the
  loss map).

  Args:
    generated: (B, H, W, C) generated images or features.
    reference: (B, H, W, C) the real ones (gradients flow into both).
    area: odd window side n (1 is the per-pixel channel-summed L1).

  Returns:
    scalar float32.
  """
  if generated.shape != reference.shape or generated.ndim != 4:
    raise ValueError(f"generated and reference must be equal (B, H, W, C) shapes, got {generated.shape} "
                     f"and {reference.shape}")
  if area < 1 or area % 2 == 0:
    raise ValueError(f"area must be an odd window side >= 1 (the official pads n // 2 on each side), got {area}")
  _, height, width, _ = generated.shape
  pad = area // 2
  generated = generated.astype(jnp.float32)
  padded = jnp.pad(reference.astype(jnp.float32), ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                   constant_values=-10000.0)
  distances = [jnp.sum(jnp.abs(padded[:, i:i + height, j:j + width] - generated), axis=-1)
               for i in range(area) for j in range(area)]
  return jnp.mean(jnp.min(jnp.stack(distances), axis=0))


def discriminator_loss(real_logits: Array, fake_logits: Array) -> Array:
  """-mean log D(real) - mean log(1 - D(fake)), D = sigmoid(logits); any equal-rank logits -> scalar."""
  return jnp.mean(jax.nn.softplus(-real_logits.astype(jnp.float32))) + jnp.mean(
      jax.nn.softplus(fake_logits.astype(jnp.float32)))


def generator_loss(fake_logits: Array) -> Array:
  """-mean log D(fake), D = sigmoid(logits) (the non-saturating loss) -> scalar."""
  return jnp.mean(jax.nn.softplus(-fake_logits.astype(jnp.float32)))
