"""The learned pose detector as a system, its weight files, the shipped detector and `pckh_learned`.

(The generic contract, train / resume / generate / evaluate, runs in tests/test_systems.py.)
"""

import importlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic_pose_detector
from jaxpose import pretrained
from jaxpose import systems
from jaxpose import train
from jaxpose import weights as weights_lib
from jaxpose.data import heatmaps as heatmaps_lib
from jaxpose.data import keypoints as kp
from jaxpose.data import synthetic
from jaxpose.metrics import pckh
from jaxpose.metrics import suite as suite_lib
from jaxpose.models import pose_detector as detector_lib
from jaxpose.pose import learned
from jaxpose.systems import pose_detector as system_lib


def test_mirroring_matches_the_heatmaps_of_mirrored_keypoints():
  height, width = 16, 12
  rng = np.random.default_rng(0)
  keypoints = np.stack([rng.integers(0, height, 18), rng.integers(0, width, 18)], -1).astype(np.int32)
  keypoints[[3, 14]] = -1
  image = rng.uniform(-1, 1, (height, width, 3)).astype(np.float32)
  maps = heatmaps_lib.keypoints_to_heatmaps(keypoints, height, width, sigma=1.5)
  # Independently: mirror the keypoints (x -> W-1-x), then relabel the joints left <-> right.
  mirrored = np.where(keypoints >= 0, keypoints * [1, -1] + [0, width - 1], -1)
  relabelled = mirrored[list(kp.MIRROR_INDEX)]
  assert kp.KEYPOINT_NAMES[kp.MIRROR_INDEX[kp.KEYPOINT_INDEX["left_wrist"]]] == "right_wrist"
  expected_maps = heatmaps_lib.keypoints_to_heatmaps(relabelled, height, width, sigma=1.5)
  images, heatmaps = jnp.asarray(np.stack([image] * 8)), jnp.asarray(np.stack([maps] * 8))
  out_images, out_maps = system_lib.mirror_randomly(images, heatmaps, jax.random.key(3))
  flipped = [bool(np.any(np.asarray(o) != image)) for o in out_images]
  assert 0 < sum(flipped) < 8  # some of each, at this key
  for out_image, out_map, was_flipped in zip(np.asarray(out_images), np.asarray(out_maps), flipped):
    if was_flipped:
      np.testing.assert_array_equal(out_image, image[:, ::-1])
      np.testing.assert_allclose(out_map, expected_maps, atol=1e-6)
    else:
      np.testing.assert_array_equal(out_map, maps)


def test_hyperparameters_are_read_off_the_variables():
  model = detector_lib.ResnetPoseDetector(width=8, num_blocks=3)
  variables = detector_lib.abstract_variables(model, 16, 16)
  assert detector_lib.hparams_from_variables(variables) == {"width": 8, "num_blocks": 3, "num_keypoints": 18}
  with pytest.raises(ValueError, match="ResnetPoseDetector"):
    detector_lib.hparams_from_variables({"params": {"conv": {}}})


@pytest.fixture(scope="module")
def detector_run(tiny_data_dir, tmp_path_factory):
  config = synthetic_pose_detector.get_config("tiny")
  config.data.data_dir = tiny_data_dir
  config.num_train_steps = 3
  config.checkpoint_every = 3
  workdir = str(tmp_path_factory.mktemp("detector") / "run")
  results = train.train_and_evaluate(config, workdir)
  return config, workdir, results


def test_evaluation_is_pckh_of_the_detected_keypoints_on_each_test_image_once(detector_run):
  config, workdir, results = detector_run
  from jaxpose.data import pair_source  # pylint: disable=g-import-not-at-top
  source = pair_source(config.data.name, "test", config.data.data_dir)
  images = np.stack([source.images[i]["image"] for i in range(config.eval.num_pairs)])
  truth = np.stack([source.images[i]["keypoints"] for i in range(config.eval.num_pairs)])
  detector = learned.load(workdir)
  assert detector.image_size is None and detector.model.width == config.detector.width
  found = detector.keypoint_detector()(images)
  assert results["num_images"] == len(images) == 8
  assert results["pckh_learned"] == pytest.approx(pckh.pooled_pckh(found, truth), nan_ok=True)
  assert set(results) == {"pckh_learned", "heatmap_mse", "num_images", "pckh_skipped_images", "train_steps"}
  with open(os.path.join(workdir, "metrics_history.jsonl")) as f:
    assert "detector_mse" in json.loads(f.readline())
  assert os.path.exists(os.path.join(workdir, "samples", "step_0000003.png"))


