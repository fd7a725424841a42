"""Training losses as small pure functions on arrays (NHWC feature maps, scalars out).

The definitions follow the official ADGAN/PATN code (shared/reference/adgan.md
section 3, peers.md 1.3) and Deformable GAN's Keras code (peers.md 2.4: the
BCE terms on logits, the nearest-neighbour loss); each is tested alone against
an independent numpy reference in tests/test_losses.py. Weights (lambda_*) are
applied by the caller.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def l1_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean absolute error over all elements (PyTorch `F.l1_loss`)."""
  return jnp.mean(jnp.abs(predictions.astype(jnp.float32) - targets.astype(jnp.float32)))


def region_l1_loss(predictions: jax.Array, targets: jax.Array, parsing: jax.Array,
                   region_weights: jax.Array | None = None) -> jax.Array:
  """L1 with every region of every image weighted alike (our design; no official system has it).

  predictions, targets: (B, H, W, C); parsing: (B, H, W, K) one-hot (or soft) region masks;
  region_weights: optional (K,) weight of each region kind (default all 1).
  Each image's region k contributes its own mean absolute error
  e_bk = sum_hw m * |p - t| / (C * sum_hw m); the result is the weighted mean
  sum w_k e_bk / sum w_k over the (image, region) pairs whose region is not empty. A
  region of 20 pixels (hair at 64x44) then counts as much as the background, where the
  plain L1 gives it 20 / (H * W) of the weight; a weight of 4 on it counts it four times.
  """
  predictions, targets = predictions.astype(jnp.float32), targets.astype(jnp.float32)
  parsing = parsing.astype(jnp.float32)
  error = jnp.mean(jnp.abs(predictions - targets), axis=-1)  # (B, H, W)
  pixels = jnp.sum(parsing, axis=(1, 2))  # (B, K)
  summed = jnp.einsum("bhw,bhwk->bk", error, parsing)
  present = pixels > 0
  weights = jnp.ones(pixels.shape[-1], jnp.float32) if region_weights is None else jnp.asarray(
      region_weights, jnp.float32)
  if weights.shape != pixels.shape[-1:]:
    raise ValueError(f"region_weights: expected shape ({pixels.shape[-1]},), one per parsing region; "
                     f"got {weights.shape}")
  counted = jnp.where(present, weights, 0.0)  # (B, K)
  per_region = jnp.where(present, summed / jnp.where(present, pixels, 1.0), 0.0)
  return jnp.sum(counted * per_region) / jnp.maximum(jnp.sum(counted), 1e-12)


def lsgan_loss(discriminator_output: jax.Array, target_is_real: bool) -> jax.Array:
  """Least-squares GAN loss: MSE of every output element against 1 (real) or 0 (fake).

  ADGAN and PATN-DeepFashion use it on the discriminator's whole 256-channel map.
  """
  target = 1.0 if target_is_real else 0.0
  return jnp.mean(jnp.square(discriminator_output.astype(jnp.float32) - target))


def bce_gan_loss(discriminator_logits: jax.Array, target_is_real: bool) -> jax.Array:
  """`BCELoss(sigmoid(x), target)` computed stably from logits (PATN on Market).

  PyTorch's BCELoss clamps log() at -100; the log-sigmoid form never reaches that
  for finite logits within float32's range of interest.
  """
  x = discriminator_logits.astype(jnp.float32)
  log_p = jax.nn.log_sigmoid(x) if target_is_real else jax.nn.log_sigmoid(-x)
  return -jnp.mean(jnp.maximum(log_p, -100.0))


def imagenet_normalize(images: jax.Array) -> jax.Array:
  """Images in [-1, 1] -> ImageNet-normalised input of torchvision's VGG.

  `((x + 1) / 2 - mean) / std`, the preprocessing of the official perceptual loss.
  """
  mean = jnp.asarray(IMAGENET_MEAN, images.dtype)
  std = jnp.asarray(IMAGENET_STD, images.dtype)
  return ((images + 1.0) / 2.0 - mean) / std


