"""PCKh as PATN computes it, on hand-made keypoints, and its place in the metric suite."""

import logging

from absl import logging as absl_logging
import ml_collections
import numpy as np
import pytest

from jaxpose.data import keypoints as kp
from jaxpose.metrics import pckh
from jaxpose.metrics import suite as suite_lib
from jaxpose.pose import estimate
import torch_writer

def keypoints(**joints):
  """(18, 2) (y, x) with the named joints set, the rest missing."""
  out = np.full((18, 2), -1, np.int32)
  for name, value in joints.items():
    out[kp.KEYPOINT_INDEX[name]] = value
  return out


# Head box of TARGET: x in {20, 24, 16, 26} -> w = 10, y in {10, 30, 8, 8} -> h = 22; thresholds 5 and 11.
TARGET = keypoints(nose=(10, 20), neck=(30, 24), right_eye=(8, 16), left_eye=(8, 26), right_shoulder=(30, 10),
                   right_elbow=(50, 8))
PREDICTED = keypoints(
    nose=(10, 20),              # exact: correct
    neck=(40, 28),              # off by (10, 4) < (11, 5): correct
    right_shoulder=(41, 10),    # off by 11 in y, not < 11: wrong (strict)
    right_elbow=(50, 13),       # off by 5 in x, not < 5: wrong (strict)
    left_eye=(11, 22),          # off by (3, 4): correct
    right_wrist=(60, 8))        # the target has no right wrist: neither valid nor correct
# right_eye is missing from the prediction: valid, wrong.


def test_one_image_by_hand():
  assert pckh.head_size(TARGET) == (10, 22)
  assert pckh.pckh(PREDICTED, TARGET) == (3, 6)
  # alpha scales the box: at 1.0 the thresholds are 10 and 22, only the missed eye stays wrong.
  assert pckh.pckh(PREDICTED, TARGET, alpha=1.0) == (5, 6)


def test_skipped_images_and_missing_joint_rules():
  # Fewer than two head joints in the target: the image is skipped whatever the prediction.
  lonely = keypoints(nose=(10, 20), right_shoulder=(30, 10), left_shoulder=(30, 30))
  assert pckh.head_size(lonely) is None and pckh.pckh(lonely, lonely) == (0, 0)
  # A head joint with one coordinate -1 does not count towards the box (PATN checks x and y)...
  half = TARGET.copy()
  half[14] = (8, -1)  # right eye: y kept, x missing; the box spans x in {20, 24, 26} only
  assert pckh.head_size(half) == (6, 22)
  # ...but the denominator counts every target joint whose y is not -1, and such a joint is never right.
  assert pckh.pckh(np.where(half == -1, 0, half), half) == (5, 6)
  # A zero-width head box makes every joint wrong.
  flat = keypoints(nose=(10, 20), neck=(30, 20), right_hip=(60, 18))
  assert pckh.head_size(flat) == (0, 20)
  assert pckh.pckh(flat, flat) == (0, 3)
  with pytest.raises(ValueError, match=r"expected \(18, 2\)"):
    pckh.pckh(np.zeros((17, 2)), TARGET)


def test_pooling_is_over_joints_not_a_mean_of_images():
  second_target = keypoints(nose=(10, 10), neck=(20, 10), right_ear=(8, 4), left_hip=(60, 14),
                            right_hip=(60, 6))
  second_predicted = second_target.copy()
  second_predicted[kp.KEYPOINT_INDEX["left_hip"]] = (70, 14)  # off by 10 in y; box h = 12 -> threshold 6: wrong
  assert pckh.pckh(second_predicted, second_target) == (4, 5)
  lonely = keypoints(nose=(10, 20))
  accumulator = pckh.PCKhAccumulator()
  accumulator.update(np.stack([PREDICTED, second_predicted, lonely]), np.stack([TARGET, second_target, lonely]))
  assert (accumulator.correct, accumulator.valid, accumulator.images, accumulator.skipped_images) == (7, 11, 3, 1)
  assert accumulator.result() == pytest.approx(7 / 11)  # not (3/6 + 4/5) / 2 = 0.65
  assert pckh.pooled_pckh([PREDICTED, second_predicted], [TARGET, second_target]) == pytest.approx(7 / 11)
  assert np.isnan(pckh.PCKhAccumulator().result())


# ----------------------------------------------------------------------------
# Metric suite


@pytest.fixture(autouse=True)
def _absl_info():
  old = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  yield
  absl_logging.set_verbosity(old)


def _images(n=2, size=(64, 48)):
  return np.random.default_rng(0).integers(0, 256, (n, *size, 3)).astype(np.uint8)


def test_suite_reports_pckh_for_each_detector_it_is_given():
  calls = []

  def perfect(images):
    calls.append(images.shape)
    return np.stack([TARGET, TARGET])[:len(images)]

  def fixed(images):
    return np.stack([PREDICTED] * len(images))

  suite = suite_lib.MetricSuite(pose_detectors={"pckh": fixed, "pckh_learned": perfect})
  generated = _images()
  suite.update(generated, generated, target_keypoints=np.stack([TARGET, TARGET]))
  suite.update(generated.astype(np.float32), generated, target_keypoints=np.stack([TARGET, TARGET]))
  result = suite.result()
  assert result["pckh"] == pytest.approx(6 / 12)
  assert result["pckh_learned"] == 1.0
  assert calls == [(2, 64, 48, 3)] * 2


def test_suite_skips_pckh_without_weights_or_target_keypoints(caplog, tmp_path):
  caplog.set_level(logging.INFO)
  suite = suite_lib.MetricSuite.from_config(ml_collections.ConfigDict({"pose_estimator_path": ""}))
  assert "pckh" in suite.skipped and "pose_estimator_path" in suite.skipped["pckh"]
  assert "no learned pose detector" in suite.skipped["pckh_learned"]
  missing = str(tmp_path / "pose_estimator.h5")
  suite = suite_lib.MetricSuite.from_config(ml_collections.ConfigDict({"pose_estimator_path": missing}))
  assert missing in suite.skipped["pckh"] and "does not exist" in suite.skipped["pckh"]
  assert any("PCKh skipped" in r.getMessage() for r in caplog.records)
  generated = _images()
  suite = suite_lib.MetricSuite(pose_detectors={"pckh_learned": lambda images: np.stack([TARGET] * len(images))})
  suite.update(generated, generated)
  assert "pckh_learned" not in suite.result()
  assert "no target_keypoints" in suite.skipped["pckh_learned"]


def test_from_config_builds_openpose_and_takes_the_learned_detector_hook(tmp_path):
  from test_openpose import TOY_LAYERS, random_state_dict  # pylint: disable=g-import-not-at-top
  path = tmp_path / "body_pose_model.pth"
  torch_writer.save_state_dict(random_state_dict(TOY_LAYERS), path)
  learned = lambda images: np.stack([PREDICTED] * len(images))  # noqa: E731
  config = ml_collections.ConfigDict({"pose_estimator_path": str(path), "pose_estimator_protocol": "original"})
  suite = suite_lib.MetricSuite.from_config(config, learned_pose_detector=learned)
  assert "pckh" not in suite.skipped and "pckh_learned" not in suite.skipped
  detector = suite._pose_detectors["pckh"]  # pylint: disable=protected-access
  assert isinstance(detector, estimate.PoseEstimator) and detector.protocol.name == "original"
  assert suite._pose_detectors["pckh_learned"] is learned  # pylint: disable=protected-access
