"""A pose detector jaxpose trains itself: SPT's ResNet heatmap detector as a system.

SPT (peers: shared/reference/pose.md section 3) scores its generators with a
frozen detector `define_G(3, 18, 64, 'resnet_9blocks', norm='instance')`,
trained separately and never released. This system trains that architecture
(`jaxpose.models.pose_detector.ResnetPoseDetector`, any width and number of
blocks) through the same engine, data and checkpoints as the generators:

  network      "detector": RGB in [-1, 1] -> 18 heatmaps in (-1, 1) (Tanh).
  data         every pair gives two images, its source and its target, with
               their keypoints' Gaussian heatmaps as targets (the pipeline's
               `source_pose` / `target_pose`, so `config.data.heatmap_sigma`
               is the targets' sigma and `heatmap_mode` must be 'gaussian';
               a missing joint's map is all zero); a batch of B pairs is 2B
               images.
  augmentation with `config.detector.mirror`, each image is mirrored with
               probability 1/2, its heatmaps mirrored and left and right
               joints swapped (`keypoints.MIRROR_INDEX`).
  loss         MSE over every heatmap pixel (PyTorch's MSELoss, as SPT's
               pose-consistency term without its 700 weight); Adam.
  evaluation   `pckh_learned`: PATN's PCKh (`jaxpose.metrics.pckh`) of the
               detector's arg-max keypoints against the ground truth, over
               the test split's images (held-out people in every dataset),
               each image once; the name keeps it apart from OpenPose's `pckh`.
  pictures     the detected skeleton drawn over each image (training samples,
               --mode=generate strips) and `detections.png` (image, detected,
               ground truth, heatmaps) in --mode=generate.

Trained weights serve as `jaxpose.pretrained.load("pose_detector", ...)` and
as the metric suite's `pckh_learned` on generated images
(`config.eval.learned_pose_detector_path`).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Mapping

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxpose import visualize
from jaxpose.data import heatmaps as heatmaps_lib
from jaxpose.data import keypoints as kp
from jaxpose.data import pipeline
from jaxpose.metrics import pckh as pckh_lib
from jaxpose.models import pose_detector as detector_lib
from jaxpose.systems import base

_MIRROR = np.asarray(kp.MIRROR_INDEX)


def mirror_randomly(images: jax.Array, heatmaps: jax.Array, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mirrors each (image, heatmaps) with probability 1/2, swapping left and right joints.

  images (N, H, W, 3), heatmaps (N, H, W, 18). A joint at column x moves to
  W - 1 - x, exactly where the mirrored keypoints' Gaussians would lie.
  """
  flip = jax.random.bernoulli(rng, 0.5, (images.shape[0],))[:, None, None, None]
  mirrored_images = images[:, :, ::-1]
  mirrored_heatmaps = heatmaps[:, :, ::-1][..., _MIRROR]
  return jnp.where(flip, mirrored_images, images), jnp.where(flip, mirrored_heatmaps, heatmaps)


