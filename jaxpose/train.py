"""The GAN training engine: `train_and_evaluate(config, workdir)`.

One pure jitted step `(state, batch) -> (state, metrics)` does, as the official
ADGAN and PATN code: the generator update, then the appearance discriminator
D_PP, then the shape discriminator D_PB on the detached fake of the same
forward pass (through a history pool of past fakes when
`config.discriminator.pool_size` > 0, PATN on Market). Data parallelism is
`jax.jit` over a 1-D `data` mesh: the batch is split over all devices of all
hosts, parameters and optimizer states are replicated, and XLA inserts the
gradient all-reduce. The step's RNG key is `fold_in(seed key, step)`, so a
restarted run draws the same dropout masks and pool choices.

Models (`config.model`): 'adgan' and 'patn'. Networks with batch norm (PATN on
Market: generator and both discriminators) keep `batch_stats` in their
variables; every training-mode pass updates them as PyTorch's train-mode
BatchNorm does, including the discriminators' passes inside the generator's
adversarial loss (the official code never puts D in eval mode).

GAN loss (`config.loss.gan_type`): 'lsgan' (MSE to 1/0; ADGAN, PATN on
DeepFashion) or 'bce' (PATN on Market, `--no_lsgan`: the official D ends in a
Sigmoid followed by BCELoss; here D outputs logits and `losses.bce_gan_loss`
computes the same loss from them in the numerically stable log-sigmoid form).

Where training starts is decided in one place, `initial_state`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any, Callable

from absl import logging
from clu import metric_writers
from clu import periodic_actions
from etils import epath
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp

from jaxpose import checkpoints
from jaxpose import evaluation
from jaxpose import losses
from jaxpose import sharding as sharding_lib
from jaxpose import visualize
from jaxpose.data import keypoints as kp
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import pipeline
from jaxpose.data import sources
from jaxpose import networks as networks_lib

TRAIN_KEYS = ("source_image", "target_image", "source_pose", "target_pose",
              "source_parsing", "target_parsing")

LOSS_PANELS = (
    ("discriminators", ("d_pb", "d_pp")),
    ("generator", ("g_total", "g_l1", "g_perceptual", "g_gan")),
    ("contextual (CX)", ("g_cx",)),
)


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly where it stopped.

  Attributes:
    step: int32, number of completed updates.
    rng: the run's base PRNG key; step s uses fold_in(rng, s).
    generator: Flax variables; ADGAN's {'params': trainable, 'frozen':
      style-encoder VGG}, PATN's {'params'} or, with batch norm, {'params',
      'batch_stats'}.
    discriminator_pb, discriminator_pp: Flax variables (None when disabled),
      with 'batch_stats' for batch norm.
    generator_opt, discriminator_pb_opt, discriminator_pp_opt: Adam states.
    pool_pb, pool_pp: `ImagePool`s of past fake D inputs (None when
      config.discriminator.pool_size is 0), checkpointed with everything else.
    loss_vgg: {'frozen': ...} VGG for the perceptual loss (and CX unless cx_vgg).
    cx_vgg: {'frozen': ...} separate CX network (ADGAN's vgg_conv.pth) or None.
    nonfinite_step: -1, or the first step whose losses were NaN/Inf; from then
      on updates are skipped, so the state stays the last good one.
  """
  step: jax.Array
  rng: jax.Array
  generator: Any
  discriminator_pb: Any
  discriminator_pp: Any
  generator_opt: Any
  discriminator_pb_opt: Any
  discriminator_pp_opt: Any
  pool_pb: Any
  pool_pp: Any
  loss_vgg: Any
  cx_vgg: Any
  nonfinite_step: jax.Array


# ----------------------------------------------------------------------------
# Optimisation


