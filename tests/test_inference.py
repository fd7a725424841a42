"""The Python API: jaxpose.load (runs, weights directories, the shipped base), Pipeline.transfer and
.swap (letterboxing, label sets, one compiled function per call), its errors, and weights files."""

import json
import os

import numpy as np
from PIL import Image
import pytest

import jaxpose
from jaxpose import checkpoints
from jaxpose import inference
from jaxpose import train
from jaxpose import weights
from jaxpose.data import pair_source
from jaxpose.data import parsing as parsing_lib
from jaxpose.models import adgan as adgan_lib
from jaxpose.systems import adgan as adgan_system


@pytest.fixture(scope="module")
def adgan_run(tiny_adgan_run):
  return tiny_adgan_run


@pytest.fixture(scope="module")
def people(tiny_data_dir):
  source = pair_source("synthetic_people/tiny", "test", tiny_data_dir)
  return source, source[0], source[len(source) - 1]


def test_transfer_of_a_dataset_picture_is_what_the_data_pipeline_feeds_the_model(adgan_run, people):
  source, person, _ = people
  pipe = jaxpose.load(adgan_run)  # the config comes from <run>/config.json
  assert pipe.image_size == (32, 24) and pipe.components == parsing_lib.ADGAN8_LABELS
  out = pipe.transfer(person["source_image"], person["source_parsing"], person["target_keypoints"])
  assert out.shape == (32, 24, 3) and out.dtype == np.uint8
  transform = pipe.system.transform(pipe.config, source)
  batch = {k: v[None] for k, v in transform.map(person).items()}
  np.testing.assert_array_equal(out, pipe.generate(batch)[0])
  # ADGAN's 8-class maps give the same person as the LIP map they merge from.
  adgan8 = parsing_lib.merge(person["source_parsing"], "lip", "adgan8")
  np.testing.assert_array_equal(pipe.transfer(person["source_image"], adgan8, person["target_keypoints"],
                                              labels="adgan8"), out)


