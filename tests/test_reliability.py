"""Bad inputs and faults a new user runs into, each reproduced and held to its wanted outcome (issue 11).

The cases, by the issue's items: the bad input or fault, -> the wanted outcome, and the test.

  1  a second run on a held --workdir (real processes)
       -> refused at once, naming host, pid and start time; a killed holder's lock is taken over, logged
       test_lock_refuses_a_second_process_and_takes_over_a_dead_ones
  1  a second `jaxpose.main` training while one runs (real runs, another learning rate)
       -> exit 1 before any work, naming the holder                   test_second_main_is_refused_and_sigterm_...
  2  the latest checkpoint damaged 9 ways: data file truncated, deleted, overwritten with random bytes;
     _METADATA deleted, truncated; manifest deleted; input position emptied, altered; state dir deleted
       -> the previous step, one log line naming the step and why; the bad step moved (not deleted) to
          checkpoints_set_aside/<step>.corrupt                        test_damaged_latest_checkpoint_falls_back
     (random bytes restore silently without checksums)                test_random_bytes_restore_silently_without_...
  2  an intact checkpoint whose input position does not fit a changed config (data.worker_count 0 -> 2)
       -> a clear error, nothing set aside                            test_a_changed_data_pipeline_is_not_mistaken_...
  2  re-running training on a damaged run
       -> resumes from the previous step, ends bit-identical          test_training_resumes_past_a_damaged_checkpoint
  2  every step damaged; weights read from a damaged run; an explicit damaged step
       -> NoIntactCheckpoint, all files kept; the previous step's weights; CheckpointCorrupt
                                                                      test_all_damaged_and_weights_only_reads
  3  learning rate 1e6, from scratch and after two good steps
       -> the exploding update is never applied; the message names the last good step and the command
                                                                      test_huge_learning_rate_stops_before_any_bad_state
  3  a NaN loss at step b
       -> state untouched; the checkpoints that produced it set aside test_nonfinite_step_keeps_the_state_and_...
  3  a gradient-norm spike in the logged metrics
       -> flagged against the run's recent median                     test_spike_detector
  3  --config.restore_step=N
       -> resumes from N, later steps set aside; applied once         test_restore_step_resumes_from_an_earlier_...
  4  a split that ends up with no pair (an anime test split with one readable picture)
       -> the build fails, naming the split                           test_build_fails_when_a_split_ends_up_empty
  4  training on an empty split
       -> ValueError naming dataset and split, before anything is built
                                                                      test_training_checks_split_sizes_first
  4  a damaged prepared record
       -> names dataset, split and index, says to rebuild             test_damaged_record_names_dataset_split_and_index
  5  NaN joints; an all-missing pose; joints outside the frame; most or all joints outside (a larger image's
     keypoints without target_keypoints_size)
       -> errors; a warning listing the joints; "the frame is probably wrong"; an error when none is left
                                                                      test_bad_target_poses
  6  `python -m jaxpose.main --config /abs/configs/x.py` from another directory, configs not installed
       -> the config and its `configs.*` imports load                 test_main_runs_from_another_directory
  7  a missing init_from .pth; a PATN .pth as ADGAN's init_from; ADGAN with parsing_merge=lip
       -> names config.init_from (before any VGG); "an official patn generator file"; names the field
                                                                      test_messages_name_the_real_problem
  7  a --workdir holding a run of another model, or another width
       -> a short message naming the models and the differing parts   test_workdir_of_another_model
  7  --mode=evaluate where metrics.json cannot be written
       -> fails before evaluating, naming the file                    test_evaluate_checks_writability_first
  7  a JSON pose with spaces; a missing image vs a missing parsing map
       -> accepted; the message names which file                      test_bad_target_poses
  8  patn.to_torch of a batch-norm PATN without its model
       -> the official keys, an exact round trip                      test_patn_to_torch_reads_batch_norm_off_the_...
  8  a `:tiny` config given more steps
       -> the learning rate stays flat, never 0                       test_tiny_configs_keep_a_flat_learning_rate
  8  init_from while the --workdir has checkpoints
       -> logged as not used                                          test_init_from_is_logged_as_unused_on_resume
  8  SIGTERM mid-training (a real process)
       -> a checkpoint of the step reached, exit status 143, lock released
                                                                      test_second_main_is_refused_and_sigterm_...

`benchmarks/bad_inputs.py` runs the wider set of cases and counts outcomes.
"""

