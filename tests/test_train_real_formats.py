"""ADGAN trains on each real dataset's format: the builders' dummy_data (files in the
official layouts) built with TFDS, then the real configs' `:tiny` variants run the
whole job (one step, checkpoint, samples, evaluation) through `train.train_and_evaluate`.

The anime case is the users' central workflow: fine-tune from a checkpoint of
another run (here configs/synthetic_adgan.py:tiny, whose model the anime tiny
config shares) on a folder of characters.
"""

import json
import os

import pytest

from configs import adgan_anime_finetune
from configs import adgan_deepfashion
from configs import adgan_market
from configs import spt_deepfashion
from configs import spt_market
from jaxpose import checkpoints
from jaxpose import train
from tfds_builders import testing as builder_testing
from tfds_builders.anime_pose import anime_pose_dataset_builder as anime_lib
from tfds_builders.deepfashion_pose import deepfashion_pose_dataset_builder as deepfashion_lib
from tfds_builders.market1501_pose import market1501_pose_dataset_builder as market_lib

BUILDERS = os.path.join(os.path.dirname(__file__), "..", "tfds_builders")


@pytest.fixture(scope="module")
def fixtures_dir(tmp_path_factory):
  """deepfashion_pose/adgan8 and /fullframe_lip, market1501_pose/lip and anime_pose/128x88 from their dummy_data."""
  data_dir = str(tmp_path_factory.mktemp("real_formats"))
  for module, name, config in ((deepfashion_lib, "deepfashion_pose", "adgan8"),
                               (deepfashion_lib, "deepfashion_pose", "fullframe_lip"),
                               (market_lib, "market1501_pose", "lip"), (anime_lib, "anime_pose", "128x88")):
    builder_testing.build(module.Builder, config, os.path.join(BUILDERS, name, "dummy_data"), data_dir)
  return data_dir


def _one_step(config, data_dir):
  """The config's `:tiny` run cut to one step and 2 evaluation pairs: these runs are at the official
  image sizes, where every step and evaluated pair costs seconds on 2 CPU cores."""
  config.data.data_dir = data_dir
  config.num_train_steps = 1
  config.sample_every = 1
  config.eval.num_pairs = 2
  return config


def _check_run(workdir, results, networks=("generator", "discriminator_pb", "discriminator_pp")):
  assert results["train_steps"] == 1 and 0 < results["ssim"] <= 1
  with open(os.path.join(workdir, "metrics.json")) as f:
    assert json.load(f)["train_steps"] == 1
  for name in ("data_samples.png", "samples/step_0000001.png", "loss_curves.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  tree, _ = checkpoints.read_weights(workdir)
  assert set(networks) <= set(tree)


@pytest.mark.parametrize("module", [adgan_deepfashion, adgan_market], ids=["deepfashion", "market"])
def test_adgan_trains_on_the_official_layouts(module, fixtures_dir, tmp_path):
  config = _one_step(module.get_config("tiny"), fixtures_dir)
  workdir = str(tmp_path / "run")
  results = train.train_and_evaluate(config, workdir)
  _check_run(workdir, results)


def test_fine_tuning_a_synthetic_checkpoint_on_anime_characters(fixtures_dir, tiny_adgan_run, tmp_path):
  # tiny_adgan_run (tests/conftest.py): a one-step run of configs/synthetic_adgan.py:tiny.
  source_dir = tiny_adgan_run
  config = _one_step(adgan_anime_finetune.get_config("tiny"), fixtures_dir)
  with pytest.raises(FileNotFoundError, match="init_from"):
    train.train_and_evaluate(config, str(tmp_path / "no_init"))
  config.init_from = source_dir
  workdir = str(tmp_path / "anime")
  results = train.train_and_evaluate(config, workdir)
  _check_run(workdir, results)


@pytest.mark.parametrize("module", [spt_deepfashion, spt_market], ids=["deepfashion", "market"])
def test_spt_trains_on_the_official_layouts(module, fixtures_dir, tmp_path):
  """SPT's :tiny (stage 3: everything end to end) on pseudo labels searched in the dummy data; DeepFashion's
  is progressive with the face discriminator (256x256), Market's the global generator alone (128x64)."""
  config = _one_step(module.get_config("tiny"), fixtures_dir)
  workdir = str(tmp_path / "run")
  results = train.train_and_evaluate(config, workdir)
  networks = ("generator", "semantic_generator", "discriminator", "parsing_discriminator")
  _check_run(workdir, results, networks + (("face_discriminator",) if module is spt_deepfashion else ()))
  assert 0 <= results["parsing_accuracy"] <= 1