def _cx_chunk(generated_chunk, target_normed, sigma, b):
  """CX_ij for a chunk of generated positions i against all target positions j.

  generated_chunk: (N, c, C) normalised; target_normed: (N, J, C) normalised.
  Returns the chunk's max over i, (N, J).
  """
  similarity = jnp.einsum("nic,njc->nij", generated_chunk, target_normed)
  raw_distance = (1.0 - similarity) / 2.0
  relative = raw_distance / (jnp.min(raw_distance, axis=-1, keepdims=True) + 1e-5)
  # softmax over j of (b - relative) / sigma == W / sum_j W, computed stably.
  cx = jax.nn.softmax((b - relative) / sigma, axis=-1)
  return jnp.max(cx, axis=1)


def contextual_loss(target_features: jax.Array, generated_features: jax.Array,
                    sigma: float = 0.5, b: float = 1.0, *,
                    chunk_size: int | None = None) -> jax.Array:
  """Contextual loss of Mechrez et al. as in ADGAN's `CXLoss` (official `CX_style_loss.py`).

  Args:
    target_features: (N, H, W, C) features of the real target (`T`).
    generated_features: (N, H', W', C) features of the generated image (`I`).
    sigma: bandwidth `h` (ADGAN's training loss uses 0.5, its CX metric 0.1).
    b: the constant in exp((b - d~) / sigma).
    chunk_size: the loss needs an (H'W') x (HW) similarity matrix per sample,
      O((HW)^2) memory (7.9M floats per sample for relu3_2 at 256x176). With a
      chunk size, generated positions are processed `chunk_size` at a time under
      `jax.checkpoint`, so forward and backward hold only chunk_size x HW at
      once; the result is identical. None computes everything at once.

  Returns:
    Scalar: mean over the batch of -log(mean_j max_i CX_ij).

  The computation, step by step as in the official code:
    1. centre both by the target's mean over batch, H and W (per channel), so the
       loss depends on the batch;
    2. L2-normalise along channels (no epsilon, like the original);
    3. cosine similarity, raw distance (1 - sim) / 2;
    4. relative distance d / (min_j d + 1e-5);
    5. W = exp((b - d~) / sigma), CX_ij = W_ij / sum_j W_ij;
    6. max over generated positions i, mean over target positions j, -log.
  """
  t = target_features.astype(jnp.float32)
  g = generated_features.astype(jnp.float32)
  if t.ndim != 4 or g.ndim != 4 or t.shape[0] != g.shape[0] or t.shape[-1] != g.shape[-1]:
    raise ValueError(
        "contextual_loss expects NHWC features with equal batch and channels, got "
        f"{t.shape} and {g.shape}")
  n, c = t.shape[0], t.shape[-1]
  mean_t = jnp.mean(t, axis=(0, 1, 2), keepdims=True)
  t = t - mean_t
  g = g - mean_t
  t = t / jnp.linalg.norm(t, axis=-1, keepdims=True)
  g = g / jnp.linalg.norm(g, axis=-1, keepdims=True)
  t = t.reshape(n, -1, c)
  g = g.reshape(n, -1, c)
  if chunk_size is None or chunk_size >= g.shape[1]:
    max_over_generated = _cx_chunk(g, t, sigma, b)
  else:
    num_positions = g.shape[1]
    num_chunks = -(-num_positions // chunk_size)
    pad = num_chunks * chunk_size - num_positions
    # Padding rows repeat the last real position: duplicates cannot change a max.
    g = jnp.concatenate([g, jnp.repeat(g[:, -1:], pad, axis=1)], axis=1)
    chunks = g.reshape(n, num_chunks, chunk_size, c).transpose(1, 0, 2, 3)
    chunk_fn = jax.checkpoint(functools.partial(_cx_chunk, target_normed=t, sigma=sigma, b=b))
    max_over_generated = jnp.max(jax.lax.map(chunk_fn, chunks), axis=0)
  return jnp.mean(-jnp.log(jnp.mean(max_over_generated, axis=-1)))


def bce_discriminator_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  """Deformable GAN's D loss: -mean log D(real) - mean log(1 - D(fake)), D = sigmoid(logits).

  real_logits, fake_logits: any shapes (e.g. (B, h, w, 1) patches) -> scalar.
  The official takes log(D + 1e-7) of the sigmoid output; the log-sigmoid
  form gives the same values without that floor (which only caps a term at
  -log(1e-7) ~ 16.1 for a saturated D) and never overflows.
  """
  return (jnp.mean(jax.nn.softplus(-real_logits.astype(jnp.float32)))
          + jnp.mean(jax.nn.softplus(fake_logits.astype(jnp.float32))))


def bce_generator_loss(fake_logits: jax.Array) -> jax.Array:
  """Deformable GAN's adversarial G term: -mean log D(fake), D = sigmoid(logits) (non-saturating) -> scalar."""
  return jnp.mean(jax.nn.softplus(-fake_logits.astype(jnp.float32)))


def nearest_neighbour_loss(generated: jax.Array, reference: jax.Array, area: int) -> jax.Array:
  """Deformable GAN's `nn_loss(reference, target=generated, (area, area))`, averaged.

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


GAN_LOSSES = {"lsgan": lsgan_loss, "bce": bce_gan_loss}


def gan_loss(name: str):
  """The GAN loss `(discriminator output, target_is_real) -> scalar` called `name` ('lsgan' or 'bce')."""
  if name not in GAN_LOSSES:
    raise ValueError(f"config.loss.gan_type must be one of {tuple(GAN_LOSSES)}, got {name!r}")
  return GAN_LOSSES[name]


def perceptual_loss(vgg, vgg_variables, generated: jax.Array, target: jax.Array,
                    layer: str = "relu1_2") -> jax.Array:
  """L1 between VGG features of generated and target images (the official `L1_plus_perceptualLoss` term).

  Args:
    vgg: a `jaxpose.models.vgg.VGG` module; vgg_variables its {'frozen': ...}.
    generated, target: (B, H, W, 3) in [-1, 1]; both are ImageNet-normalised
      as torchvision's VGG expects. The target's features carry no gradient.
    layer: the feature layer ('relu1_2' in ADGAN and PATN).

  Returns:
    Scalar mean absolute difference of the (B, H, W, C) feature maps.
  """
  generated_features = vgg.apply(vgg_variables, imagenet_normalize(generated), (layer,))
  target_features = vgg.apply(vgg_variables, imagenet_normalize(target), (layer,))
  return l1_loss(generated_features[layer], jax.lax.stop_gradient(target_features[layer]))


def contextual_feature_loss(vgg, vgg_variables, generated: jax.Array, target: jax.Array, *,
                            layers=("relu3_2", "relu4_2"), sigma: float = 0.5, b: float = 1.0,
                            chunk_size: int | None = None) -> jax.Array:
  """ADGAN's CX training loss: `contextual_loss` summed over VGG layers.

  generated, target: (B, H, W, 3) in [-1, 1], fed to the VGG RAW (ADGAN's CX
  network takes un-normalised images, unlike the perceptual loss). The
  target's features carry no gradient. Returns a scalar.
  """
  generated_features = vgg.apply(vgg_variables, generated, layers)
  target_features = jax.lax.stop_gradient(vgg.apply(vgg_variables, target, layers))
  return sum(contextual_loss(target_features[l], generated_features[l], sigma=sigma, b=b, chunk_size=chunk_size)
             for l in layers)


# ----------------------------------------------------------------------------
# SPT (Song et al., CVPR 2019): the release's `backward_G` terms (shared/reference/peers.md 4.4)
# and H_S's pseudo-label loss.


def mse_loss(predictions: jax.Array, targets: jax.Array) -> jax.Array:
  """Mean squared error over all elements (PyTorch `MSELoss`)."""
  return jnp.mean(jnp.square(predictions.astype(jnp.float32) - targets.astype(jnp.float32)))


def imagenet_standardize(images: jax.Array) -> jax.Array:
  """SPT's VGG input: `(x - mean) / std` with ImageNet statistics applied directly to [-1, 1] images.

  (The release's `Normalization` module, unlike `imagenet_normalize`, does not map to [0, 1] first.)
  (B, H, W, 3) -> same.
  """
  mean = jnp.asarray(IMAGENET_MEAN, images.dtype)
  std = jnp.asarray(IMAGENET_STD, images.dtype)
  return (images - mean) / std


def weighted_cross_entropy(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
  """Per-pixel cross-entropy of softmax(logits) against one-hot (or soft) targets, weighted, averaged.

  Args:
    logits: (B, H, W, K) class scores.
    targets: (B, H, W, K) one-hot labels (any distribution over K works).
    weights: (B, H, W) or (B, H, W, 1) per-pixel weights (SPT's H_S: 1 + target pose mask).

  Returns:
    Scalar mean over pixels of weight * -sum_k target_k log softmax_k.
  """
  log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  per_pixel = -jnp.sum(targets.astype(jnp.float32) * log_p, axis=-1)
  return jnp.mean(per_pixel * weights.reshape(per_pixel.shape).astype(jnp.float32))


def gram_matrix(features: jax.Array) -> jax.Array:
  """(B, H, W, C) -> (B, C, C): F^T F / (H W) (the release's `gram_matrix`)."""
  b, h, w, c = features.shape
  f = features.astype(jnp.float32).reshape(b, h * w, c)
  return jnp.einsum("bpc,bpd->bcd", f, f) / (h * w)


def region_gram_matrices(features: jax.Array, masks: jax.Array) -> jax.Array:
  """The release's `patch_gram_matrix`: one Gram matrix per region of the features masked by it.

  features (B, H, W, C), masks (B, H, W, K) (soft masks allowed) -> (B, K, C, C),
  entry k = gram_matrix(features * masks[..., k]).
  """
  b, h, w, c = features.shape
  f = features.astype(jnp.float32).reshape(b, h * w, 1, c) * masks.astype(jnp.float32).reshape(b, h * w, -1, 1)
  return jnp.einsum("bpkc,bpkd->bkcd", f, f) / (h * w)


def region_visibility(masks_a: jax.Array, masks_b: jax.Array) -> jax.Array:
  """(B, H, W, K) masks of two images -> (B, K, 1, 1): max_A(region) * max_B(region), the release's visibility."""
  return (jnp.max(masks_a, axis=(1, 2)) * jnp.max(masks_b, axis=(1, 2)))[:, :, None, None]


def semantic_style_loss(fake_b_features: jax.Array, real_a_features: jax.Array, fake_a_features: jax.Array,
                        masks_a: jax.Array, masks_b: jax.Array) -> jax.Array:
  """SPT's semantic-aware style loss (the release's `loss_patch_style`).

  Region Gram matrices compared where the region is visible in both images:
  MSE(v * G(fake_B, masks_B), v * G(real_A, masks_A)) + mean((v * G(fake_A,
  masks_A) - v * G(fake_B, masks_B))^2), v = `region_visibility(masks_A,
  masks_B)`.

  Args:
    fake_b_features, real_a_features, fake_a_features: (B, H, W, C) VGG features
      (relu2_1 in SPT) of the generated target, the source, the cycled source.
    masks_a, masks_b: (B, H, W, K) region masks at the features' resolution
      (SPT: parsing labels 2-9, average-pooled to relu2_1's size).

  Returns:
    Scalar.
  """
  v = region_visibility(masks_a, masks_b)
  gram_fake_b = v * region_gram_matrices(fake_b_features, masks_b)
  real = mse_loss(gram_fake_b, v * region_gram_matrices(real_a_features, masks_a))
  cycle = mse_loss(v * region_gram_matrices(fake_a_features, masks_a), gram_fake_b)
  return real + cycle