def learning_rate_schedule(optim: ml_collections.ConfigDict) -> optax.Schedule:
  """Flat, then linear decay to 0 (the official per-epoch staircase, per step)."""
  flat = optax.constant_schedule(optim.learning_rate)
  if optim.decay_steps <= 0:
    return flat
  decay = optax.linear_schedule(optim.learning_rate, 0.0, optim.decay_steps)
  return optax.join_schedules([flat, decay], [optim.constant_steps])


def make_optimizer(optim: ml_collections.ConfigDict) -> optax.GradientTransformation:
  return optax.adam(learning_rate_schedule(optim), b1=optim.b1, b2=optim.b2)


# ----------------------------------------------------------------------------
# History pool of generated images (PATN on Market)


@flax.struct.dataclass
class ImagePool:
  """The official `ImagePool` (pix2pix/CycleGAN's history buffer) as arrays.

  PATN's discriminators are trained on fakes drawn from a pool of the last
  generated D inputs (Shrivastava et al.'s history trick); D_PB and D_PP each
  have their own pool, which stores what that D sees: concat(fake image,
  target pose) for D_PB, concat(fake image, source image) for D_PP (official
  `fake_PB_pool.query(cat(fake_p2, BP2))`), so an old fake comes back with
  its own condition.

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


# ----------------------------------------------------------------------------
# The step

GAN_TYPES = ("lsgan", "bce")


def gan_type(config) -> str:
  """config.loss.gan_type, 'lsgan' when the config has none (ADGAN's configs)."""
  value = config.loss.get("gan_type", "lsgan")
  if value not in GAN_TYPES:
    raise ValueError(f"config.loss.gan_type must be one of {GAN_TYPES}, got {value!r}")
  return value


def pool_size(config) -> int:
  """config.discriminator.pool_size, 0 (no history) when the config has none."""
  return int(config.discriminator.get("pool_size", 0))


def _gan_loss_fn(config) -> Callable[[jax.Array, bool], jax.Array]:
  # BCE takes D's logits: D has no final sigmoid here (networks.build), the loss
  # applies it in the stable log-sigmoid form.
  return losses.bce_gan_loss if gan_type(config) == "bce" else losses.lsgan_loss


def _apply_discriminator(net, variables, x, rng):
  """D in training mode (dropout on, batch norm on batch statistics) -> (output, variables).

  With batch norm the returned variables carry the updated running statistics.
  """
  if "batch_stats" in variables:
    out, updates = net.apply(variables, x, train=True, rngs={"dropout": rng}, mutable=["batch_stats"])
    return out, {**variables, **updates}
  return net.apply(variables, x, train=True, rngs={"dropout": rng}), variables


def _discriminator_loss(net, variables, real, fake, weight, rng, gan_loss):
  """0.5 * weight * (GAN(D(real), real) + GAN(D(fake), fake)), dropout active.

  Returns ((loss, non-parameter collections after both passes), gradients);
  D sees the real batch first, then the fake one, as the official backward_D_basic.
  """
  def loss_fn(params):
    v = {**variables, "params": params}
    rng_real, rng_fake = jax.random.split(rng)
    real_out, v = _apply_discriminator(net, v, real, rng_real)
    fake_out, v = _apply_discriminator(net, v, fake, rng_fake)
    loss = 0.5 * weight * (gan_loss(real_out, True) + gan_loss(fake_out, False))
    return loss, {k: x for k, x in v.items() if k != "params"}
  return jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])


