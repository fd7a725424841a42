"""The main job: fine-tune the shipped synthetic-people ADGAN on 14 anime pictures, then transfer
pose and clothes between real and anime people (jaxpose/workflows/anime_transfer.py).

  python -m jaxpose.main --config configs/anime_transfer.py --workdir runs/anime_transfer

Offline and on data that ships with jaxpose: writes 4 synthetic anime
characters (14 pictures, the last character held out; `jaxpose.data.synthetic_anime`),
builds them with the real `anime_pose` builder (64x44, LIP parsing merged to
ADGAN's 8), measures the shipped base (`config.init_from = "synthetic-adgan"`,
configs/synthetic_adgan_base.py) on the anime test pairs and on held-out real
(synthetic) people, fine-tunes all three networks on the 30 anime training pairs,
measures again and draws the transfer figure. Your own characters:
--config.anime.manual_dir=<folder in the anime_pose layout>; another base:
--config.init_from=<run dir, weights dir or official .pth> (its size and
settings must match: data.image_size, heatmaps).
"""

import ml_collections

from configs import adgan_deepfashion
from configs import synthetic_adgan_base


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (the main job) or "tiny" (tests: toy widths, 2 steps, init_from set by the test)."""
  config = synthetic_adgan_base.get_config()  # the base's architecture, heatmaps and parsing merge
  config.workflow = "anime_transfer"
  config.data.name = "anime_pose/64x44_adgan8"
  config.data.data_dir = ""  # "" = <workdir>/tfds: the characters this run writes
  config.data.parsing_merge = "adgan8"

  config.init_from = "synthetic-adgan"  # jaxpose/weights/synthetic_adgan_base
  config.init_what = "all"  # generator, D_PB and D_PP, as the study fine-tuned
  # Every part of the generator learns from the first step (the base froze its style encoder at first).
  config.optim.style_encoder_frozen_steps = 0

  # 30 training pairs; a small fraction of the base's rate adapts rather than overwrites. Measured
  # (README): from the stage-6 base, at 1e-5 the real people lost 0.033 SSIM and the anime test pairs
  # 0.009; at 2e-6 the real people lose 0.004 and the anime pairs gain 0.005.
  config.num_train_steps = 240
  config.batch_size = 4
  config.optim.learning_rate = 2e-6
  config.optim.constant_steps = 240
  config.optim.decay_steps = 0
  config.log_every = 10
  config.sample_every = 80
  config.checkpoint_every = 80
  config.keep_checkpoints = 1
  config.num_samples = 6
  config.eval.num_pairs = 0  # the whole anime test split (6 pairs)

  config.anime = ml_collections.ConfigDict()
  config.anime.manual_dir = ""  # "" = write synthetic characters into <workdir>/anime_characters
  config.anime.seed = 0
  config.anime.image_size = (256, 176)  # the pictures written (the builder letterboxes them to data.image_size)

  # Held-out real people, measured before and after fine-tuning.
  config.real = ml_collections.ConfigDict()
  config.real.name = "synthetic_people/64x44"
  config.real.data_dir = ""  # "" = $TFDS_DATA_DIR or ~/tensorflow_datasets (built on first use)
  config.real.num_pairs = 200

  config.figure = ml_collections.ConfigDict()
  config.figure.rows_per_direction = 2

  if variant == "tiny":
    adgan_deepfashion.shrink_for_tests(config)
    config.init_from = ""  # the test trains a tiny base first and points here
    config.data.name = "anime_pose/tiny"
    config.data.image_size = (32, 24)
    config.anime.image_size = (64, 44)
    config.real.name = "synthetic_people/tiny"
    config.real.num_pairs = 4
    config.figure.rows_per_direction = 1
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
