"""PoseEstimator: the two protocols' scales, network inputs, output resizing and PAF sum vs average."""

import numpy as np
import pytest

from jaxpose.models import openpose
from jaxpose.pose import estimate


def test_patn_multipliers_use_python2_integer_division():
  patn, original = estimate.PROTOCOLS["patn"], estimate.PROTOCOLS["original"]
  assert patn.multipliers(256) == [0.71875, 1, 2.15625, 2]     # DeepFashion: not 1.4375 and 2.875
  assert patn.multipliers(128) == [1.4375, 2, 4.3125, 5]       # Market-1501
  assert original.multipliers(256) == [0.71875, 1.4375, 2.15625, 2.875]
  assert patn.multipliers(400)[1] == 0


class FakeNetwork:
  """Stands in for the jitted network: records its inputs, returns constant maps of the right shape."""

  def __init__(self, heatmap_value=0.3, paf_value=0.2):
    self.inputs = []
    self.heatmap_value, self.paf_value = heatmap_value, paf_value

  def __call__(self, variables, x):
    x = np.asarray(x)
    self.inputs.append(x)
    b, h, w, _ = x.shape
    return (np.full((b, h // 8, w // 8, 38), self.paf_value, np.float32),
            np.full((b, h // 8, w // 8, 19), self.heatmap_value, np.float32))


def _estimator(protocol):
  estimator = estimate.PoseEstimator(openpose.OpenPoseBody(num_stages=1), {}, protocol)
  estimator._network = FakeNetwork()  # pylint: disable=protected-access
  return estimator


def _solid(height, width, rgb=(200, 100, 0)):
  return np.broadcast_to(np.array(rgb, np.uint8), (2, height, width, 3)).copy()


def test_patn_protocol_feeds_bgr_over_255_unpadded_and_sums_pafs():
  estimator = _estimator("patn")
  heatmaps, pafs = estimator.maps(_solid(64, 40))
  shapes = [x.shape for x in estimator._network.inputs]
  # multipliers 0.5 * 368 / 64 = 2.875, 368 // 64 = 5, 8.625, 736 // 64 = 11; sizes truncated, no padding.
  assert shapes == [(2, 184, 115, 3), (2, 320, 200, 3), (2, 552, 345, 3), (2, 704, 440, 3)]
  centre = estimator._network.inputs[1][0, 160, 100]
  np.testing.assert_allclose(centre, [0 / 255 - 0.5, 100 / 255 - 0.5, 200 / 255 - 0.5], atol=1e-6)
  assert heatmaps.shape == (2, 64, 40, 19) and pafs.shape == (2, 64, 40, 38)
  np.testing.assert_allclose(heatmaps, 0.3, rtol=1e-6)   # averaged over the 4 scales
  np.testing.assert_allclose(pafs, 4 * 0.2, rtol=1e-6)   # summed, never divided (the scripts' quirk)


def test_original_protocol_pads_to_the_stride_with_128_and_averages_both():
  estimator = _estimator("original")
  heatmaps, pafs = estimator.maps(_solid(64, 40))
  inputs = estimator._network.inputs
  # fx = 2.875: 64 x 40 -> 184 x 115, padded to 184 x 120 with pixel value 128 (-> 0 after / 256 - 0.5).
  assert [x.shape for x in inputs] == [(2, 184, 120, 3), (2, 368, 232, 3), (2, 552, 345 + 7, 3),
                                       (2, 736, 464, 3)]
  np.testing.assert_array_equal(inputs[0][:, :, 115:], 0.0)
  np.testing.assert_allclose(inputs[0][0, 90, 50], [0 / 256 - 0.5, 100 / 256 - 0.5, 200 / 256 - 0.5], atol=1e-6)
  np.testing.assert_allclose(heatmaps, 0.3, rtol=1e-5)
  np.testing.assert_allclose(pafs, 0.2, rtol=1e-5)


def test_bad_images_get_clear_errors():
  estimator = _estimator("patn")
  with pytest.raises(ValueError, match="taller than 368|at most 368 pixels high"):
    estimator.maps(_solid(400, 50))
  with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) RGB image"):
    estimator.keypoints(np.zeros((20, 20), np.uint8))
  with pytest.raises(ValueError, match="uint8 pixels"):
    estimator.keypoints(np.full((20, 20, 3), 300.0))
  with pytest.raises(ValueError, match="protocol must be one of"):
    estimate.PoseEstimator(openpose.OpenPoseBody(), {}, "hzzone")
  with pytest.raises(FileNotFoundError, match="body_pose_model.pth"):
    estimate.PoseEstimator.from_file("/nonexistent/pose_estimator.h5")


def test_keypoints_come_from_the_post_processing_of_the_maps():
  estimator = _estimator("patn")
  estimator._network = FakeNetwork(heatmap_value=0.0, paf_value=0.0)  # nothing anywhere: nobody found
  keypoints = estimator.keypoints(_solid(32, 24)[0])
  assert keypoints.shape == (18, 2) and keypoints.dtype == np.int32 and np.all(keypoints == -1)
  batch = estimator(_solid(32, 24))
  assert batch.shape == (2, 18, 2) and np.all(batch == -1)