import dataclasses
import glob
import importlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import types

import jax
import numpy as np
import pytest

from configs import synthetic_adgan
from configs import synthetic_patn
from jaxpose import checkpoints
from jaxpose import divergence
from jaxpose import generate
from jaxpose import optim
from jaxpose import run_lock
from jaxpose import sharding
from jaxpose import systems
from jaxpose import train
from jaxpose.data import pipeline
from jaxpose.data import sources
from jaxpose.data import split_builder
from jaxpose.models import patn
import torch_writer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(REPO, ".jax_cache")  # tests/conftest.py's compilation cache, shared with subprocesses


def _config(data_dir, module=synthetic_adgan, **overrides):
  config = module.get_config("tiny")
  config.data.data_dir = data_dir
  config.update_from_flattened_dict(overrides)
  return config


def _messages(caplog) -> str:
  return "\n".join(r.getMessage() for r in caplog.records)


def _copy_run(run: str, tmp_path, name: str = "run") -> str:
  copy = str(tmp_path / name)
  shutil.copytree(run, copy)
  os.remove(os.path.join(copy, run_lock.LOCK_NAME))
  return copy


def _all_files(path: str) -> dict[str, int]:
  return {os.path.relpath(f, path): os.path.getsize(f) for f in glob.glob(f"{path}/**/*", recursive=True)
          if os.path.isfile(f)}


@pytest.fixture(scope="module")
def trained_run(tiny_data_dir, tmp_path_factory) -> str:
  """A finished 2-step tiny ADGAN run with checkpoints 1 and 2 (copy it before changing it)."""
  workdir = str(tmp_path_factory.mktemp("reliability") / "run")
  train.train_and_evaluate(_config(tiny_data_dir, num_train_steps=2), workdir)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  return workdir


@pytest.fixture(scope="module")
def built(tiny_data_dir):
  """(the tiny ADGAN engine, its data) for restores without training."""
  config = _config(tiny_data_dir)
  data = train.open_data(config)
  return train.build(config, sharding.make_mesh(), data), data


def _iterator(data):
  return iter(pipeline.train_loader(data.train, per_process_batch_size=4, seed=0, transform=data.transform,
                                    worker_count=0))


# ----------------------------------------------------------------------------
# 1. One writer per run directory

_HOLDER = """
import sys, time
from jaxpose import run_lock
lock = run_lock.acquire(sys.argv[1], "train")
print("held", flush=True)
time.sleep(120)
"""


def _start_holder(workdir):
  holder = subprocess.Popen([sys.executable, "-c", _HOLDER, workdir], stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "held"
  return holder


def test_lock_refuses_a_second_process_and_takes_over_a_dead_ones(tmp_path, caplog):
  workdir = str(tmp_path / "run")
  holder = _start_holder(workdir)
  try:
    started = time.time()
    with pytest.raises(run_lock.RunDirectoryInUse) as refused:
      run_lock.acquire(workdir, "train")
    assert time.time() - started < 5  # at once, not after a timeout
    message = str(refused.value)
    assert f"pid {holder.pid}" in message and "on host " in message and "started 20" in message
    assert "choose another --workdir" in message
  finally:
    holder.send_signal(signal.SIGKILL)  # dies without releasing: a stale lock
    holder.wait()
  with caplog.at_level(logging.WARNING):
    lock = run_lock.acquire(workdir, "train")
  assert f"pid {holder.pid}" in _messages(caplog) and "Took over" in _messages(caplog)
  lock.release()
  # Released cleanly: the next one takes it silently; the file stays (never deleted).
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    run_lock.acquire(workdir, "evaluate").release()
  assert "Took over" not in _messages(caplog)
  assert os.path.exists(os.path.join(workdir, run_lock.LOCK_NAME))


# ----------------------------------------------------------------------------
# 2. Checkpoints verified on restore, falling back past damage


def _largest_data_file(step_dir: str) -> str:
  return max(glob.glob(f"{step_dir}/state/ocdbt.process_*/d/*"), key=os.path.getsize)


def _overwrite_4k(path: str) -> None:
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 10)
    f.write(np.random.default_rng(0).bytes(4096))


def _truncate(path: str, size: int) -> None:
  with open(path, "r+b") as f:
    f.truncate(size)