def train_step(state: TrainState, batch: dict, *, nets: networks_lib.Networks,
               config: ml_collections.ConfigDict) -> tuple[TrainState, dict]:
  """One G update, then D_PP, then D_PB; returns the new state and scalar metrics."""
  loss_cfg = config.loss
  gan_loss = _gan_loss_fn(config)
  g_tx, d_tx = make_optimizer(config.optim), make_optimizer(config.optim)
  rng = jax.random.fold_in(state.rng, state.step)
  rng_g_pb, rng_g_pp, rng_d_pb, rng_d_pp = jax.random.split(rng, 4)
  # Keys added for PATN (generator dropout, the pools) come from a separate
  # branch, so the four above, and with them ADGAN's runs, stay as they were.
  rng_g, rng_pool_pb, rng_pool_pp = jax.random.split(jax.random.fold_in(rng, 0x9A7), 3)
  target = batch["target_image"]

  def generator_loss(params):
    variables = {**state.generator, "params": params}
    fake, g_collections = nets.generate_for_training(variables, batch, rng_g)
    terms = {"g_l1": losses.l1_loss(fake, target)}
    total = loss_cfg.l1 * terms["g_l1"]
    if loss_cfg.perceptual:
      fake_feat = nets.loss_vgg.apply(state.loss_vgg, losses.imagenet_normalize(fake), ("relu1_2",))
      real_feat = nets.loss_vgg.apply(state.loss_vgg, losses.imagenet_normalize(target), ("relu1_2",))
      terms["g_perceptual"] = losses.l1_loss(fake_feat["relu1_2"], jax.lax.stop_gradient(real_feat["relu1_2"]))
      total += loss_cfg.perceptual * terms["g_perceptual"]
    if loss_cfg.cx:
      cx_net, cx_vars = ((nets.cx_vgg, state.cx_vgg) if nets.cx_vgg is not None
                         else (nets.loss_vgg, state.loss_vgg))
      layers = ("relu3_2", "relu4_2")
      # ADGAN feeds CX the raw [-1, 1] images (no normalisation), as here.
      fake_feat = cx_net.apply(cx_vars, fake, layers)
      real_feat = jax.lax.stop_gradient(cx_net.apply(cx_vars, target, layers))
      chunk = loss_cfg.cx_chunk_size or None
      terms["g_cx"] = sum(
          losses.contextual_loss(real_feat[l], fake_feat[l], sigma=loss_cfg.cx_sigma, b=loss_cfg.cx_b,
                                 chunk_size=chunk) for l in layers)
      total += loss_cfg.cx * terms["g_cx"]
    # D in training mode, as in the official backward_G: dropout on and, with
    # batch norm, D's running statistics move with these fake batches too.
    gan_terms, d_after = [], {}
    if nets.discriminator_pb is not None:
      out, d_after["pb"] = _apply_discriminator(nets.discriminator_pb, state.discriminator_pb,
                                                nets.pb_input(fake, batch), rng_g_pb)
      gan_terms.append(gan_loss(out, True))
    if nets.discriminator_pp is not None:
      out, d_after["pp"] = _apply_discriminator(nets.discriminator_pp, state.discriminator_pp,
                                                nets.pp_input(fake, batch), rng_g_pp)
      gan_terms.append(gan_loss(out, True))
    if gan_terms:
      terms["g_gan"] = sum(gan_terms) / len(gan_terms)
      total += loss_cfg.gan * terms["g_gan"]
    terms["g_total"] = total
    d_collections = {name: {k: x for k, x in v.items() if k != "params"} for name, v in d_after.items()}
    return total, (fake, terms, g_collections, d_collections)

  (_, (fake, metrics, g_collections, d_collections)), g_grads = jax.value_and_grad(
      generator_loss, has_aux=True)(state.generator["params"])
  g_updates, generator_opt = g_tx.update(g_grads, state.generator_opt, state.generator["params"])
  generator = {**state.generator, **g_collections,
               "params": optax.apply_updates(state.generator["params"], g_updates)}
  fake = jax.lax.stop_gradient(fake)
  new = dict(generator=generator, generator_opt=generator_opt)
  metrics["g_grad_norm"] = optax.tree.norm(g_grads)

  # The D inputs of this batch's fakes, through the history pools (pass-through
  # when there are none); D_PP's pool is queried first, as the official order.
  fake_inputs = {}
  for name, make_input, pool_rng in (("pp", nets.pp_input, rng_pool_pp), ("pb", nets.pb_input, rng_pool_pb)):
    pool, fake_inputs[name] = query_image_pool(getattr(state, f"pool_{name}"), make_input(fake, batch), pool_rng)
    new[f"pool_{name}"] = pool

  for name, net, real_input, d_rng in (("pp", nets.discriminator_pp, nets.pp_input(target, batch), rng_d_pp),
                                       ("pb", nets.discriminator_pb, nets.pb_input(target, batch), rng_d_pb)):
    if net is None:
      continue
    variables = {**getattr(state, f"discriminator_{name}"), **d_collections[name]}
    opt_state = getattr(state, f"discriminator_{name}_opt")
    (d_loss, d_collections_after), d_grads = _discriminator_loss(net, variables, real_input, fake_inputs[name],
                                                                 loss_cfg.gan, d_rng, gan_loss)
    d_updates, opt_state = d_tx.update(d_grads, opt_state, variables["params"])
    new[f"discriminator_{name}"] = {**variables, **d_collections_after,
                                    "params": optax.apply_updates(variables["params"], d_updates)}
    new[f"discriminator_{name}_opt"] = opt_state
    metrics[f"d_{name}"] = d_loss
    metrics[f"d_{name}_grad_norm"] = optax.tree.norm(d_grads)

  finite = jnp.all(jnp.isfinite(jnp.stack(list(metrics.values()))))
  updated = state.replace(step=state.step + 1, **new)
  # A non-finite loss leaves the state untouched (no poisoned weights, ever) and
  # records the step; the host loop stops at its next check.
  new_state = jax.tree.map(lambda a, b: jnp.where(finite, a, b), updated, state)
  # Steps are counted 1-based like checkpoints: the update that would make step s.
  new_state = new_state.replace(nonfinite_step=jnp.where(
      (state.nonfinite_step < 0) & ~finite, state.step + 1, state.nonfinite_step))
  metrics["learning_rate"] = learning_rate_schedule(config.optim)(state.step)
  metrics["nonfinite_step"] = new_state.nonfinite_step
  return new_state, metrics


