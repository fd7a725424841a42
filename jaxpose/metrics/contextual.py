"""ADGAN's contextual (CX) scores: CX-GS (generated vs source) and CX-GT (vs target).

The official `cx/contextual_similarity.py` (shared/reference/adgan.md 5,
evaluation.md 2.7): VGG19 features `r32` and `r42` (post-ReLU relu3_2 and
relu4_2) of images in [0, 1] (`ToTensor`, no ImageNet normalisation), the
contextual loss with sigma (h) 0.1 and b 1.0, computed per batch of 48 pairs.
The loss is `jaxpose.losses.contextual_loss` (the same CXLoss as training), so
its -log(CX) value is the score: lower means the generated image's features
are closer, as a set, to the reference's.

Differences from the official script, on purpose:
  * it **sums** the per-layer and per-batch values (ADGAN issue #20), so its
    number grows with the test-set size; here values are **averaged** over the
    two layers and over batches (weighted by batch size, so a short last batch
    counts per image);
  * its "CX1" loop, meant for CX-GT, appears to reuse the source column with
    the arguments swapped (a reading of the code, unconfirmed by the authors);
    here CX-GT compares the generated image with the target image.

The loss centres both feature sets on the reference's mean over the batch, so
the score depends a little on which pairs share a batch (48 in the original).
Weights: ADGAN used the Gatys VGG19 `vgg_conv.pth`; torchvision's VGG19 also
loads (`jaxpose.models.vgg.load_pretrained_vgg`).
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp

from jaxpose import losses
from jaxpose.models import vgg as vgg_lib

CX_LAYERS = ("relu3_2", "relu4_2")
CX_SIGMA = 0.1
CX_B = 1.0


def contextual_score(reference_features: Mapping[str, jax.Array], generated_features: Mapping[str, jax.Array],
                     *, layers: Sequence[str] = CX_LAYERS, sigma: float = CX_SIGMA, b: float = CX_B,
                     chunk_size: int | None = None) -> jax.Array:
  """Mean over `layers` of the contextual loss of one batch (a scalar).

  Args:
    reference_features: {layer: (N, H, W, C)} of the reference images (source
      or target): the loss's `target_features`, whose batch mean centres both.
    generated_features: {layer: (N, H, W, C)} of the generated images.
    layers, sigma, b: ADGAN's metric settings by default.
    chunk_size: see `jaxpose.losses.contextual_loss` (same value, less memory).
  """
  values = [losses.contextual_loss(reference_features[l], generated_features[l], sigma=sigma, b=b,
                                   chunk_size=chunk_size) for l in layers]
  return jnp.mean(jnp.stack(values))


@functools.partial(jax.jit, static_argnames=("vgg", "layers", "sigma", "b", "chunk_size"))
def _batch_scores(vgg: vgg_lib.VGG, variables, generated, source, target, layers, sigma, b, chunk_size):
  n = generated.shape[0]
  images = jnp.concatenate([generated, source, target], axis=0).astype(jnp.float32) / 255.0
  feats = vgg.apply(variables, images, tuple(layers))
  pick = lambda i: {l: f[i * n:(i + 1) * n] for l, f in feats.items()}
  gen, src, tgt = pick(0), pick(1), pick(2)
  kwargs = dict(layers=layers, sigma=sigma, b=b, chunk_size=chunk_size)
  return contextual_score(src, gen, **kwargs), contextual_score(tgt, gen, **kwargs)


def contextual_scores(vgg: vgg_lib.VGG, variables: Mapping[str, Any], generated, source, target, *,
                      layers: Sequence[str] = CX_LAYERS, sigma: float = CX_SIGMA, b: float = CX_B,
                      chunk_size: int | None = None) -> tuple[jax.Array, jax.Array]:
  """(CX-GS, CX-GT) of one batch.

  Args:
    vgg: the `jaxpose.models.vgg.VGG` module (VGG19 for the protocol).
    variables: its {'frozen': ...} weights.
    generated, source, target: (B, H, W, 3) uint8 or float in [0, 255]; fed
      to VGG as [0, 1].
  """
  shapes = {jnp.shape(generated), jnp.shape(source), jnp.shape(target)}
  if len(shapes) != 1 or len(jnp.shape(generated)) != 4:
    raise ValueError(f"contextual_scores: expected three (B, H, W, 3) batches of one shape, got {shapes}")
  return _batch_scores(vgg, variables, jnp.asarray(generated), jnp.asarray(source), jnp.asarray(target),
                       tuple(layers), float(sigma), float(b), chunk_size)


class ContextualAccumulator:
  """Batch-size-weighted running means of CX-GS and CX-GT over an evaluation."""

  def __init__(self, vgg: vgg_lib.VGG, variables: Mapping[str, Any], *, layers: Sequence[str] = CX_LAYERS,
               sigma: float = CX_SIGMA, b: float = CX_B, chunk_size: int | None = None):
    self._args = (vgg, variables)
    self._kwargs = dict(layers=tuple(layers), sigma=sigma, b=b, chunk_size=chunk_size)
    self._sums = {"cx_gs": 0.0, "cx_gt": 0.0}
    self.count = 0

  def update(self, generated, source, target) -> tuple[float, float]:
    """Adds one batch; returns its (CX-GS, CX-GT)."""
    gs, gt = contextual_scores(*self._args, generated, source, target, **self._kwargs)
    n = int(jnp.shape(generated)[0])
    gs, gt = float(gs), float(gt)
    self._sums["cx_gs"] += n * gs
    self._sums["cx_gt"] += n * gt
    self.count += n
    return gs, gt

  def result(self) -> dict[str, float]:
    """{'cx_gs', 'cx_gt'}: means over all images added (nan when none)."""
    if not self.count:
      return {k: float("nan") for k in self._sums}
    return {k: v / self.count for k, v in self._sums.items()}