def _replace_in(path: str, old: str, new: str) -> None:
  with open(path) as f:
    text = f.read()
  assert old in text
  with open(path, "w") as f:
    f.write(text.replace(old, new))


# The ways a checkpoint step gets damaged (s: the step directory).
DAMAGE = {
    "data_file_truncated": lambda s: _truncate(_largest_data_file(s), os.path.getsize(_largest_data_file(s)) // 2),
    "data_file_deleted": lambda s: os.remove(_largest_data_file(s)),
    "data_file_4k_random_bytes": lambda s: _overwrite_4k(_largest_data_file(s)),
    "tree_metadata_deleted": lambda s: os.remove(f"{s}/state/_METADATA"),
    "tree_metadata_truncated": lambda s: _truncate(f"{s}/state/_METADATA", 100),
    "ocdbt_manifest_deleted": lambda s: os.remove(f"{s}/state/manifest.ocdbt"),
    "input_position_emptied": lambda s: _truncate(f"{s}/data/process_0-of-1.json", 0),
    "input_position_altered": lambda s: _replace_in(f"{s}/data/process_0-of-1.json", '"0": 7', '"0": 3'),
    "state_dir_deleted": lambda s: shutil.rmtree(f"{s}/state"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_latest_checkpoint_falls_back(damage, trained_run, built, tmp_path, caplog):
  engine, data = built
  workdir = _copy_run(trained_run, tmp_path)
  DAMAGE[damage](os.path.join(workdir, "checkpoints", "2"))
  damaged_files = _all_files(os.path.join(workdir, "checkpoints", "2"))
  with caplog.at_level(logging.WARNING):
    restored = checkpoints.restore_intact(checkpoints.manager(workdir, 3), engine.abstract_state, _iterator(data))
  assert restored.step == 1 and int(restored.state.step) == 1
  lines = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
  assert len(lines) == 1 and "step 2" in lines[0] and "falling back" in lines[0], _messages(caplog)
  assert "tensorstore_spec" not in lines[0] and len(lines[0]) < 700
  # Set aside, not deleted: every file is still there, under a telling name.
  set_aside = os.path.join(workdir, "checkpoints_set_aside", "2.corrupt")
  assert restored.set_aside == (set_aside,)
  assert _all_files(set_aside) == damaged_files
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["1"]
  with open(os.path.join(workdir, "checkpoints_set_aside", "SET_ASIDE.txt")) as f:
    assert "step 2 -> 2.corrupt" in f.read()


def test_a_changed_data_pipeline_is_not_mistaken_for_damage(trained_run, built, tmp_path):
  engine, data = built
  workdir = _copy_run(trained_run, tmp_path)
  other = iter(pipeline.train_loader(data.train, per_process_batch_size=4, seed=0, transform=data.transform,
                                     worker_count=2))
  with pytest.raises(checkpoints.WorkdirMismatch, match="intact but does not fit .*data.worker_count"):
    checkpoints.restore_intact(checkpoints.manager(workdir, 3), engine.abstract_state, other)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]  # nothing set aside


def test_training_resumes_past_a_damaged_checkpoint(trained_run, tiny_data_dir, tmp_path, caplog):
  workdir = _copy_run(trained_run, tmp_path)
  _overwrite_4k(_largest_data_file(os.path.join(workdir, "checkpoints", "2")))
  with caplog.at_level(logging.INFO):
    results = train.train_and_evaluate(_config(tiny_data_dir, num_train_steps=2), workdir)
  assert "Checkpoint step 2" in _messages(caplog) and "resumed from" in _messages(caplog)
  assert results["train_steps"] == 2
  # Step 2 was computed again from step 1: the same weights as the undamaged run's.
  again, _ = checkpoints.read_weights(workdir)
  original, _ = checkpoints.read_weights(trained_run)
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(original)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert os.path.isdir(os.path.join(workdir, "checkpoints_set_aside", "2.corrupt"))


def test_all_damaged_and_weights_only_reads(trained_run, built, tmp_path, caplog):
  engine, _ = built
  workdir = _copy_run(trained_run, tmp_path)
  for step in ("1", "2"):
    _overwrite_4k(_largest_data_file(os.path.join(workdir, "checkpoints", step)))
  # Weights-only reads (generation, init_from) skip a damaged newest step and move nothing.
  nets, step_dir = checkpoints.read_weights(_copy_run(trained_run, tmp_path, "reads"))
  assert step_dir.endswith("2")
  reads = _copy_run(trained_run, tmp_path, "reads2")
  for path in glob.glob(os.path.join(reads, "checkpoints", "2", "state", "ocdbt.process_*", "d", "*")):
    os.remove(path)  # every data file: whichever holds the networks
  with caplog.at_level(logging.WARNING):
    _, step_dir = checkpoints.read_weights(reads)
  assert step_dir == os.path.join(reads, "checkpoints", "1") and "is damaged" in _messages(caplog)
  assert sorted(os.listdir(os.path.join(reads, "checkpoints"))) == ["1", "2"]
  with pytest.raises(checkpoints.CheckpointCorrupt, match="checkpoints/2 is damaged"):
    checkpoints.read_weights(os.path.join(reads, "checkpoints", "2"))
  # Every step damaged: a clear error, and every file still on disk.
  before = sum(_all_files(workdir).values())
  with pytest.raises(checkpoints.NoIntactCheckpoint, match="every step was damaged"):
    checkpoints.restore_intact(checkpoints.manager(workdir, 3), engine.abstract_state)
  assert sum(_all_files(workdir).values()) >= before
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints_set_aside"))) == ["1.corrupt", "2.corrupt",
                                                                                 "SET_ASIDE.txt"]


# ----------------------------------------------------------------------------
# 3. The divergence guard


def test_huge_learning_rate_stops_before_any_bad_state(trained_run, tiny_data_dir, tmp_path):
  huge = {"optim.learning_rate": 1e6, "num_train_steps": 4}
  fresh = str(tmp_path / "fresh")
  with pytest.raises(divergence.TrainingDiverged) as stopped:
    train.train_and_evaluate(_config(tiny_data_dir, **huge), fresh)
  message = str(stopped.value)
  assert "diverged at step 1" in message and "generator by" in message and "not applied" in message
  assert "No checkpoint precedes the divergence" in message and "--config.optim.learning_rate=100000" in message
  assert os.listdir(os.path.join(fresh, "checkpoints")) == []

  # After two good steps: the third update is refused, and the message names step 2 and how to go on.
  workdir = _copy_run(trained_run, tmp_path)
  with pytest.raises(divergence.TrainingDiverged) as stopped:
    train.train_and_evaluate(_config(tiny_data_dir, **huge), workdir)
  message = str(stopped.value)
  assert "diverged at step 3" in message and "The last good checkpoint is step 2" in message
  assert "re-run the same command with --config.optim.learning_rate=100000" in message
  assert "--config.restore_step=N" in message
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  weights, _ = checkpoints.read_weights(workdir)
  assert max(float(np.abs(np.asarray(x)).max()) for x in jax.tree.leaves(weights["generator"]["params"])) < 10


def test_nonfinite_step_keeps_the_state_and_sets_aside_what_produced_it(trained_run, built, tmp_path):
  engine, data = built
  config = _config("unused")
  state = engine.create()
  before = jax.device_get(state.nets)
  batch = {k: v for k, v in next(_iterator(data)).items() if k in engine.batch_keys}
  batch["source_image"] = np.full_like(batch["source_image"], np.nan)
  mesh = sharding.make_mesh()
  state, metrics = engine.step(state, sharding.to_global_arrays(batch, mesh))
  assert int(state.nonfinite_step) == 1 and int(state.step) == 0
  for a, b in zip(jax.tree.leaves(jax.device_get(state.nets)), jax.tree.leaves(before)):
    np.testing.assert_array_equal(a, b)
  event = train._rejected(config, state, [metrics])
  assert event.kind == "rejected" and "non-finite" in event.detail and event.suspect_from == 0

  # A NaN at step 2 condemns the weights of step 1 (they produced it): set aside, not deleted.
  workdir = _copy_run(trained_run, tmp_path)
  mngr = checkpoints.manager(workdir, 3)
  event = dataclasses.replace(event, step=2, suspect_from=divergence.suspect_from("rejected", 2, 2, True))
  with pytest.raises(divergence.TrainingDiverged, match="No checkpoint precedes") as stopped:
    train._stop_diverged(config, mngr, event)
  assert "1.diverged" in str(stopped.value) and "2.diverged" in str(stopped.value)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints_set_aside"))) == ["1.diverged", "2.diverged",
                                                                                 "SET_ASIDE.txt"]
  # A spike in the row logged at step 2 (steps 2..2, the previous log at 1) condemns step 1 on.
  assert divergence.suspect_from("spike", 20, 10, nonfinite=False) == 10
  assert divergence.suspect_from("rejected", 7, 7, nonfinite=False) == 7  # an oversized update was not applied


