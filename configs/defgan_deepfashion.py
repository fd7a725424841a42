"""Deformable GAN on DeepFashion with the authors' settings (AliaksandrSiarohin/pose-gan README, Fashion commands).

  python -m jaxpose.main --config configs/defgan_deepfashion.py:full --workdir runs/defgan_deepfashion_full

Needs deepfashion_pose/uncropped_256x256 built first: the authors' own 256x256 frame
(fasion-dataset/ with fasion-annotation-*.csv and fasion-pairs-*.csv, as made by their
data/split_fasion_dataset.py; tfds_builders/deepfashion_pose/README.md). Variants as
configs/defgan_market.py (baseline, dsc, full (default), fm, each with ',tiny').
Official values (shared/reference/peers.md 2.1-2.5): 256x256, batch 4 (2 for 'full'),
Gaussian heatmaps sigma 6, seven levels (encoder 64-128-256-512-512-512-512 down to
4x4, decoder 512-512-512-512-256-128-3; 82,080,611 generator parameters with deformable
skips, 48,655,449 without), the 'call' PatchGAN (7x7 patches), 90,000 steps of Adam(2e-4,
0.5, 0.999), the nearest-neighbour window 5x5 for 'full'. The content-loss weights
are scaled for torchvision VGG features as explained in configs/defgan_market.py.
"""

import ml_collections

from configs import common
from configs import defgan_market

DEEPFASHION_ENCODER = (64, 128, 256, 512, 512, 512, 512)
DEEPFASHION_DECODER = (512, 512, 512, 512, 256, 128, 3)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: a recipe of `defgan_market.RECIPES` (default 'full'), optionally with ',tiny'."""
  recipe, tiny = defgan_market.parse_variant(variant)
  config = common.get_config(model="defgan")
  config.data.name = "deepfashion_pose/uncropped_256x256"
  config.data.image_size = (256, 256)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 6.0

  config.batch_size = 2 if recipe == "full" else 4
  config.num_train_steps = 90 * defgan_market.STEPS_PER_EPOCH
  defgan_market.defgan_sections(config, DEEPFASHION_ENCODER, DEEPFASHION_DECODER)
  defgan_market.apply_recipe(config, recipe, nn_area=5)
  config.optim.constant_steps = config.num_train_steps
  config.optim.decay_steps = 0
  config.sample_every = defgan_market.STEPS_PER_EPOCH
  config.checkpoint_every = 5 * defgan_market.STEPS_PER_EPOCH
  if tiny:
    defgan_market.shrink_for_tests(config)
  return config
