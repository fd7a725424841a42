"""Generation: style-code mixing, component groups, user inputs, the swap
measurement, and --mode=generate end to end (our checkpoint, an official .pth,
a user's own picture, PATN with a target photo whose pose OpenPose finds)."""

import json
import os

import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from configs import synthetic_adgan
from configs import synthetic_patn
import jaxpose
from jaxpose import checkpoints
from jaxpose import generate
from jaxpose import inference
from jaxpose.data import letterbox
from jaxpose.models import adgan
from jaxpose.pose import PoseEstimator
from jaxpose.systems import adgan as adgan_system
import torch_writer
from test_openpose import TOY_LAYERS, random_state_dict


def test_mix_components_replaces_exactly_the_chosen_slots():
  base = jnp.arange(16.0).reshape(1, 16)
  donor = -jnp.ones((1, 16))
  mixed = np.asarray(adgan.mix_components(base, donor, [1, 3], num_components=4))
  expected = np.arange(16.0)
  expected[4:8] = -1
  expected[12:16] = -1
  np.testing.assert_array_equal(mixed[0], expected)
  with pytest.raises(ValueError, match="outside"):
    adgan.mix_components(base, donor, [4], num_components=4)
  with pytest.raises(ValueError, match="divisible"):
    adgan.mix_components(base, donor, [0], num_components=3)


def test_component_groups():
  assert adgan_system.component_groups("upper_clothes; pants,skirt ;hair") == [
      ("upper_clothes", [5]), ("pants+skirt", [1, 3]), ("hair", [2])]
  with pytest.raises(ValueError, match="shirt"):
    adgan_system.component_groups("shirt")


def test_parse_keypoints_text_reads_csv_rows_and_json():
  ys, xs = list(range(18)), [2 * i for i in range(18)]
  ys[3] = xs[3] = -1
  row = generate.parse_keypoints_text(f"me.jpg: {ys}: {xs}")
  assert row.dtype == np.int32 and row.shape == (18, 2)
  np.testing.assert_array_equal(row[:, 0], ys)
  np.testing.assert_array_equal(row[:, 1], xs)
  as_json = generate.parse_keypoints_text(json.dumps([[y, x] for y, x in zip(ys, xs)]))
  np.testing.assert_array_equal(as_json, row)
  with pytest.raises(ValueError, match="18"):
    generate.parse_keypoints_text("[[1, 2], [3, 4]]")
  with pytest.raises(ValueError, match="name:"):
    generate.parse_keypoints_text("1,2,3")


def _swap_arrays(own_colour, donor_colour, swapped_colour):
  """Two people (rows), region = component 1 everywhere in an 8x8 image; donor of row r is row 1 - r."""
  onehot = np.zeros((2, 8, 8, 2), np.float32)
  onehot[..., 1] = 1
  source = np.stack([np.full((8, 8, 3), c, np.float32) for c in donor_colour]) / 127.5 - 1
  def img(colours):
    return np.stack([np.full((8, 8, 3), c, np.uint8) for c in colours])
  return {"batch": {"source_image": source, "source_parsing": onehot, "target_parsing": onehot},
          "own": img(own_colour), "swapped": {"region": img(swapped_colour)},
          "donor_rows": {"region": np.array([1, 0])}}


def test_swap_colour_shift_measures_the_move_toward_the_donor():
  groups = [("region", [1])]
  people = [(200, 0, 0), (0, 0, 200)]  # each person's own colour, also their source image's
  # Swapped regions exactly in the donor's colour: moved all the way.
  full = adgan_system.swap_colour_shift(_swap_arrays(people, people, people[::-1]), groups)
  assert full["region"] == {"rows": 2, "moved": pytest.approx(1.0, abs=1e-2),
                            "moved_median": pytest.approx(1.0, abs=1e-2), "moved_total": pytest.approx(1.0, abs=1e-2),
                            "closer": 1.0, "others": {},
                            "others_max": pytest.approx(float("nan"), nan_ok=True), "regions": "own"}
  # Nothing changed: moved 0, never closer.
  none = adgan_system.swap_colour_shift(_swap_arrays(people, people, people), groups)
  assert none["region"]["moved"] == pytest.approx(0.0) and none["region"]["closer"] == 0.0
  # Half way.
  half = [(100, 0, 100), (100, 0, 100)]
  assert adgan_system.swap_colour_shift(_swap_arrays(people, people, half), groups)["region"]["moved"] == \
      pytest.approx(0.5, abs=1e-2)
  # A region nobody has is left out rather than counted.
  arrays = _swap_arrays(people, people, people)
  arrays["donor_rows"]["other"], arrays["swapped"]["other"] = arrays["donor_rows"]["region"], arrays["own"]
  assert adgan_system.swap_colour_shift(arrays, [("other", [0])])["other"]["rows"] == 0