def test_spike_detector():
  detector = divergence.SpikeDetector("*_grad_norm", factor=100, window=10, min_history=5)
  rows = [{"g_grad_norm": 10.0 + i, "d_grad_norm": 1.0, "g_l1": 1000.0 * i} for i in range(6)]
  assert all(detector.check(r) is None for r in rows)  # g_l1 is not watched
  assert detector.check({"g_grad_norm": 500.0, "d_grad_norm": 1.0}) is None  # 40x: within the factor
  spike = detector.check({"g_grad_norm": 20.0, "d_grad_norm": 150.0})
  assert spike and spike.startswith("d_grad_norm 150 is 150x its median 1")
  early = divergence.SpikeDetector("*_grad_norm", factor=100, window=10, min_history=5)
  assert early.check({"g_grad_norm": 1.0}) is None and early.check({"g_grad_norm": 1e9}) is None  # no history yet
  assert divergence.SpikeDetector("*", factor=0, window=10, min_history=1).check({"a": 1e30}) is None


def test_restore_step_resumes_from_an_earlier_step_once(trained_run, tiny_data_dir, built, tmp_path, caplog):
  workdir = _copy_run(trained_run, tmp_path)
  with pytest.raises(FileNotFoundError, match="holds no step 7"):
    train.initial_state(_config(tiny_data_dir, restore_step=7), checkpoints.manager(workdir, 3), built[0], None)
  with caplog.at_level(logging.INFO):
    train.train_and_evaluate(_config(tiny_data_dir, num_train_steps=2, restore_step=1), workdir)
  assert "resumed from" in _messages(caplog) and "/checkpoints/1 " in _messages(caplog)
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints_set_aside"))) == [
      "2.after_restore_step_1", "SET_ASIDE.txt"]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  assert checkpoints.read_metadata(os.path.join(workdir, "checkpoints", "2"))["restore_step_applied"] == 1
  # The same command again (restore_step still 1) keeps the new step 2 and goes on from it.
  caplog.clear()
  with caplog.at_level(logging.INFO):
    results = train.train_and_evaluate(_config(tiny_data_dir, num_train_steps=3, restore_step=1), workdir)
  assert "was already applied" in _messages(caplog) and results["train_steps"] == 3
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints_set_aside"))) == [
      "2.after_restore_step_1", "SET_ASIDE.txt"]
  with open(os.path.join(workdir, "metrics_history.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == [1, 2, 3]
  with open(os.path.join(workdir, "metrics_history_dropped.jsonl")) as f:
    assert [json.loads(line)["step"] for line in f] == [2]  # the set-aside branch's row, kept


# ----------------------------------------------------------------------------
# 4. Empty splits and damaged records


def test_build_fails_when_a_split_ends_up_empty(tmp_path):
  from tfds_builders import testing  # pylint: disable=g-import-not-at-top
  from tfds_builders.anime_pose import anime_pose_dataset_builder as anime  # pylint: disable=g-import-not-at-top
  manual = tmp_path / "characters"
  shutil.copytree(os.path.join(REPO, "tfds_builders", "anime_pose", "dummy_data"), manual)
  with open(manual / "dave" / "d02.jpg", "wb") as f:
    f.write(b"not a jpeg")  # the test character keeps one valid picture: no pair
  with pytest.raises(RuntimeError, match=r"anime_pose/64x44 test: stored 1 images and 0 pairs.*no pair"):
    testing.build(anime.Builder, "64x44", manual, tmp_path / "tfds")
  report = split_builder.bad_input.BadInputReport("ds/cfg", "test")
  report.stored_images = ["a.jpg", "b.jpg"]
  with pytest.raises(RuntimeError, match="test split has no pair"):
    split_builder.finish_split(report, {}, np.zeros((0, 2)))


def test_training_checks_split_sizes_first(tiny_data_dir, tmp_path):
  test = sources.pair_source("synthetic_people/tiny", "test", tiny_data_dir)
  empty = dataclasses.replace(test, pairs=np.zeros((0, 2), np.int64))
  with pytest.raises(ValueError, match=r"synthetic_people/tiny split 'test' holds no pairs \(9 stored images\)"):
    train.check_split_sizes(test, empty)


def test_damaged_record_names_dataset_split_and_index(tiny_data_dir, tmp_path):
  data_dir = str(tmp_path / "tfds")
  shutil.copytree(tiny_data_dir, data_dir)
  (path,) = glob.glob(f"{data_dir}/synthetic_people/tiny/*/synthetic_people-test.array_record-*")
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) - 5000)
  source = sources.pair_source("synthetic_people/tiny", "test", data_dir)
  with pytest.raises(sources.CorruptRecordError,
                     match=r"synthetic_people/tiny split 'test': stored image \d+ \(of pair 0\).*damaged.*rebuilt"):
    source[0]