def test_any_picture_size_is_letterboxed_and_each_call_compiles_once(adgan_run, people):
  _, person, _ = people
  pipe = jaxpose.load(adgan_run)
  # Twice the size: the keypoints are in the big picture's pixels and follow the letterbox.
  big = np.asarray(Image.fromarray(person["source_image"]).resize((48, 64), Image.Resampling.NEAREST))
  big_parsing = np.repeat(np.repeat(person["source_parsing"], 2, 0), 2, 1)
  keypoints = np.where(person["target_keypoints"] >= 0, person["target_keypoints"] * 2, -1)
  out = pipe.transfer(big, big_parsing, keypoints)
  assert out.shape == (32, 24, 3)
  # A wider picture is padded, not stretched.
  wide = np.full((40, 60, 3), 200, np.uint8)
  pipe.transfer(wide, np.zeros((40, 60), np.uint8), np.asarray(keypoints) // 2)
  pipe.swap(big, big_parsing, keypoints, {"hair": (wide, np.zeros((40, 60), np.uint8))})
  pipe.swap(person["source_image"], person["source_parsing"], person["target_keypoints"], {})
  assert pipe._generate._cache_size() == 1 and pipe._generate_components._cache_size() == 1


def test_swap_takes_each_component_from_its_donor(adgan_run, people):
  _, person, donor = people
  pipe = jaxpose.load(adgan_run)
  args = (person["source_image"], person["source_parsing"], person["target_keypoints"])
  own = pipe.transfer(*args)
  np.testing.assert_array_equal(pipe.swap(*args, {}), own)
  everything = {c: (donor["source_image"], donor["source_parsing"]) for c in pipe.components}
  np.testing.assert_array_equal(pipe.swap(*args, everything),
                                pipe.transfer(donor["source_image"], donor["source_parsing"],
                                              person["target_keypoints"]))
  # One component: the person's style code with that slot from the donor's (mix_components).
  upper = pipe.swap(*args, {"upper_clothes": (donor["source_image"], donor["source_parsing"])})
  system, nets = pipe.system, pipe.nets
  source, _, _ = people
  transform = system.transform(pipe.config, source)
  batch = {k: v[None] for k, v in transform.map(person).items()}
  donor_batch = {k: v[None] for k, v in transform.map(donor).items()}
  mixed = adgan_lib.mix_components(system.encode_style(nets, batch["source_image"], batch["source_parsing"]),
                                   system.encode_style(nets, donor_batch["source_image"],
                                                       donor_batch["source_parsing"]), [5])
  expected = np.clip(np.round((np.asarray(system.decode(nets, batch["target_pose"], mixed))[0] + 1) * 127.5), 0, 255)
  np.testing.assert_allclose(upper, expected, atol=1)


def test_bad_inputs_get_clear_errors(adgan_run, people):
  _, person, donor = people
  pipe = jaxpose.load(adgan_run)
  image, parsing, keypoints = person["source_image"], person["source_parsing"], person["target_keypoints"]
  with pytest.raises(ValueError, match=r"uint8 RGB picture \(H, W, 3\)"):
    pipe.transfer(image[..., 0], parsing, keypoints)
  with pytest.raises(ValueError, match="uint8"):
    pipe.transfer(image.astype(np.float32), parsing, keypoints)
  with pytest.raises(ValueError, match="size of its picture"):
    pipe.transfer(image, parsing[:-1], keypoints)
  with pytest.raises(ValueError, match="labels='adgan8'"):
    pipe.transfer(image, np.full_like(parsing, 20), keypoints)
  with pytest.raises(ValueError, match="8 classes"):
    pipe.transfer(image, parsing, keypoints, labels="adgan8")  # LIP labels up to 19
  with pytest.raises(ValueError, match=r"\(18, 2\)"):
    pipe.transfer(image, parsing, keypoints[:17])
  with pytest.raises(ValueError, match="no joint lies inside the 32x24 picture"):
    pipe.transfer(image, parsing, np.where(keypoints >= 0, keypoints + 100, -1))
  with pytest.raises(ValueError, match="unknown components.*upper_clothes"):
    pipe.swap(image, parsing, keypoints, {"shirt": (donor["source_image"], donor["source_parsing"])})
  with pytest.raises(ValueError, match="donor image, donor parsing"):
    pipe.swap(image, parsing, keypoints, {"hair": donor["source_image"]})
  with pytest.raises(FileNotFoundError, match="neither shipped weights"):
    jaxpose.load("no/such/run")


def test_patn_transfers_and_refuses_to_swap(tiny_patn_run, people):
  pipe = jaxpose.load(tiny_patn_run)
  _, person, _ = people
  out = pipe.transfer(person["source_image"], None, person["target_keypoints"],
                      source_keypoints=person["source_keypoints"])
  assert out.shape == (32, 24, 3) and pipe.components == ()
  with pytest.raises(ValueError, match="no per-component style code"):
    pipe.swap(person["source_image"], person["source_parsing"], person["target_keypoints"], {})


def test_weights_directory_round_trip_strips_the_frozen_vgg_and_checks_the_checksum(adgan_run, tmp_path, people):
  nets, _ = checkpoints.read_weights(adgan_run)
  nets = {k: nets[k] for k in ("generator", "discriminator_pb", "discriminator_pp")}
  config = inference.run_config(adgan_run)
  out = str(tmp_path / "w")
  record = weights.save(out, adgan_system.ADGAN, nets, {"config": json.loads(config.to_json_best_effort()),
                                                        "steps": 1})
  stored = np.load(os.path.join(out, weights.WEIGHTS_FILE))
  assert not any("/frozen/" in k for k in stored.files), "the frozen VGG must not be shipped"
  assert record["frozen"]["generator"]["arch"] == "vgg16"
  assert record["parameters"]["generator"] > 0
  read, _ = weights.read(out)
  for name in nets:
    for key, value in weights.flatten(nets[name]).items():
      np.testing.assert_array_equal(weights.flatten(read[name])[key], value)
  _, person, _ = people
  args = (person["source_image"], person["source_parsing"], person["target_keypoints"])
  np.testing.assert_array_equal(jaxpose.load(out).transfer(*args), jaxpose.load(adgan_run).transfer(*args))
  # Fine-tuning starts from a weights directory like from a run.
  config.init_from = out
  loaded, origin = train.load_init_weights(config, adgan_system.ADGAN)
  assert set(loaded) == set(nets) and out in origin
  # A damaged file is refused.
  with open(os.path.join(out, weights.WEIGHTS_FILE), "ab") as f:
    f.write(b"x")
  with pytest.raises(ValueError, match="SHA-256"):
    weights.read(out)


def test_the_shipped_base_matches_its_checksum_and_loads():
  directory = weights.shipped_path("synthetic-adgan")
  record = weights.read_record("synthetic-adgan")
  assert weights.file_sha256(os.path.join(directory, weights.WEIGHTS_FILE)) == record["sha256"]
  assert os.path.getsize(os.path.join(directory, weights.WEIGHTS_FILE)) < 20e6
  assert record["model"] == "adgan" and record["steps"] > 0 and record["seed"] == record["config"]["seed"]
  # The record reproduces itself: its config runs exactly the recorded steps, and its first command says so.
  assert record["config"]["num_train_steps"] == record["steps"]
  assert "configs/synthetic_adgan_base.py" in record["commands"][0]
  # The recorded config is what the named config file gives (seed, starting point, data, steps).
  from configs import synthetic_adgan_base
  path, _, variant = record["config_file"].partition(":")
  assert path == "configs/synthetic_adgan_base.py"
  config = synthetic_adgan_base.get_config(variant)
  for key in ("seed", "init_from", "num_train_steps"):
    assert record["config"][key] == config[key], key
  assert record["config"]["data"]["name"] == config.data.name
  assert record["config"]["loss"].get("region_l1", 0.0) == config.loss.region_l1
  assert f"--workdir {synthetic_adgan_base.stage_workdir(synthetic_adgan_base.stage_of(variant))}" in \
      record["commands"][-2]
  assert {"ssim", "colour_error_upper", "colour_error_lower"} <= set(record["metrics"]["test"])
  assert set(record["metrics"]["swaps"]) == {"upper_clothes", "pants+skirt", "hair"}
  with np.load(os.path.join(directory, weights.WEIGHTS_FILE)) as stored:
    assert not any("/frozen/" in k for k in stored.files), "the frozen VGG is re-attached, not shipped"
  nets, _ = weights.read("synthetic-adgan")
  assert set(nets) == {"generator", "discriminator_pb", "discriminator_pp"}
  pipe = jaxpose.load("synthetic-adgan")
  assert pipe.image_size == (64, 44) and pipe.components == parsing_lib.ADGAN8_LABELS
  person = np.full((64, 44, 3), 230, np.uint8)
  parsing = np.zeros((64, 44), np.uint8)
  parsing[20:40, 14:30] = parsing_lib.LIP["upper_clothes"]
  person[20:40, 14:30] = (200, 30, 30)
  keypoints = np.full((18, 2), -1)
  keypoints[1], keypoints[2], keypoints[5] = (20, 22), (21, 16), (21, 28)
  out = pipe.transfer(person, parsing, keypoints)
  assert out.shape == (64, 44, 3) and out.std() > 0
