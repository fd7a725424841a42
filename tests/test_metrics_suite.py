"""MetricSuite: present metrics are computed, absent weights are skipped with one log line each."""

import logging

from absl import logging as absl_logging
import ml_collections
import numpy as np
import pytest

from jaxpose.metrics import contextual
from jaxpose.metrics import fid as fid_lib
from jaxpose.metrics import inception
from jaxpose.metrics import lpips as lpips_lib
from jaxpose.metrics import ssim
from jaxpose.metrics import suite as suite_lib
from jaxpose.models import vgg as vgg_lib


@pytest.fixture(autouse=True)
def _absl_info():
  old = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  yield
  absl_logging.set_verbosity(old)


def _batch(seed, n=3, size=(64, 64)):
  rng = np.random.default_rng(seed)
  target = rng.integers(0, 256, (n, *size, 3)).astype(np.uint8)
  generated = np.clip(target + rng.normal(0, 25, target.shape), 0, 255).astype(np.uint8)
  source = rng.integers(0, 256, (n, *size, 3)).astype(np.uint8)
  keypoints = np.stack([rng.integers(8, 56, (18, 2)) for _ in range(n)])
  keypoints[:, 3] = -1
  return generated, target, source, keypoints


def _messages(caplog, needle):
  return [r.getMessage() for r in caplog.records if needle in r.getMessage()]


def test_without_weights_files_only_weight_free_metrics_and_lpips_run(caplog):
  caplog.set_level(logging.INFO)
  config = ml_collections.ConfigDict({"batch_size": 8, "inception_fid_path": "", "ssim_pad_white": True})
  suite = suite_lib.MetricSuite.from_config(config)
  batches = [_batch(0), _batch(1)]
  for generated, target, source, keypoints in batches:
    suite.update(generated, target, source=source, target_keypoints=keypoints)
  result = suite.result()
  assert set(result) == {"ssim", "ssim_256", "ssim_gfla", "ssim_padded", "ssim_source_baseline",
                         "mask_ssim", "psnr", "l1", "lpips"}
  # Means over all pairs, equal to the functions called directly (batch by batch,
  # so that no new shapes need compiling).
  variables, _ = lpips_lib.load_lpips_alex()
  functions = {
      "ssim": lambda g, t, s, k: ssim.ssim_patn(g, t),
      "ssim_padded": lambda g, t, s, k: ssim.ssim_patn(g, t, pad_white=True),
      "ssim_gfla": lambda g, t, s, k: ssim.ssim_gfla(g, t),
      "ssim_source_baseline": lambda g, t, s, k: ssim.ssim_patn(s, t),
      "mask_ssim": lambda g, t, s, k: ssim.mask_ssim(g, t, k),
      "psnr": lambda g, t, s, k: ssim.psnr(g, t),
      "l1": lambda g, t, s, k: ssim.l1(g, t),
      "lpips": lambda g, t, s, k: lpips_lib.lpips(variables, g, t),
  }
  for name, fn in functions.items():
    expected = np.mean(np.concatenate([np.asarray(fn(*b)) for b in batches]))
    assert result[name] == pytest.approx(float(expected), rel=1e-5), name
  assert result["ssim_256"] == pytest.approx(result["ssim"], rel=1e-7)
  assert result["ssim_padded"] > result["ssim"] > result["ssim_source_baseline"]
  # One clear line per skipped metric, naming the file, where to get it and the config field.
  fid_lines = _messages(caplog, "FID skipped")
  assert len(fid_lines) == 1
  assert "inception_v3_google-0cc3c7bd.pth" in fid_lines[0] and "pt_inception-2015-12-05" in fid_lines[0]
  assert "config.eval.inception_fid_path" in fid_lines[0]
  is_lines = _messages(caplog, "IS skipped")
  assert len(is_lines) == 1 and "config.eval.inception_is_path" in is_lines[0]
  cx_lines = _messages(caplog, "CX skipped")
  assert len(cx_lines) == 1 and "vgg_conv.pth" in cx_lines[0] and "config.eval.vgg19_path" in cx_lines[0]
  assert set(suite.skipped) == {"fid", "is", "cx", "pckh", "pckh_learned"}


def test_missing_files_and_missing_inputs_are_reported_once(caplog, tmp_path):
  caplog.set_level(logging.INFO)
  missing = str(tmp_path / "nope.pth")
  suite = suite_lib.MetricSuite.from_config({"inception_is_path": missing, "vgg19_path": missing,
                                             "lpips_path": str(tmp_path / "lpips.ckpt")})
  lines = _messages(caplog, "does not exist")
  assert len(lines) == 2 and all(missing in line for line in lines)
  assert len(_messages(caplog, "LPIPS skipped")) == 1
  for seed in (0, 1):
    generated, target, _, _ = _batch(seed, size=(32, 32))
    suite.update(generated, target)
  assert len(_messages(caplog, "mask_ssim skipped")) == 1
  assert len(_messages(caplog, "ssim_gfla skipped")) == 1
  assert set(suite.result()) == {"ssim", "ssim_256", "psnr", "l1"}