# ----------------------------------------------------------------------------
# 5 and 7. A user's own target pose and files (generate)


def test_bad_target_poses(caplog, tmp_path):
  joints = [[10 + i, 5 + i] for i in range(18)]
  # Spaces anywhere in a valid JSON list are fine.
  spaced = " [ " + ", ".join(f"[ {y} , {x} ]" for y, x in joints) + " ] "
  np.testing.assert_array_equal(generate.parse_keypoints_text(spaced), joints)
  with pytest.raises(ValueError, match="neck are NaN or infinite"):
    generate.parse_keypoints_text(json.dumps(joints).replace("[11, 6]", "[NaN, 6]"))
  with pytest.raises(ValueError, match="every joint is missing"):
    generate.parse_keypoints_text(json.dumps([[-1, -1]] * 18))
  with pytest.raises(ValueError, match="not valid JSON"):
    generate.parse_keypoints_text("[[1, 2], [3, 4]")
  points = np.asarray(joints, np.int32)
  with caplog.at_level(logging.WARNING):
    placed = generate.place_target_pose(points, (32, 24), (32, 24))
  assert not caplog.records and (placed >= 0).all()
  # Two joints outside the 32x24 frame: a warning naming them.
  outside = points.copy()
  outside[[3, 4]] = [[40, 5], [5, 30]]
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    placed = generate.place_target_pose(outside, (32, 24), (32, 24))
  assert "right_elbow (y=40, x=5), right_wrist (y=5, x=30)" in _messages(caplog)
  assert (placed[[3, 4]] == -1).all() and (placed[[0, 1]] >= 0).all()
  # Keypoints of a 64x48 picture read in the 32x24 frame: most fall outside.
  big = points * 2
  caplog.clear()
  with caplog.at_level(logging.WARNING):
    generate.place_target_pose(big, (32, 24), (32, 24))
  assert "12 of 18 joints lie outside" in _messages(caplog) and "frame is probably wrong" in _messages(caplog)
  assert "target_keypoints_size" in _messages(caplog)
  # Those of a 256x176 picture: all fall outside, a blank pose: an error.
  with pytest.raises(ValueError, match="every joint lies outside .* another image's frame"):
    generate.place_target_pose(points * 8, (32, 24), (32, 24))
  # With their frame given they land inside.
  assert (generate.place_target_pose(big, (64, 48), (32, 24)) >= 0).all()

  # Which file is missing: the image or its parsing map.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  Image.fromarray(np.zeros((32, 24, 3), np.uint8)).save(tmp_path / "me.png")
  config = _config("unused", **{"generate.source_image": str(tmp_path / "me.png"),
                                "generate.source_parsing": str(tmp_path / "missing_lip.png"),
                                "generate.target_keypoints": json.dumps(joints)})
  # The files are read before any network runs: a stand-in for the pipeline of a system reading parsing.
  pipe = types.SimpleNamespace(keys=("source_image", "source_parsing", "target_pose"), image_size=(32, 24))
  with pytest.raises(ValueError, match=r"config.generate.source_parsing='.*missing_lip.png' \(the parsing map of"):
    generate._custom_inputs(config, pipe)
  config.generate.source_image = str(tmp_path / "missing.png")
  with pytest.raises(ValueError, match=r"config.generate.source_image='.*missing.png'"):
    generate._custom_inputs(config, pipe)


