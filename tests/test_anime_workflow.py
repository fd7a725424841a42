"""The main job end to end at toy size: a base exported like the shipped one, the anime characters
written and built, before/after measurements on anime and real people, fine-tuning, the figure."""

import json
import os

import numpy as np
from PIL import Image

from configs import anime_transfer
from jaxpose import checkpoints
from jaxpose import weights
from jaxpose import workflows
from jaxpose.weights import export


def test_anime_transfer_workflow(tiny_data_dir, tiny_adgan_run, tmp_path):
  # The shared one-step tiny ADGAN run stands in for the base (same toy architecture as
  # configs/synthetic_adgan_base.py:tiny), exported as the shipped base was.
  stage1 = "python -m jaxpose.main --config configs/synthetic_adgan_base.py --workdir runs/stage1"
  record = export.export(tiny_adgan_run, str(tmp_path / "base_weights"), earlier_commands=[stage1],
                         config_file="configs/synthetic_adgan_base.py:more_people", num_swap_people=3,
                         swap_donors=1)
  # The commands reproduce the weights from nothing: what made init_from first, then this run, then the export.
  assert record["commands"][0] == stage1 and "synthetic_adgan_base.py:more_people" in record["commands"][1]
  assert "jaxpose.weights.export" in record["commands"][2] and f'--earlier_command "{stage1}"' in record["commands"][2]
  assert len(record["commands"]) == 3
  assert record["steps"] == 1 and record["sha256"] == weights.file_sha256(
      str(tmp_path / "base_weights" / weights.WEIGHTS_FILE))
  assert {"ssim", "colour_error_upper", "colour_error_lower"} <= set(record["metrics"]["test"])
  assert set(record["metrics"]["swaps"]) == {"upper_clothes", "pants+skirt", "hair"}

  config = anime_transfer.get_config("tiny")
  config.init_from = str(tmp_path / "base_weights")
  config.real.data_dir = tiny_data_dir
  workdir = tmp_path / "anime"
  results = workflows.get(config.workflow)(config, str(workdir))

  with open(workdir / "metrics.json") as f:
    assert json.load(f) == results
  for stage in ("before", "after"):
    for domain in ("anime", "real"):
      assert 0 < results[f"{stage}/{domain}/ssim"] <= 1
      assert f"{stage}/{domain}/colour_error_upper" in results
  assert results["after/anime/num_pairs"] == 6  # the held-out character's 3 pictures, ordered pairs
  assert results["train_steps"] == 2
  # Fine-tuned from the base (all three networks): two small steps away from it, not a fresh start.
  base, _ = weights.read(str(tmp_path / "base_weights"))
  tuned, _ = checkpoints.read_weights(str(workdir))
  for network in ("generator", "discriminator_pb", "discriminator_pp"):
    a, b = weights.flatten(base[network]["params"]), weights.flatten(tuned[network]["params"])
    distance = np.sqrt(sum(np.sum((a[k] - b[k]) ** 2) for k in a))
    norm = np.sqrt(sum(np.sum(a[k] ** 2) for k in a))
    assert 0 < distance < 0.1 * norm, network
  # 14 synthetic pictures in the anime_pose layout, built by the real builder.
  characters = workdir / "anime_characters"
  assert sum(len([p for p in os.listdir(characters / c) if p.endswith(".png")])
             for c in os.listdir(characters) if (characters / c).is_dir()) == 14
  for picture in ("anime_characters.png", "loss_curves.png", "transfer.png", "data_samples.png"):
    assert (workdir / picture).exists(), picture
  # Four directions, one row each at this size, seven columns.
  figure = np.asarray(Image.open(workdir / "transfer.png"))
  cell = 32 * 3 + 2
  assert (figure.shape[0] - 12 - 2) // cell == 4 and (figure.shape[1] - 2) // (24 * 3 + 2) == 7