def test_rendered_swap_parsing_is_the_renderers_parsing_of_the_swapped_people(tiny_data_dir):
  import dataclasses
  from jaxpose.data import parsing as parsing_lib
  from jaxpose.data import pipeline as pipeline_lib
  from jaxpose.data import sources
  from jaxpose.data import synthetic
  source = sources.pair_source("synthetic_people/tiny", "test", tiny_data_dir)
  config = synthetic_adgan.get_config("tiny")
  transform = adgan_system.ADGAN.transform(config, source)
  indices = adgan_system.distinct_people(source, 3)
  batch, _ = next(pipeline_lib.eval_batches(source, batch_size=len(indices), transform=transform, indices=indices))
  groups = adgan_system.component_groups("upper_clothes;pants,skirt;hair")
  rows = np.arange(len(indices))
  # Every person their own donor: the swapped people are the targets themselves.
  arrays = {"batch": batch, "donor_rows": {name: rows for name, _ in groups}}
  truth = adgan_system.rendered_swap_parsing(source, indices, arrays, groups, "adgan8")
  for name, _ in groups:
    np.testing.assert_array_equal(truth[name], batch["target_parsing"])
  # Row 0 with row 1's lower garment: the renderer's picture of exactly that.
  arrays["donor_rows"] = {name: (rows + 1) % len(rows) for name, _ in groups}
  truth = adgan_system.rendered_swap_parsing(source, indices, arrays, groups, "adgan8")
  first, second = source[indices[0]], source[indices[1]]
  expected = synthetic.render_named(0, first["source_name"], first["target_name"], 32, 24,
                                    [("lower", second["source_name"])])["parsing"]
  np.testing.assert_array_equal(truth["pants+skirt"][0],
                                parsing_lib.one_hot(parsing_lib.merge(expected, "lip", "adgan8"), 8))
  # Pictures the renderer did not draw (or not in this frame) have no rendered truth.
  assert adgan_system.rendered_swap_parsing(dataclasses.replace(source, name="deepfashion_pose"), indices, arrays,
                                            groups, "adgan8") is None
  shifted = dict(arrays, batch=dict(batch, target_parsing=np.roll(batch["target_parsing"], 1, axis=1)))
  assert adgan_system.rendered_swap_parsing(source, indices, shifted, groups, "adgan8") is None


def test_measure_swaps_with_more_donors_pools_each_donors_rows(tiny_data_dir, tiny_adgan_run):
  """Several donors per person: every (person, donor) pair is a row, no one is their own donor,
  and the pooled means are the row-weighted means of the single-donor measurements."""
  from jaxpose.data import pipeline as pipeline_lib
  from jaxpose.data import sources
  source = sources.pair_source("synthetic_people/tiny", "test", tiny_data_dir)
  pipe = jaxpose.load(tiny_adgan_run)
  transform = adgan_system.ADGAN.transform(pipe.system.config, source)
  groups = adgan_system.component_groups("upper_clothes;pants,skirt;hair")
  people = len(adgan_system.distinct_people(source, 8))
  assert people >= 3, "the tiny test split needs 3 people for 2 donors each"
  pooled = adgan_system.measure_swaps(pipe, source, transform, groups, people, donors_per_person=2)
  indices = adgan_system.distinct_people(source, people)
  batch, _ = next(pipeline_lib.eval_batches(source, batch_size=people, transform=transform, indices=indices))
  parts = []
  donors_of = {name: [] for name, _ in groups}
  for shift in (0, 1):
    arrays = adgan_system.component_swaps(pipe, batch, groups, donor_shift=shift)
    for name, _ in groups:
      assert not np.any(arrays["donor_rows"][name] == np.arange(people)), (name, shift)
      donors_of[name].append(arrays["donor_rows"][name])
    parts.append(adgan_system.swap_colour_shift(
        arrays, groups, adgan_system.rendered_swap_parsing(source, indices, arrays, groups, "adgan8")))
  for name, _ in groups:
    assert np.all(donors_of[name][0] != donors_of[name][1]), f"{name}: each person's 2 donors differ"
    rows = [p[name]["rows"] for p in parts]
    assert pooled[name]["rows"] == sum(rows) and pooled[name]["people"] == people
    assert pooled[name]["donors_per_person"] == 2 and pooled[name]["regions"] == "rendered swap"
    if sum(rows):
      for key in ("moved", "closer"):
        expected = sum(p[name][key] * r for p, r in zip(parts, rows) if r) / sum(rows)
        np.testing.assert_allclose(pooled[name][key], expected, rtol=1e-5, err_msg=f"{name} {key}")
  with pytest.raises(ValueError, match="distinct people"):
    adgan_system.measure_swaps(pipe, source, transform, groups, people, donors_per_person=people)
  with pytest.raises(ValueError, match="at least 1"):
    adgan_system.measure_swaps(pipe, source, transform, groups, people, donors_per_person=0)