# ----------------------------------------------------------------------------
# 6. Configs load from anywhere


def test_main_runs_from_another_directory(tmp_path):
  # An installed jaxpose without the repository on the path: only jaxpose and tfds_builders importable.
  site = tmp_path / "site"
  site.mkdir()
  for package in ("jaxpose", "tfds_builders"):
    os.symlink(os.path.join(REPO, package), site / package)
  elsewhere = tmp_path / "elsewhere"
  elsewhere.mkdir()
  env = {**os.environ, "PYTHONPATH": str(site)}
  result = subprocess.run(
      [sys.executable, "-m", "jaxpose.main", "--config", os.path.join(REPO, "configs", "synthetic_adgan.py:tiny"),
       "--workdir", str(tmp_path / "run"), "--config.data.name=deepfashion_pose",
       f"--config.data.data_dir={tmp_path / 'no_data'}"], capture_output=True, text=True, timeout=300,
      cwd=str(elsewhere), env=env)
  assert "ModuleNotFoundError" not in result.stderr
  # The config loaded (with its `configs.*` imports) and the run got as far as opening the data.
  assert result.returncode == 1 and "is not prepared" in result.stderr, result.stderr[-2000:]


# ----------------------------------------------------------------------------
# 7. Messages that name the real problem


def test_messages_name_the_real_problem(tiny_data_dir, built, tmp_path):
  # A missing init_from .pth is named as such, before any pretrained network is loaded.
  missing = _config(tiny_data_dir, init_from=str(tmp_path / "800_net_netG.pth"),
                    vgg19_path=str(tmp_path / "vgg19.pth"))
  with pytest.raises(FileNotFoundError, match=r"config.init_from=.*800_net_netG.pth.* does not exist"):
    train.train_and_evaluate(missing, str(tmp_path / "a"))
  # A PATN generator file given to ADGAN says what it is.
  patn_config = _config(tiny_data_dir, synthetic_patn)
  patn_engine = train.build(patn_config, sharding.make_mesh(), train.open_data(patn_config))
  variables = jax.tree.map(lambda x: np.full(x.shape, 0.01, x.dtype),
                           jax.device_get(patn_engine.abstract_state.nets["generator"]))
  pth = str(tmp_path / "latest_net_netG.pth")
  torch_writer.save_state_dict(patn.to_torch(variables), pth)
  with pytest.raises(ValueError, match="not an official ADGAN generator file.*official patn generator file"):
    systems.get("adgan").load_pretrained(_config(tiny_data_dir, init_from=pth))
  # ADGAN needs the 8 ADGAN parsing components.
  with pytest.raises(ValueError, match="config.data.parsing_merge='adgan8'"):
    train.open_data(_config(tiny_data_dir, **{"data.parsing_merge": "lip"}))


