"""SPT's pose detector (CycleGAN ResnetGenerator 3 -> 18): size, a numpy reference, targets, loss, read-out."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.data import heatmaps as heatmaps_lib
from jaxpose.models import pose_detector
import numpy_reference as ref


def test_full_size_detector_has_spts_11_425_234_parameters():
  model = pose_detector.ResnetPoseDetector()
  abstract = pose_detector.abstract_variables(model)
  assert set(abstract) == {"params"}  # instance norm without affine: nothing else
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(abstract)) == pose_detector.NUM_PARAMETERS == 11_425_234
  p = jax.tree.map(lambda x: x.shape, abstract["params"])
  assert p["stem"]["kernel"] == (7, 7, 3, 64) and p["downsample_1"]["kernel"] == (3, 3, 128, 256)
  assert len([k for k in p if k.startswith("block_")]) == 9 and p["block_8"]["conv_1"]["kernel"] == (3, 3, 256, 256)
  assert p["upsample_0"]["kernel"] == (3, 3, 256, 128) and p["output"]["kernel"] == (7, 7, 64, 18)
  # The same count from CycleGAN's layer list (every conv with a bias).
  convs = [(3, 64, 7), (64, 128, 3), (128, 256, 3)] + [(256, 256, 3)] * 18 + [(256, 128, 3), (128, 64, 3),
                                                                            (64, 18, 7)]
  assert sum(k * k * i * o + o for i, o, k in convs) == 11_425_234


def _numpy_detector(params, x, blocks):
  """CycleGAN's ResnetGenerator in NCHW numpy (OIHW weights from the HWIO / transposed-conv kernels)."""
  def conv(x, p, stride=1, pad=0, mode="reflect"):
    return ref.conv2d(ref.pad(x, pad, mode), np.asarray(p["kernel"]).transpose(3, 2, 0, 1), np.asarray(p["bias"]),
                      stride)

  h = x.transpose(0, 3, 1, 2).astype(np.float64)
  h = ref.relu(ref.instance_norm(conv(h, params["stem"], pad=3)))
  for i in range(2):
    h = ref.relu(ref.instance_norm(conv(h, params[f"downsample_{i}"], stride=2, pad=1, mode="zero")))
  for j in range(blocks):
    block = params[f"block_{j}"]
    y = ref.relu(ref.instance_norm(conv(h, block["conv_0"], pad=1)))
    h = h + ref.instance_norm(conv(y, block["conv_1"], pad=1))
  for i in range(2):
    p = params[f"upsample_{i}"]
    h = ref.conv_transpose2d(h, np.asarray(p["kernel"]).transpose(2, 3, 0, 1), np.asarray(p["bias"]), 2, 1, 1)
    h = ref.relu(ref.instance_norm(h))
  return np.tanh(conv(h, params["output"], pad=3)).transpose(0, 2, 3, 1)


def _random_variables(model, seed):
  """Seeded numpy weights of the model's shapes (no `init`: its random-number graph compiles slowly on CPU).

  Biases are non-zero, so that a bias in the wrong place would show.
  """
  rng = np.random.default_rng(seed)
  abstract = pose_detector.abstract_variables(model, 16, 16)
  def draw(a):
    scale = 0.5 / math.sqrt(math.prod(a.shape[:-1])) if len(a.shape) > 1 else 0.05
    return jnp.asarray(rng.normal(0, scale, a.shape), jnp.float32)
  return jax.tree.map(draw, abstract)


def test_toy_detector_matches_a_numpy_reference_of_cyclegans_generator():
  model = pose_detector.ResnetPoseDetector(width=4, num_blocks=2)
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 16, 12, 3)), jnp.float32)
  params = _random_variables(model, 0)["params"]
  out = np.asarray(model.apply({"params": params}, x))
  assert out.shape == (2, 16, 12, 18) and np.all(np.abs(out) < 1)
  np.testing.assert_allclose(out, _numpy_detector(jax.device_get(params), np.asarray(x), 2), atol=2e-5)
  with pytest.raises(ValueError, match="multiples of 4"):
    model.apply({"params": params}, x[:, :15])


def test_targets_loss_and_keypoint_read_out():
  keypoints = np.array([[10 + i, 3 + 2 * i] for i in range(18)])
  keypoints[[4, 17]] = -1
  targets = pose_detector.heatmap_targets(np.stack([keypoints, keypoints]), 48, 40)
  assert targets.shape == (2, 48, 40, 18) and targets.max() == 1.0
  np.testing.assert_array_equal(targets[0], heatmaps_lib.keypoints_to_heatmaps(keypoints, 48, 40, sigma=6.0))
  assert np.all(targets[..., 4] == 0)
  np.testing.assert_array_equal(pose_detector.heatmaps_to_keypoints(targets[0]), keypoints)
  np.testing.assert_array_equal(pose_detector.heatmaps_to_keypoints(targets), np.stack([keypoints, keypoints]))
  faint = targets[0] * 0.05  # below the 0.1 threshold everywhere
  assert np.all(pose_detector.heatmaps_to_keypoints(faint) == -1)
  assert np.all(pose_detector.heatmaps_to_keypoints(faint, threshold=0.01)[[0, 1]] == keypoints[[0, 1]])
  predicted = jnp.asarray(targets) * 0.5
  expected = float(np.mean((targets * 0.5 - targets) ** 2))
  assert float(pose_detector.detector_loss(predicted, jnp.asarray(targets))) == pytest.approx(expected, rel=1e-6)
  assert float(pose_detector.pose_consistency_loss(predicted, jnp.asarray(targets))) == pytest.approx(
      700 * expected, rel=1e-6)


def test_keypoint_detector_is_a_metric_suite_hook():
  model = pose_detector.ResnetPoseDetector(width=4, num_blocks=1)
  variables = _random_variables(model, 1)
  detect = pose_detector.keypoint_detector(model, variables, threshold=-1.0)
  images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3)).astype(np.uint8)
  keypoints = detect(images)
  assert keypoints.shape == (3, 18, 2) and keypoints.dtype == np.int32
  assert np.all((keypoints >= 0) & (keypoints < 16))  # threshold -1: every joint read out
  heatmaps = model.apply(variables, jnp.asarray(images, jnp.float32) / 127.5 - 1)
  np.testing.assert_array_equal(keypoints, pose_detector.heatmaps_to_keypoints(np.asarray(heatmaps), -1.0))