# ----------------------------------------------------------------------------
# State creation and the resume order



def input_shapes(config) -> dict[str, jax.ShapeDtypeStruct]:
  """Per-example shapes of the model inputs in a training batch."""
  height, width = config.data.image_size
  num_parsing = parsing_lib.num_classes(config.data.parsing_merge)
  channels = {"source_image": 3, "target_image": 3, "source_pose": kp.NUM_KEYPOINTS,
              "target_pose": kp.NUM_KEYPOINTS, "source_parsing": num_parsing, "target_parsing": num_parsing}
  return {k: jax.ShapeDtypeStruct((height, width, c), jnp.float32) for k, c in channels.items()}


def _create_state(seed, g_frozen, loss_vgg, cx_vgg, *, nets, config):
  """Random-init state with the given pretrained (frozen) feature weights."""
  rng = jax.random.PRNGKey(seed)
  # Parameters are drawn through an 'rbg' key: XLA compiles its RNG several
  # times faster than threefry's on CPU (11 s -> 5 s for the synthetic generator).
  init_seed = jax.random.randint(jax.random.fold_in(rng, 1), (), 0, 2**31 - 1)
  g_rng, pb_rng, pp_rng = jax.random.split(jax.random.key(init_seed, impl="rbg"), 3)
  sample_batch = {k: jnp.zeros((1,) + s.shape, s.dtype) for k, s in input_shapes(config).items()}
  generator = nets.init_generator(g_rng, sample_batch)
  if g_frozen is not None:  # ADGAN's style-encoder VGG; PATN has no frozen part
    generator["frozen"] = g_frozen
  tx = make_optimizer(config.optim)
  d = {}
  for name, net, make_input, d_rng in (
      ("pb", nets.discriminator_pb, nets.pb_input, pb_rng),
      ("pp", nets.discriminator_pp, nets.pp_input, pp_rng)):
    d_input = make_input(sample_batch["target_image"], sample_batch)
    d[f"pool_{name}"] = init_image_pool(pool_size(config), d_input.shape[1:]) if net is not None else None
    if net is None:
      d[name], d[f"{name}_opt"] = None, None
      continue
    variables = dict(net.init({"params": d_rng}, d_input, train=False))
    d[name], d[f"{name}_opt"] = variables, tx.init(variables["params"])
  return TrainState(
      step=jnp.zeros((), jnp.int32), rng=rng, generator=generator,
      discriminator_pb=d["pb"], discriminator_pp=d["pp"],
      generator_opt=tx.init(generator["params"]),
      discriminator_pb_opt=d["pb_opt"], discriminator_pp_opt=d["pp_opt"],
      pool_pb=d["pool_pb"], pool_pp=d["pool_pp"],
      loss_vgg=loss_vgg, cx_vgg=cx_vgg, nonfinite_step=jnp.full((), -1, jnp.int32))