def test_workdir_of_another_model(trained_run, tiny_data_dir, built, tmp_path):
  workdir = _copy_run(trained_run, tmp_path)
  patn_config = _config(tiny_data_dir, synthetic_patn)
  patn_engine = train.build(patn_config, sharding.make_mesh(), train.open_data(patn_config))
  with pytest.raises(checkpoints.WorkdirMismatch) as mismatch:
    train.initial_state(patn_config, checkpoints.manager(workdir, 3), patn_engine, iterator=None)
  message = str(mismatch.value)
  assert "holds a run of another model or shape" in message
  assert "config.model='adgan'; this config has 'patn'" in message and "nets/generator" in message
  assert len(message.splitlines()) < 12 and len(message) < 2000
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]  # not mistaken for damage
  wider = _config(tiny_data_dir, **{"generator.width": 2 * synthetic_adgan.get_config("tiny").generator.width})
  wider_engine = train.build(wider, sharding.make_mesh(), built[1])
  with pytest.raises(checkpoints.WorkdirMismatch, match="another shape"):
    train.initial_state(wider, checkpoints.manager(workdir, 3), wider_engine, iterator=None)


def test_evaluate_checks_writability_first(trained_run, tiny_data_dir, tmp_path, caplog):
  workdir = _copy_run(trained_run, tmp_path)
  os.remove(os.path.join(workdir, "metrics.json"))
  os.mkdir(os.path.join(workdir, "metrics.json"))  # unwritable as a file, even for root
  with caplog.at_level(logging.INFO):
    with pytest.raises(run_lock.RunDirectoryNotWritable, match="cannot write .*metrics.json"):
      train.evaluate_checkpoint(_config(tiny_data_dir), workdir)
  assert "Evaluating" not in _messages(caplog)  # failed before computing anything


