"""pair_source and the input pipeline: reading, transforms, determinism, resuming, sharding."""

import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from jaxpose import sharding
from jaxpose.data import keypoints as kp
from jaxpose.data import pair_source
from jaxpose.data import pipeline


@pytest.fixture(scope="module")
def train_source(tiny_data_dir):
  return pair_source("synthetic_people/tiny", "train", data_dir=tiny_data_dir)


def test_pair_source_reads_pairs_within_identities(train_source, tiny_data_dir):
  assert train_source.image_size == (32, 24) and train_source.parsing_labels == "lip"
  assert len(train_source) == 48  # 8 identities x 3 poses x 2 ordered partners
  example = train_source[5]
  assert example["source_image"].shape == (32, 24, 3) and example["source_image"].dtype == np.uint8
  assert example["source_keypoints"].shape == (18, 2) and example["source_parsing"].shape == (32, 24)
  # Names carry the identity: a pair never crosses identities, and never pairs an image with itself.
  for i in range(len(train_source)):
    e = train_source[i]
    assert e["source_name"].split("_pose")[0] == e["target_name"].split("_pose")[0]
    assert e["source_name"] != e["target_name"]
  test = pair_source("synthetic_people/tiny", "test", data_dir=tiny_data_dir)
  test_ids = {test[i]["source_name"].split("_pose")[0] for i in range(len(test))}
  train_ids = {train_source[i]["source_name"].split("_pose")[0] for i in range(len(train_source))}
  assert test_ids and not test_ids & train_ids
  with pytest.raises(IndexError):
    train_source[len(train_source)]


def test_reading_does_not_import_tensorflow(tiny_data_dir):
  code = textwrap.dedent(f"""
      import sys
      from jaxpose.data import pair_source, pipeline
      source = pair_source("synthetic_people/tiny", "train", data_dir={tiny_data_dir!r})
      loader = pipeline.train_loader(source, per_process_batch_size=4, seed=0,
                                     transform=pipeline.transform_for(source))
      batch = next(iter(loader))
      assert batch["source_image"].shape == (4, 32, 24, 3), batch["source_image"].shape
      print("tensorflow imported:", "tensorflow" in sys.modules)
  """)
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
  assert result.returncode == 0, result.stderr[-3000:]
  assert "tensorflow imported: False" in result.stdout


def test_pair_source_errors(tiny_data_dir, tmp_path):
  with pytest.raises(ValueError, match="unknown dataset"):
    pair_source("no_such_dataset", "train", data_dir=tiny_data_dir)
  with pytest.raises(ValueError, match="no config 'huge'"):
    pair_source("synthetic_people/huge", "train", data_dir=tiny_data_dir)
  with pytest.raises(ValueError, match="no split 'validation'"):
    pair_source("synthetic_people/tiny", "validation", data_dir=tiny_data_dir)


def test_transform_outputs(train_source):
  transform = pipeline.transform_for(train_source, heatmap_sigma=2.0)
  out = transform.map(train_source[3])
  assert out["source_image"].dtype == np.float32
  assert -1.0 <= out["source_image"].min() and out["source_image"].max() <= 1.0
  assert out["target_pose"].shape == (32, 24, 18)
  assert out["source_parsing"].shape == (32, 24, 8)
  np.testing.assert_array_equal(out["source_parsing"].sum(-1), 1.0)
  present = kp.is_present(out["target_keypoints"])
  for j in range(18):
    if present[j]:
      y, x = out["target_keypoints"][j]
      assert out["target_pose"][y, x, j] == pytest.approx(1.0)
    else:
      assert not out["target_pose"][..., j].any()
  spike = pipeline.transform_for(train_source, heatmap_mode="spike").map(train_source[3])
  assert spike["target_pose"].sum() == present.sum()
  wrong = pipeline.PairTransform(image_size=(64, 44))
  with pytest.raises(ValueError, match="image size"):
    wrong.map(train_source[3])


def _take(iterator, n):
  return [next(iterator)["pair_index"].copy() for _ in range(n)]


def test_iteration_is_deterministic_and_resumes(train_source):
  transform = pipeline.transform_for(train_source)
  make = lambda seed: iter(pipeline.train_loader(train_source, per_process_batch_size=4, seed=seed,
                                                 transform=transform))
  first, second = _take(make(3), 20), _take(make(3), 20)
  np.testing.assert_array_equal(first, second)
  assert not np.array_equal(first, _take(make(4), 20))
  # 20 batches of 4 = 80 > 48 pairs: an epoch boundary is crossed and the next epoch reshuffles.
  flat = np.concatenate(first)
  assert sorted(flat[:48].tolist()) == list(range(48))
  assert not np.array_equal(flat[:32], flat[48:80])

  iterator = make(3)
  _take(iterator, 7)
  state = iterator.get_state()
  expected = _take(iterator, 5)
  resumed = make(3)
  resumed.set_state(state)
  np.testing.assert_array_equal(_take(resumed, 5), expected)
  np.testing.assert_array_equal(expected, first[7:12])


def test_eval_batches_pad_the_last_batch(train_source):
  transform = pipeline.transform_for(train_source)
  batches = list(pipeline.eval_batches(train_source, batch_size=4, transform=transform, num_pairs=10))
  assert [valid for _, valid in batches] == [4, 4, 2]
  assert all(b["source_image"].shape[0] == 4 for b, _ in batches)
  np.testing.assert_array_equal(batches[-1][0]["pair_index"], [8, 9, 9, 9])
  assert pipeline.spread_indices(48, 4) == [0, 16, 31, 47]


def test_global_batch_splits_across_two_devices(train_source):
  assert jax.device_count() == 2, "conftest asks for 2 fake CPU devices"
  mesh = sharding.make_mesh()
  assert sharding.per_process_batch_size(4, mesh) == 4
  with pytest.raises(ValueError, match="multiple of the number of devices"):
    sharding.per_process_batch_size(3, mesh)
  loader = pipeline.train_loader(train_source, per_process_batch_size=4, seed=0,
                                 transform=pipeline.transform_for(train_source))
  local = next(iter(loader))
  arrays = sharding.to_global_arrays({"source_image": local["source_image"]}, mesh)
  image = arrays["source_image"]
  assert image.shape == (4, 32, 24, 3)
  shards = sorted(image.addressable_shards, key=lambda s: s.index[0].start)
  assert [s.device for s in shards] == list(mesh.devices)
  np.testing.assert_array_equal(np.asarray(shards[0].data), local["source_image"][:2])
  np.testing.assert_array_equal(np.asarray(shards[1].data), local["source_image"][2:])


def test_tfds_build_command_line_builds_the_synthetic_dataset(tmp_path):
  tfds_cli = os.path.join(os.path.dirname(sys.executable), "tfds")
  result = subprocess.run(
      [tfds_cli, "build", "tfds_builders/synthetic_people", "--config", "tiny", "--data_dir", str(tmp_path),
       "--file_format", "array_record"], capture_output=True, text=True, timeout=600, cwd=os.getcwd())
  assert result.returncode == 0, result.stderr[-3000:]
  built = os.path.join(tmp_path, "synthetic_people", "tiny", "1.0.0")
  assert any(name.startswith("synthetic_people-train.array_record") for name in os.listdir(built))
  source = pair_source("synthetic_people/tiny", "test", data_dir=str(tmp_path))
  assert len(source) == 18 and source[0]["target_image"].shape == (32, 24, 3)