@dataclasses.dataclass(frozen=True)
class Engine:
  """The jitted pieces of a run, built from shapes alone.

  Attributes:
    nets: the networks.
    abstract_state: TrainState of ShapeDtypeStructs carrying their shardings,
      from `jax.eval_shape`; also the Orbax restore target.
    state_shardings: the sharding of every state leaf (replicated).
    create: () -> a fresh TrainState, created already sharded.
    step: jitted train_step (state, batch) -> (state, metrics), state donated.
    generate: jitted (generator variables, batch) -> images (B, H, W, 3).
  """
  nets: networks_lib.Networks
  abstract_state: Any
  state_shardings: Any
  create: Callable[[], TrainState]
  step: Callable
  generate: Callable


def build_engine(config: ml_collections.ConfigDict, mesh, pretrained: networks_lib.Pretrained) -> Engine:
  nets = networks_lib.build(config, pretrained)
  replicated = sharding_lib.replicated_sharding(mesh)
  batch_shard = sharding_lib.batch_sharding(mesh)
  create = functools.partial(_create_state, nets=nets, config=config)
  frozen = (pretrained.generator_frozen, pretrained.loss_vgg, pretrained.cx_vgg)
  abstract = jax.eval_shape(create, config.seed, *frozen)
  state_shardings = jax.tree.map(lambda _: replicated, abstract)
  abstract = jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                          abstract, state_shardings)
  create_jit = jax.jit(create, static_argnums=0, out_shardings=state_shardings)
  step = jax.jit(functools.partial(train_step, nets=nets, config=config),
                 in_shardings=(state_shardings, batch_shard),
                 out_shardings=(state_shardings, replicated), donate_argnums=0)
  generate = jax.jit(nets.generate, in_shardings=(replicated, batch_shard), out_shardings=replicated)
  return Engine(nets=nets, abstract_state=abstract, state_shardings=state_shardings,
                create=lambda: create_jit(config.seed, *frozen), step=step, generate=generate)


def _check_same_shapes(what: str, expected: Any, got: Any) -> None:
  exp = {jax.tree_util.keystr(p): tuple(x.shape) for p, x in jax.tree_util.tree_leaves_with_path(expected)}
  have = {jax.tree_util.keystr(p): tuple(np.shape(x)) for p, x in jax.tree_util.tree_leaves_with_path(got)}
  problems = [f"missing {k}" for k in sorted(exp.keys() - have.keys())]
  problems += [f"unexpected {k}" for k in sorted(have.keys() - exp.keys())]
  problems += [f"{k}: checkpoint {have[k]} vs model {exp[k]}" for k in sorted(exp.keys() & have.keys())
               if exp[k] != have[k]]
  if problems:
    raise ValueError(f"init_from: the {what} weights do not fit this config's model:\n  "
                     + "\n  ".join(problems[:30]) + ("\n  ..." if len(problems) > 30 else ""))