# ----------------------------------------------------------------------------
# 8. Smaller ones


def test_patn_to_torch_reads_batch_norm_off_the_variables():
  model = patn.PATNGenerator(image_channels=3, pose_channels=18, width=8, n_downsampling=2, n_blocks=2,
                             norm="batch")
  image, pose = np.zeros((1, 32, 24, 3), np.float32), np.zeros((1, 32, 24, 18), np.float32)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), image, pose, pose)
  rng = np.random.default_rng(0)
  variables = jax.tree.map(lambda x: rng.normal(size=x.shape).astype(x.dtype), shapes)
  exported = patn.to_torch(variables)  # no model: read off the variables
  assert any(k.endswith("running_mean") for k in exported)
  jax.tree.map(np.testing.assert_array_equal, patn.from_torch(exported, model), variables)


@pytest.mark.parametrize("name", ["synthetic_adgan", "synthetic_patn", "adgan_deepfashion", "adgan_market",
                                  "patn_deepfashion", "patn_market", "adgan_anime_finetune"])
def test_tiny_configs_keep_a_flat_learning_rate(name):
  config = importlib.import_module(f"configs.{name}").get_config("tiny")
  schedule = optim.learning_rate_schedule(config.optim)
  rates = [float(schedule(step)) for step in (0, 1, 2, 3, 10, 100, 10_000)]
  assert config.optim.learning_rate > 0 and rates == pytest.approx([config.optim.learning_rate] * len(rates))


def test_init_from_is_logged_as_unused_on_resume(trained_run, tiny_data_dir, built, tmp_path, caplog):
  engine, _ = built
  workdir = _copy_run(trained_run, tmp_path)
  config = _config(tiny_data_dir, init_from=trained_run)
  with caplog.at_level(logging.INFO):
    state, origin = train.initial_state(config, checkpoints.manager(workdir, 3), engine, iterator=None)
  assert int(state.step) == 2 and "resumed from" in origin
  assert f"config.init_from={trained_run} is not used" in _messages(caplog)


def test_second_main_is_refused_and_sigterm_saves_a_checkpoint(tiny_data_dir, tmp_path):
  """Two real `jaxpose.main` trainings on one --workdir (items 1 and 8): the second is refused at once, naming
  the first; SIGTERM then stops the first after saving the step it reached, exit status 143."""
  workdir = str(tmp_path / "run")
  first = subprocess.Popen(
      [sys.executable, "-m", "jaxpose.main", "--config", "configs/synthetic_adgan.py:tiny", "--workdir", workdir,
       f"--config.data.data_dir={tiny_data_dir}", f"--config.compilation_cache_dir={CACHE}",
       "--config.num_train_steps=1000", "--config.checkpoint_every=1000", "--config.sample_every=1000"],
      stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first.txt", "w"), cwd=REPO)
  try:
    deadline = time.time() + 100
    while not os.path.exists(os.path.join(workdir, run_lock.LOCK_NAME)) and time.time() < deadline:
      time.sleep(0.2)
    # Another learning rate, as in the survey: it must not run beside the first.
    second = subprocess.run(
        [sys.executable, "-m", "jaxpose.main", "--config", "configs/synthetic_adgan.py:tiny", "--workdir", workdir,
         f"--config.data.data_dir={tiny_data_dir}", "--config.optim.learning_rate=1e-4"],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert second.returncode == 1, second.stderr[-2000:]
    assert "RunDirectoryInUse" in second.stderr and f"pid {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr and "Training adgan" not in second.stderr

    history = os.path.join(workdir, "metrics_history.jsonl")
    deadline = time.time() + 400
    while time.time() < deadline and first.poll() is None:
      if os.path.exists(history) and sum(1 for _ in open(history)) >= 2:
        break
      time.sleep(0.5)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=200)
  finally:
    first.kill()
  stderr = (tmp_path / "first.txt").read_text()
  assert first.returncode == 143, stderr[-3000:]
  steps = os.listdir(os.path.join(workdir, "checkpoints"))
  assert len(steps) == 1 and 2 <= int(steps[0]) < 1000  # the step it was at, not a scheduled one
  assert f"stopped on SIGTERM after step {steps[0]}" in stderr and "Re-run the same command" in stderr
  assert "Traceback" not in stderr
  with open(os.path.join(workdir, run_lock.LOCK_NAME)) as f:
    assert f.read() == ""  # released