def _draw_detections(images_u8: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
  """uint8 (B, H, W, 3) images with (B, 18, 2) skeletons drawn over them (image dimmed so lines show)."""
  return np.stack([visualize.pose_image(k, *im.shape[:2], background=im // 2 + 32)
                   for im, k in zip(images_u8, keypoints)])


def split_images(source, count: int | None = None):
  """Distinct images of a pair source's split, in record order: yields (uint8 image, (18, 2) keypoints)."""
  total = len(source.images) if not count else min(count, len(source.images))
  for i in range(total):
    record = source.images[i]
    yield np.asarray(record["image"]), np.asarray(record["keypoints"], np.int32)


class PoseDetector(base.System):
  """The learned pose detector: see the module docstring."""

  name: ClassVar[str] = "pose_detector"
  networks: ClassVar[tuple[str, ...]] = ("detector",)
  generation_networks: ClassVar[tuple[str, ...]] = ("detector",)
  result_title: ClassVar[str] = "detected"

  def __init__(self, config, pretrained: base.Pretrained, model: detector_lib.ResnetPoseDetector | None = None):
    super().__init__(config, pretrained)
    self.dtype = base.compute_dtype(config)
    d = config.detector
    self.model = model or detector_lib.ResnetPoseDetector(width=d.width, num_blocks=d.num_blocks,
                                                          dropout_rate=d.dropout_rate, dtype=self.dtype)
    self.tx = self.optimizer("detector")

  # ---------------------------------------------------------------- config and data

  @classmethod
  def batch_keys(cls, config) -> tuple[str, ...]:
    return ("source_image", "target_image", "source_pose", "target_pose")

  @classmethod
  def check(cls, config, source) -> None:
    if config.data.heatmap_mode != "gaussian":
      raise ValueError(f"config.data.heatmap_mode must be 'gaussian' for the pose detector (its training "
                       f"targets), got {config.data.heatmap_mode!r}")
    height, width = tuple(config.data.image_size)
    if height % 4 or width % 4:
      raise ValueError(f"config.data.image_size {(height, width)}: the detector's two stride-2 convolutions "
                       "need a height and width divisible by 4")

  @classmethod
  def from_variables(cls, config, nets: Mapping[str, Any]) -> "PoseDetector":
    """A detector whose width and blocks are read off `nets['detector']`."""
    model = detector_lib.ResnetPoseDetector(**detector_lib.hparams_from_variables(nets["detector"]),
                                            dtype=base.compute_dtype(config))
    return cls(config, base.Pretrained(), model=model)

  # ---------------------------------------------------------------- state and step

  def init(self, rng, example, frozen):
    del frozen
    variables = dict(self.model.init({"params": rng}, example["target_image"], train=False))
    return {"detector": variables}, {"detector": self.tx.init(variables["params"])}, {}, {}

  def train_step(self, state: base.TrainState, batch: dict, rng: jax.Array) -> tuple[base.TrainState, dict]:
    mirror_rng, dropout_rng = jax.random.split(rng)
    images = jnp.concatenate([batch["source_image"], batch["target_image"]])
    targets = jnp.concatenate([batch["source_pose"], batch["target_pose"]])
    if self.config.detector.mirror:
      images, targets = mirror_randomly(images, targets, mirror_rng)
    variables = state.nets["detector"]

    def loss_fn(params):
      predicted = self.model.apply({**variables, "params": params}, images, train=True,
                                   rngs={"dropout": dropout_rng})
      return detector_lib.detector_loss(predicted, targets)

    loss, grads = jax.value_and_grad(loss_fn)(variables["params"])
    updates, opt = self.tx.update(grads, state.opt["detector"], variables["params"])
    nets = {"detector": {**variables, "params": optax.apply_updates(variables["params"], updates)}}
    metrics = {"detector_mse": loss, "detector_grad_norm": optax.tree.norm(grads)}
    return state.replace(nets=nets, opt={"detector": opt}), metrics

  # ---------------------------------------------------------------- outputs

  def generate(self, nets, batch):
    """Heatmaps of the target images (the detector's output); no image is generated."""
    return {"heatmaps": self.model.apply(nets["detector"], batch["target_image"])}

  def keypoints(self, outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """Arg-max keypoints (B, 18, 2) of `generate`'s heatmaps (config.detector.threshold: missing)."""
    return detector_lib.heatmaps_to_keypoints(np.asarray(outputs["heatmaps"]), self.config.detector.threshold)

  def result_pictures(self, batch, outputs) -> np.ndarray:
    """The detected skeletons over the target images."""
    return _draw_detections(visualize.to_uint8(batch["target_image"]), self.keypoints(outputs))

  def keypoint_detector(self, nets: Mapping[str, Any]) -> detector_lib.LearnedKeypointDetector:
    """These weights as a `KeypointDetector` (uint8 images -> keypoints) at the config's image size."""
    return detector_lib.keypoint_detector(self.model, nets["detector"], self.config.detector.threshold,
                                          tuple(self.config.data.image_size))

  def evaluate(self, generate_fn, nets, source, transform, mesh, *, keys, real_source=None,
               statistics_path=None) -> dict:
    """`pckh_learned` and the heatmap MSE over the test split's distinct images (see the module docstring)."""
    del generate_fn, transform, mesh, keys, real_source, statistics_path
    detect = self.keypoint_detector(nets)
    height, width = tuple(self.config.data.image_size)
    accumulator = pckh_lib.PCKhAccumulator()
    squared_error, count = 0.0, 0
    batch_size = self.config.eval.batch_size
    examples = list(split_images(source, self.config.eval.num_pairs or None))
    logging.info("Evaluating the detector on %d %s images of %s", len(examples), source.split, source.name)
    for start in range(0, len(examples), batch_size):
      chunk = examples[start:start + batch_size]
      images = np.stack([im for im, _ in chunk])
      truth = np.stack([k for _, k in chunk])
      # A fixed batch shape (padding repeats the last image): one compilation.
      padded = np.concatenate([images, np.repeat(images[-1:], batch_size - len(chunk), axis=0)])
      heatmaps = detect.heatmaps(padded)[:len(chunk)]
      accumulator.update(detector_lib.heatmaps_to_keypoints(heatmaps, detect.threshold), truth)
      targets = np.stack([heatmaps_lib.keypoints_to_heatmaps(k, height, width, sigma=self.config.data.heatmap_sigma)
                          for k in truth])
      squared_error += float(np.sum((heatmaps.astype(np.float64) - targets) ** 2))
      count += targets.size
    return {"pckh_learned": accumulator.result(), "heatmap_mse": squared_error / max(count, 1),
            "num_images": len(examples), "pckh_skipped_images": accumulator.skipped_images}

  def loss_panels(self):
    return (("detector", ("detector_mse",)), ("gradient", ("detector_grad_norm",)))

  def generation_pictures(self, generator, source, transform, out_dir: str) -> dict:
    """detections.png: test images | detected skeleton | ground truth | predicted heatmaps."""
    count = min(12, len(source.images))
    indices = pipeline.spread_indices(len(source.images), count)
    records = [source.images[i] for i in indices]
    images = np.stack([np.asarray(r["image"]) for r in records])
    truth = np.stack([np.asarray(r["keypoints"], np.int32) for r in records])
    detect = self.keypoint_detector(generator.nets)
    heatmaps = detect.heatmaps(images)
    found = detector_lib.heatmaps_to_keypoints(heatmaps, detect.threshold)
    rows = [[im, det, gt, visualize.heatmap_image(hm)]
            for im, det, gt, hm in zip(images, _draw_detections(images, found), _draw_detections(images, truth),
                                       heatmaps)]
    path = visualize.save_png(os.path.join(out_dir, "detections.png"),
                              visualize.grid(rows, column_titles=["image", "detected", "truth", "heatmaps"]))
    logging.info("Wrote %s (PCKh of these %d images: %.3f)", path, count, pckh_lib.pooled_pckh(found, truth))
    return {"detections": path}


SYSTEM = PoseDetector