def _with_weights(state: TrainState, weights: dict, config, state_shardings) -> TrainState:
  """Weights-only start: the given networks' variables replace the fresh ones; fresh optimizers, step 0."""
  tx = make_optimizer(config.optim)
  updates = {}
  for name, variables in weights.items():
    current = getattr(state, name)
    if current is None:
      continue
    _check_same_shapes(name, current, variables)
    variables = jax.tree.map(lambda x, ref: jnp.asarray(x, ref.dtype), variables, current)
    updates[name] = variables
    updates[f"{name}_opt"] = tx.init(variables["params"])
  return jax.device_put(state.replace(**updates), state_shardings)


def initial_state(config, mngr, create_fn: Callable[[], TrainState], abstract_state, state_shardings,
                  iterator) -> tuple[TrainState, str]:
  """Where a run starts. The resume order, written down once:

  1. the latest checkpoint in `<workdir>/checkpoints`: everything (parameters,
     optimizer states, step, RNG, input position), so re-running the same
     command continues an interrupted run exactly;
  2. otherwise `config.init_from` (one of our run/step directories, a
     `jaxpose.convert` output, or an official `<epoch>_net_netG.pth`): weights
     only (generator and both discriminators, or the generator alone with
     init_what='generator'), fresh optimizers, step 0: fine-tuning;
  3. otherwise from scratch: random init with the pretrained VGG weights.
  """
  latest = mngr.latest_step()
  if latest is not None:
    state = checkpoints.restore(mngr, latest, abstract_state, iterator)
    return state, f"resumed from {mngr.directory}/{latest} (optimizer states and input position included)"
  if config.init_what not in ("all", "generator"):
    raise ValueError(f"config.init_what must be 'all' or 'generator', got {config.init_what!r}")
  state = create_fn()
  if config.init_from:
    weights, origin = networks_lib.load_init_weights(config, state)
    if config.init_what == "generator":
      weights = {"generator": weights["generator"]}
    state = _with_weights(state, weights, config, state_shardings)
    return state, f"weights of {sorted(weights)} from {origin}; fresh optimizers, step 0 (fine-tuning)"
  return state, "from scratch (random init, pretrained VGG)"


# ----------------------------------------------------------------------------
# Host loop


def _validate_config(config, train_source) -> None:
  expected = tuple(config.data.image_size)
  if expected != tuple(train_source.image_size):
    raise ValueError(
        f"config.data.image_size is {expected} but dataset {train_source.name} holds "
        f"{tuple(train_source.image_size)} images; set --config.data.image_size to match or choose "
        "another dataset config")
  networks_lib.check_model(config)
  if config.model == "adgan" and not train_source.has_parsing:
    raise ValueError(f"ADGAN needs parsing maps, and {train_source.name} has none")
  gan_type(config)
  if pool_size(config) < 0:
    raise ValueError(f"config.discriminator.pool_size must be >= 0, got {pool_size(config)}")
  for name in ("num_train_steps", "log_every", "checkpoint_every", "sample_every", "keep_checkpoints"):
    if getattr(config, name) <= 0:
      raise ValueError(f"config.{name} must be positive, got {getattr(config, name)}")


def _host_batch(batch: dict, keys=TRAIN_KEYS) -> dict:
  return {k: batch[k] for k in keys}


def _mean_metrics(rows: list[dict]) -> dict[str, float]:
  rows = jax.device_get(rows)
  out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "nonfinite_step"}
  out["nonfinite_step"] = int(rows[-1]["nonfinite_step"])
  return out


def _history_path(workdir: str) -> str:
  return os.path.join(workdir, "metrics_history.jsonl")


