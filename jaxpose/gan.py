"""GAN pieces every system shares: discriminators in training mode, the
discriminator update, and the history pool of generated images.

Pure functions on Flax modules and variables; a system's `train_step` calls
them in its own order.
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax


def apply_discriminator(net, variables: dict, x: jax.Array, rng: jax.Array) -> tuple[jax.Array, dict]:
  """D in training mode (dropout on, batch norm on batch statistics) -> (output, variables).

  With batch norm the returned variables carry the updated running statistics
  (the official code never puts D in eval mode, so even the generator's
  adversarial pass moves them).
  """
  if "batch_stats" in variables:
    out, updates = net.apply(variables, x, train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    return out, {**variables, **updates}
  return net.apply(variables, x, train=True, rngs={"dropout": rng}), variables


def non_params(variables: dict) -> dict:
  """The collections of `variables` other than 'params' (e.g. 'batch_stats')."""
  return {k: x for k, x in variables.items() if k != "params"}


def discriminator_loss_and_grads(net, variables: dict, real: jax.Array, fake: jax.Array, weight: float,
                                 rng: jax.Array, gan_loss: Callable[[jax.Array, bool], jax.Array]):
  """0.5 * weight * (GAN(D(real), real) + GAN(D(fake), fake)), dropout active.

  D sees the real batch first, then the fake one, as the official
  backward_D_basic. Returns ((loss, non-parameter collections after both
  passes), gradients w.r.t. 'params').
  """
  def loss_fn(params):
    v = {**variables, "params": params}
    rng_real, rng_fake = jax.random.split(rng)
    real_out, v = apply_discriminator(net, v, real, rng_real)
    fake_out, v = apply_discriminator(net, v, fake, rng_fake)
    loss = 0.5 * weight * (gan_loss(real_out, True) + gan_loss(fake_out, False))
    return loss, non_params(v)
  return jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])


def discriminator_update(net, variables: dict, opt_state: Any, tx: optax.GradientTransformation,
                         real: jax.Array, fake: jax.Array, weight: float, rng: jax.Array,
                         gan_loss: Callable[[jax.Array, bool], jax.Array]) -> tuple[dict, Any, dict]:
  """One optimizer step of a discriminator on (real, fake) inputs.

  Returns (new variables, new optimizer state, {'loss', 'grad_norm'}).
  """
  (loss, collections), grads = discriminator_loss_and_grads(net, variables, real, fake, weight, rng, gan_loss)
  updates, opt_state = tx.update(grads, opt_state, variables["params"])
  new_variables = {**variables, **collections, "params": optax.apply_updates(variables["params"], updates)}
  return new_variables, opt_state, {"loss": loss, "grad_norm": optax.tree.norm(grads)}


# ----------------------------------------------------------------------------
# History pool of generated images


@flax.struct.dataclass
class ImagePool:
  """The official `ImagePool` (pix2pix/CycleGAN's history buffer) as arrays.

  PATN's discriminators are trained on fakes drawn from a pool of the last
  generated D inputs (Shrivastava et al.'s history trick); each D has its own
  pool, which stores what that D sees (e.g. concat(fake image, target pose)),
  so an old fake comes back with its own condition.

  Attributes:
    images: (size, H, W, C) stored D inputs (zeros where nothing is stored yet).
    num_stored: int32 scalar, how many slots are filled (<= size).
  """
  images: jax.Array
  num_stored: jax.Array


def init_image_pool(size: int, example_shape: tuple[int, ...], dtype=jnp.float32) -> ImagePool | None:
  """An empty pool of `size` images of `example_shape`; None for size 0 (pass-through)."""
  if size < 0:
    raise ValueError(f"pool size must be >= 0, got {size}")
  if size == 0:
    return None
  return ImagePool(images=jnp.zeros((size,) + tuple(example_shape), dtype), num_stored=jnp.zeros((), jnp.int32))


def query_image_pool(pool: ImagePool | None, images: jax.Array, rng: jax.Array
                     ) -> tuple[ImagePool | None, jax.Array]:
  """The official `ImagePool.query`, one sample after the other: -> (new pool, images for D).

  For each sample of the batch, in order: while the pool is not full, store it
  and return it; once full, with probability 1/2 return a uniformly chosen
  stored image and put the new one in its slot, else return the new one. A
  later sample can thus get an image stored by an earlier one of the same
  batch, as in the official loop. A None pool (size 0) returns `images`.
  Pure: the draws come from `rng`, the state is in the returned pool.
  """
  if pool is None:
    return None, images
  size = pool.images.shape[0]

  def one(carry, inputs):
    stored, num_stored = carry
    image, key = inputs
    swap_key, slot_key = jax.random.split(key)
    filling = num_stored < size
    swap = ~filling & (jax.random.uniform(swap_key) > 0.5)
    slot = jnp.where(filling, num_stored, jax.random.randint(slot_key, (), 0, size))
    old = stored[slot]
    stored = stored.at[slot].set(jnp.where(filling | swap, image, old))
    return (stored, num_stored + filling.astype(jnp.int32)), jnp.where(swap, old, image)

  keys = jax.random.split(rng, images.shape[0])
  (stored, num_stored), out = jax.lax.scan(one, (pool.images, pool.num_stored),
                                           (images.astype(pool.images.dtype), keys))
  return ImagePool(images=stored, num_stored=num_stored), out.astype(images.dtype)