@pytest.fixture(scope="module")
def networks():
  model = inception.InceptionV3(variant="fid", width_divisor=8)
  inception_variables = inception.random_variables(model, seed=3)
  widths = (4, 8, 8, 8)
  rng = np.random.default_rng(4)
  frozen = {name: {"kernel": rng.normal(0, np.sqrt(2 / (9 * c_in)), (3, 3, c_in, c_out)).astype(np.float32),
                   "bias": np.zeros((c_out,), np.float32)}
            for name, (c_in, c_out) in vgg_lib.conv_shapes("vgg19", widths).items()}
  return (model, inception_variables), (vgg_lib.VGG(arch="vgg19", widths=widths), {"frozen": frozen})


def test_fid_is_and_cx_with_networks(networks, caplog):
  caplog.set_level(logging.INFO)
  inception_net, vgg_net = networks
  suite = suite_lib.MetricSuite(fid_network=inception_net, is_network=inception_net, cx_network=vgg_net,
                                is_splits=2)
  # All batches have one shape: every network compiles once for the whole test.
  batches = [_batch(5, n=4, size=(48, 40)), _batch(6, n=4, size=(48, 40))]
  for generated, target, source, _ in batches:
    suite.update(generated, target, source=source)
  # No real statistics yet: FID is skipped (once), the rest is there.
  first = suite.result()
  suite.result()
  assert len(_messages(caplog, "FID skipped: no real statistics")) == 1
  assert "fid" not in first and {"is_mean", "is_std", "cx_gs", "cx_gt"} <= set(first)
  real = [_batch(s, n=4, size=(48, 40))[1] for s in (7, 8)]
  for images in real:
    suite.update_real(images)
  result = suite.result()

  model, variables = inception_net
  pool3 = lambda images: np.asarray(inception.inception_outputs(model, variables, images, "pytorch_fid")["pool3"],
                                    np.float64)
  expected_fid = fid_lib.fid(np.concatenate([pool3(b[0]) for b in batches]),
                             np.concatenate([pool3(images) for images in real]))
  assert result["fid"] == pytest.approx(expected_fid, rel=1e-4)
  logits = np.concatenate([np.asarray(inception.inception_outputs(model, variables, b[0], "tf_is")["logits_unbiased"],
                                      np.float64) for b in batches])
  probabilities = np.exp(logits - logits.max(1, keepdims=True))
  probabilities /= probabilities.sum(1, keepdims=True)
  expected_is = fid_lib.inception_score(probabilities, splits=2)
  assert result["is_mean"] == pytest.approx(expected_is[0], rel=1e-4)
  assert result["is_std"] == pytest.approx(expected_is[1], rel=1e-3, abs=1e-6)
  cx = [contextual.contextual_scores(*vgg_net, b[0], b[2], b[1]) for b in batches]
  assert result["cx_gs"] == pytest.approx(np.mean([float(c[0]) for c in cx]), rel=1e-5)
  assert result["cx_gt"] == pytest.approx(np.mean([float(c[1]) for c in cx]), rel=1e-5)
  assert result["cx_gs"] > 0 and result["cx_gt"] > 0


def test_real_statistics_round_trip(networks, tmp_path):
  inception_net, _ = networks
  suite = suite_lib.MetricSuite(fid_network=inception_net)
  assert suite.needs_real_statistics  # evaluation then computes them over the training images
  assert not suite_lib.MetricSuite().needs_real_statistics  # no Inception weights: FID is skipped anyway
  with pytest.raises(ValueError, match="update_real"):
    suite.save_real_statistics(str(tmp_path / "real.npz"))
  suite.update_real(_batch(10, n=4, size=(48, 40))[1])
  assert not suite.needs_real_statistics
  path = str(tmp_path / "stats" / "real.npz")
  suite.save_real_statistics(path)
  mu, sigma = fid_lib.load_statistics(path)
  generated, target, _, _ = _batch(9, n=4, size=(48, 40))
  reloaded = suite_lib.MetricSuite(fid_network=inception_net, real_statistics=(mu, sigma))
  assert not reloaded.needs_real_statistics
  suite.update(generated, target)
  reloaded.update(generated, target)
  assert reloaded.result()["fid"] == pytest.approx(suite.result()["fid"], rel=1e-9)