def _config(data_dir, **overrides):
  config = synthetic_adgan.get_config("tiny")
  config.data.data_dir = data_dir
  config.generate.num_pairs = 5
  config.generate.batch_size = 2
  config.generate.num_swap_rows = 3
  config.update_from_flattened_dict(overrides)  # "a.b" keys, type-checked
  return config


def _png_size(path):
  with Image.open(path) as image:
    return image.size


@pytest.fixture(scope="module")
def trained_run(tiny_adgan_run):
  return tiny_adgan_run


def test_generate_mode_writes_strips_swap_grid_and_its_measurement(tiny_data_dir, trained_run):
  outputs = generate.run(_config(tiny_data_dir), trained_run)
  out_dir = os.path.join(trained_run, "generated")
  strips = sorted(os.listdir(os.path.join(out_dir, "strips")))
  singles = sorted(os.listdir(os.path.join(out_dir, "pose_transfer")))
  assert len(strips) == 5 and strips == singles
  assert _png_size(os.path.join(out_dir, "pose_transfer", singles[0])) == (24, 32)  # the model's 32x24 output
  assert os.path.exists(outputs["pose_transfer"]) and os.path.exists(outputs["component_swap"])
  with open(outputs["component_swap_metrics"]) as f:
    shift = json.load(f)
  assert set(shift) == {"upper_clothes", "pants+skirt", "hair"}
  assert all(0 <= m["rows"] <= 3 and m["regions"] == "rendered swap" for m in shift.values())
  system, nets, origin = generate.load_generator(_config(tiny_data_dir), trained_run)
  assert system.name == "adgan" and set(nets) == {"generator"} and "frozen" in nets["generator"]
  assert "checkpoint" in origin


def test_generate_from_an_official_pth_and_from_a_users_picture(tiny_data_dir, trained_run, tmp_path):
  nets, _ = checkpoints.read_weights(trained_run)
  pth = str(tmp_path / "800_net_netG.pth")
  torch_writer.save_state_dict(
      {f"module.{k}": v for k, v in adgan.to_torch(nets["generator"]).items()}, pth, legacy_format=True)

  # A user's picture of another size (letterboxed to 32x24), its LIP parsing, a JSON pose.
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (50, 30, 3), np.uint8)).save(tmp_path / "me.png")
  lip = np.zeros((50, 30), np.uint8)
  lip[5:12, 10:20] = 2   # hair
  lip[12:30, 5:25] = 5   # upper clothes
  lip[30:48, 8:22] = 9   # pants
  Image.fromarray(lip).save(tmp_path / "me_lip.png")
  pose = [[4 + i, 12] if i % 3 else [-1, -1] for i in range(18)]
  config = _config(tiny_data_dir, **{"generate.checkpoint": pth, "generate.output_dir": str(tmp_path / "out"),
                                     "generate.source_image": str(tmp_path / "me.png"),
                                     "generate.source_parsing": str(tmp_path / "me_lip.png"),
                                     "generate.target_keypoints": json.dumps(pose)})
  outputs = generate.run(config, str(tmp_path / "unused"))
  assert set(outputs) == {"custom", "custom_keypoints"}
  with open(outputs["custom_keypoints"]) as f:
    used = json.load(f)
  assert used["target"] == pose and used["source"] == [[-1, -1]] * 18  # no OpenPose weights: no source pose
  generated = np.asarray(Image.open(tmp_path / "out" / "custom_generated.png"))
  assert generated.shape == (32, 24, 3)

  # The imported file generates what our checkpoint generates.
  official_system, official_nets, origin = generate.load_generator(config, "unused")
  assert pth in origin
  ours_system, ours_nets, _ = generate.load_generator(_config(tiny_data_dir), trained_run)
  batch = generate._custom_inputs(config, inference.Pipeline(ours_system, ours_nets))
  np.testing.assert_allclose(
      np.asarray(official_system.generate(official_nets, batch)["image"]),
      np.asarray(ours_system.generate(ours_nets, batch)["image"]), rtol=1e-5, atol=1e-5)
  # --mode=generate's user-picture path is the Python API's: with the pose given in the picture's
  # own frame, the same picture comes out of both.
  pipe = jaxpose.load(pth, config=config)
  config.generate.target_keypoints_size = (50, 30)
  via_generate = pipe.generate(generate._custom_inputs(config, pipe))[0]
  via_api = pipe.transfer(np.asarray(Image.open(tmp_path / "me.png")), lip, np.asarray(pose))
  np.testing.assert_array_equal(via_generate, via_api)

  with pytest.raises(ValueError, match="source_parsing"):
    generate.run(_config(tiny_data_dir, **{"generate.source_image": str(tmp_path / "me.png")}), trained_run)