def _load_history(workdir: str, up_to_step: int) -> list[dict]:
  """Logged rows up to `up_to_step`; rows past a restored checkpoint are dropped from the file."""
  path = _history_path(workdir)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  rows = [r for r in rows if r["step"] <= up_to_step]
  with open(path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
  return rows


def _raise_nonfinite(step: int, mngr) -> None:
  # Saves are asynchronous: let the last good one finish, or it stays a temporary directory.
  mngr.wait_until_finished()
  last = mngr.latest_step()
  where = (f"the last good checkpoint is step {last} in {mngr.directory}" if last is not None
           else "no checkpoint had been written yet")
  raise FloatingPointError(
      f"a loss became NaN or Inf at step {step}; training stopped without saving the poisoned "
      f"state ({where}). Lower config.optim.learning_rate, check the data, or resume from that checkpoint.")


def _open_data(config):
  data_dir = config.data.data_dir or None
  train_source = sources.pair_source(config.data.name, "train", data_dir)
  test_source = sources.pair_source(config.data.name, "test", data_dir)
  _validate_config(config, train_source)
  transform = pipeline.transform_for(train_source, heatmap_sigma=config.data.heatmap_sigma,
                                     heatmap_mode=config.data.heatmap_mode,
                                     parsing_merge=config.data.parsing_merge)
  logging.info("Data: %r", train_source)
  logging.info("Data: %r", test_source)
  return train_source, test_source, transform


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Trains per `config`, checkpointing into `workdir`, then evaluates the test split.

  Writes <workdir>/data_samples.png, samples/step_*.png, TensorBoard events,
  metrics_history.jsonl, loss_curves.png and metrics.json; returns the metrics.
  """
  workdir = os.path.abspath(workdir)
  epath.Path(workdir).mkdir(parents=True, exist_ok=True)
  is_chief = jax.process_index() == 0
  mesh = sharding_lib.make_mesh()
  per_process_batch = sharding_lib.per_process_batch_size(config.batch_size, mesh)
  train_source, test_source, transform = _open_data(config)
  if is_chief:
    raw = [train_source[i] for i in pipeline.spread_indices(len(train_source), 8)]
    grid = visualize.pair_grid({k: np.stack([r[k] for r in raw]) for k in raw[0] if not k.endswith("name")},
                               train_source.parsing_labels)
    logging.info("Wrote data samples to %s", visualize.save_png(os.path.join(workdir, "data_samples.png"), grid))

  pretrained = networks_lib.load_pretrained_features(config)
  for line in pretrained.descriptions:
    logging.info("Pretrained weights: %s", line)
  engine = build_engine(config, mesh, pretrained)

  loader = pipeline.train_loader(train_source, per_process_batch_size=per_process_batch, seed=config.seed,
                                 transform=transform, worker_count=config.data.worker_count)
  iterator = iter(loader)
  mngr = checkpoints.manager(workdir, config.keep_checkpoints)
  state, origin = initial_state(config, mngr, engine.create, engine.abstract_state, engine.state_shardings,
                                iterator)
  start_step = int(jax.device_get(state.step))
  logging.info("Start: %s", origin)
  logging.info("Parameters: %s", ", ".join(f"{k} {v:,}" for k, v in networks_lib.parameter_counts(state).items()))

  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief, asynchronous=False)
  if start_step == 0:
    writer.write_hparams({k: v for k, v in config.to_dict().items() if isinstance(v, (int, float, str, bool))})
  # Logs "x steps/s, y% (step/total), ETA: ..." every log_every steps; the
  # throughput scalars themselves go into the logged rows below.
  hooks = [periodic_actions.ReportProgress(num_train_steps=config.num_train_steps, writer=None,
                                           every_steps=config.log_every)]
  if config.profile and is_chief:
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=5))
  history = _load_history(workdir, start_step) if is_chief else []
  sample_batch, _ = next(pipeline.eval_batches(
      test_source, batch_size=_round_up(config.num_samples, mesh.devices.size), transform=transform,
      indices=pipeline.spread_indices(len(test_source), config.num_samples)))

  pending: list[dict] = []
  last_log_time, last_log_step = time.time(), start_step
  logging.info("Training steps %d -> %d at global batch %d on %d device(s)", start_step,
               config.num_train_steps, config.batch_size, mesh.devices.size)
  step = start_step
  while step < config.num_train_steps:
    batch = sharding_lib.to_global_arrays(_host_batch(next(iterator)), mesh)
    state, metrics = engine.step(state, batch)
    step += 1
    pending.append(metrics)  # device scalars: fetched only when logged
    for hook in hooks:
      hook(step)
    final = step == config.num_train_steps
    if step % config.log_every == 0 or final:
      row = _mean_metrics(pending)
      pending = []
      if row.pop("nonfinite_step") >= 0:
        _raise_nonfinite(int(jax.device_get(state.nonfinite_step)), mngr)
      now = time.time()
      row["steps_per_sec"] = (step - last_log_step) / max(now - last_log_time, 1e-9)
      row["images_per_sec"] = row["steps_per_sec"] * config.batch_size
      last_log_time, last_log_step = now, step
      writer.write_scalars(step, row)
      if is_chief:
        history.append({"step": step, **row})
        with open(_history_path(workdir), "a") as f:
          f.write(json.dumps({"step": step, **row}) + "\n")
    if step % config.sample_every == 0 or final:
      _write_samples(workdir, step, writer, engine.generate, state, sample_batch, mesh, config)
    if step % config.checkpoint_every == 0 or final:
      bad_step = int(jax.device_get(state.nonfinite_step))
      if bad_step >= 0:
        _raise_nonfinite(bad_step, mngr)
      checkpoints.save(mngr, step, state, iterator)
  mngr.wait_until_finished()
  if is_chief and history:
    path = visualize.loss_curves(history, os.path.join(workdir, "loss_curves.png"), LOSS_PANELS)
    logging.info("Wrote loss curves to %s", path)
  writer.flush()
  results = _evaluate_and_write(config, workdir, engine, state, test_source, transform, mesh, train_source)
  writer.close()
  return results


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple


def _write_samples(workdir, step, writer, generate_fn, state, batch, mesh, config) -> None:
  device_batch = sharding_lib.to_global_arrays(evaluation.process_slice(_host_batch(batch), mesh), mesh)
  generated = visualize.to_uint8(jax.device_get(generate_fn(state.generator, device_batch)))
  grid = visualize.transfer_grid(visualize.to_uint8(batch["source_image"]), batch["source_keypoints"],
                                 batch["target_keypoints"], generated, visualize.to_uint8(batch["target_image"]),
                                 num=config.num_samples)
  writer.write_images(step, {"samples": grid[None]})
  if jax.process_index() == 0:
    path = visualize.save_png(os.path.join(workdir, "samples", f"step_{step:07d}.png"), grid)
    logging.info("Wrote samples to %s", path)


def _evaluate_and_write(config, workdir, engine, state, test_source, transform, mesh, train_source) -> dict:
  results = evaluation.evaluate(config, engine.generate, state, test_source, transform, mesh,
                                real_source=train_source,
                                statistics_path=os.path.join(workdir, "fid_real_statistics.npz"))
  results["train_steps"] = int(jax.device_get(state.step))
  if jax.process_index() == 0:
    path = os.path.join(workdir, "metrics.json")
    with open(path, "w") as f:
      json.dump(results, f, indent=2, sort_keys=True)
    logging.info("Test metrics (%s): %s", path,
                 ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items()))
  return results


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """`--mode=evaluate`: metrics of the latest checkpoint in `workdir` on the test split."""
  workdir = os.path.abspath(workdir)
  mesh = sharding_lib.make_mesh()
  train_source, test_source, transform = _open_data(config)
  pretrained = networks_lib.load_pretrained_features(config)
  engine = build_engine(config, mesh, pretrained)
  mngr = checkpoints.manager(workdir, config.keep_checkpoints)
  latest = mngr.latest_step()
  if latest is None:
    raise FileNotFoundError(f"no checkpoint in {mngr.directory}: train first, or point --workdir at a run")
  restored = mngr.restore(latest, args=ocp.args.Composite(state=ocp.args.StandardRestore(engine.abstract_state)))
  logging.info("Evaluating %s/%d", mngr.directory, latest)
  return _evaluate_and_write(config, workdir, engine, restored.state, test_source, transform, mesh, train_source)