def test_result_pictures_draw_the_detected_skeleton_over_the_target_image(detector_run):
  config, _, _ = detector_run
  system = systems.get("pose_detector")(config, systems.Pretrained())
  target = np.full((2, 32, 24, 3), 0.6, np.float32)
  heatmaps = np.zeros((2, 32, 24, 18), np.float32)
  heatmaps[0, 10, 5, 0] = heatmaps[0, 12, 6, 1] = 0.9  # nose and neck of the first image only
  pictures = system.result_pictures({"target_image": target}, {"heatmaps": heatmaps})
  assert pictures.shape == (2, 32, 24, 3) and pictures.dtype == np.uint8
  np.testing.assert_array_equal(system.keypoints({"heatmaps": heatmaps})[0, :2], [[10, 5], [12, 6]])
  background = pictures[1, 0, 0]
  assert np.all(pictures[1] == background)  # nothing found: the dimmed image alone
  assert np.any(pictures[0, 10, 5] != background) and np.any(pictures[0, 11, 5] != background)  # joint, bone


def test_learned_weights_round_trip_and_catch_a_damaged_file(detector_run, tmp_path):
  config, workdir, _ = detector_run
  out = str(tmp_path / "exported")
  info = learned.export(workdir, config, out, config_spec="configs/synthetic_pose_detector.py:tiny")
  assert info["steps"] == 3 and info["image_size"] == [32, 24] and info["seed"] == 0
  assert info["commands"]["train"].startswith("python -m jaxpose.main --config configs/synthetic_pose_detector.py:tiny")
  loaded = pretrained.load("pose_detector", out)
  assert loaded.info["image_size"] == (32, 24) and loaded.arch == "resnet_pose_detector"
  run = learned.load(workdir)
  for a, b in zip(jax.tree.leaves(run.variables), jax.tree.leaves(loaded.variables)):
    np.testing.assert_array_equal(np.asarray(a), b)
  with open(os.path.join(out, learned.WEIGHTS_FILE), "r+b") as f:
    f.seek(-20, os.SEEK_END)
    f.write(b"\0" * 4)
  with pytest.raises(ValueError, match="SHA-256"):
    learned.load(out)
  with pytest.raises(FileNotFoundError, match="no learned pose detector"):
    learned.load(str(tmp_path / "nothing"))


def test_the_shipped_detector_matches_its_checksum_and_finds_new_synthetic_people():
  directory = learned.shipped_directory()
  with open(os.path.join(directory, learned.INFO_FILE)) as f:
    info = json.load(f)
  assert weights_lib.file_sha256(os.path.join(directory, learned.WEIGHTS_FILE)) == info["sha256"][learned.WEIGHTS_FILE]
  assert os.path.getsize(os.path.join(directory, learned.WEIGHTS_FILE)) < 4 * 2**20
  for key in ("config", "commands", "seed", "steps", "metrics", "training_seconds"):
    assert key in info
  # 0.974 on the 300 test images after 10,000 steps (a random detector scores about 0).
  assert info["metrics"]["pckh_learned"] >= 0.9 and info["image_size"] == [64, 44]
  network = pretrained.load("pose_detector", None)
  assert network.info["image_size"] == (64, 44)
  # People the detector never saw (identities past the dataset's 450), rendered now.
  people = list(synthetic.generate_people(seed=12, num_identities=20, poses_per_identity=3, height=64, width=44,
                                          first_identity=1000))
  images = np.stack([p["image"] for p in people])
  truth = np.stack([p["keypoints"] for p in people]).astype(np.int32)
  found = learned.load(None).keypoint_detector()(images)
  assert pckh.pooled_pckh(found, truth) >= 0.9  # measured 0.945 on these 60 pictures


def test_metric_suite_reports_pckh_learned_with_the_shipped_detector_at_its_size_only(caplog):
  suite = suite_lib.MetricSuite.from_config({"learned_pose_detector_path": "synthetic"})
  people = list(synthetic.generate_people(seed=12, num_identities=4, poses_per_identity=3, height=64, width=44,
                                          first_identity=1000))
  images = np.stack([p["image"] for p in people])
  truth = np.stack([p["keypoints"] for p in people]).astype(np.int32)
  suite.update(images, images, target_keypoints=truth)
  assert suite.result()["pckh_learned"] >= 0.9  # measured 0.961
  small = suite_lib.MetricSuite.from_config({"learned_pose_detector_path": "synthetic"})
  small.update(images[:, :32, :24], images[:, :32, :24], target_keypoints=truth // 2)
  assert "pckh_learned" not in small.result()
  assert "trained on 64x44 images, these are 32x24" in small.skipped["pckh_learned"]
  missing = suite_lib.MetricSuite.from_config({"learned_pose_detector_path": "/no/such/detector"})
  assert "no learned pose detector at /no/such/detector" in missing.skipped["pckh_learned"]


def test_every_systems_synthetic_config_uses_the_shipped_detector():
  for name in systems.names():
    config = importlib.import_module(f"configs.synthetic_{name}").get_config()
    # Measured where the detector's 64x44 fits (ADGAN, PATN); the 64x32 configs (Deformable GAN, SDGAN,
    # SPT) skip it, as test_metric_suite_reports_pckh_learned_... checks.
    assert config.eval.learned_pose_detector_path == "synthetic", name
    assert tuple(config.data.image_size) in ((64, 44), (64, 32)), name