def test_generate_mode_for_patn_writes_pose_transfers_only(tiny_data_dir, tiny_patn_run, tmp_path):
  config = synthetic_patn.get_config("tiny")
  config.data.data_dir = tiny_data_dir
  config.generate.num_pairs = 3
  config.generate.batch_size = 2
  config.generate.output_dir = str(tmp_path / "generated")
  outputs = generate.run(config, tiny_patn_run)
  assert set(outputs) == {"pose_transfer"}
  assert len(os.listdir(os.path.join(tmp_path, "generated", "strips"))) == 3

  # Users' own photos: a target PHOTO instead of keypoints, and a source photo without keypoints
  # or parsing (PATN reads none): OpenPose (toy weights here) finds both poses on the letterboxed photos.
  rng = np.random.default_rng(1)
  Image.fromarray(rng.integers(0, 255, (50, 30, 3), np.uint8)).save(tmp_path / "me.png")
  Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(tmp_path / "dance.png")
  weights = str(tmp_path / "body_pose_model.pth")
  torch_writer.save_state_dict(random_state_dict(TOY_LAYERS, seed=9), weights)
  photos = {"generate.source_image": str(tmp_path / "me.png"), "generate.target_image": str(tmp_path / "dance.png"),
            "generate.output_dir": str(tmp_path / "mine")}
  with pytest.raises(ValueError, match="needs OpenPose weights"):
    generate.run(_patn_config(config, photos), tiny_patn_run)
  with pytest.raises(FileNotFoundError, match="config.generate.pose_estimator_path"):
    generate.run(_patn_config(config, {**photos, "generate.pose_estimator_path": weights + ".missing"}), tiny_patn_run)
  outputs = generate.run(_patn_config(config, {**photos, "eval.pose_estimator_path": weights}), tiny_patn_run)
  assert set(outputs) == {"custom", "custom_keypoints"}
  assert np.asarray(Image.open(tmp_path / "mine" / "custom_generated.png")).shape == (32, 24, 3)
  with open(outputs["custom_keypoints"]) as f:
    used = json.load(f)
  estimator = PoseEstimator.from_file(weights)
  for name, key in (("me.png", "source"), ("dance.png", "target")):
    pixels = np.asarray(Image.open(tmp_path / name).convert("RGB"))
    letterboxed = letterbox.Letterbox.fit(pixels.shape[:2], (32, 24)).image(pixels)
    np.testing.assert_array_equal(used[key], estimator.keypoints(letterboxed))
  # Typed source keypoints (in the photo's own 50x30 pixels) are letterboxed, not detected.
  typed = [[10, 15]] + [[-1, -1]] * 17
  outputs = generate.run(_patn_config(config, {**photos, "generate.pose_estimator_path": weights,
                                               "generate.source_keypoints": json.dumps(typed)}), tiny_patn_run)
  with open(outputs["custom_keypoints"]) as f:
    used = json.load(f)
  expected = letterbox.Letterbox.fit((50, 30), (32, 24)).keypoints(np.asarray(typed))
  np.testing.assert_array_equal(used["source"], expected)


def _patn_config(config, overrides):
  config = config.copy_and_resolve_references()
  config.update_from_flattened_dict(overrides)
  return config
