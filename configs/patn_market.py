"""PATN on Market-1501 with the official settings (tengteng95/Pose-Transfer README, Market command).

  python -m jaxpose.main --config configs/patn_market.py --workdir runs/patn_market \
      --config.vgg19_path=/data/vgg19-dcbb9e9d.pth

Needs market1501_pose/no_parsing built first (tfds_builders/market1501_pose/README.md;
PATN uses no parsing maps). `:tiny` shrinks it for a smoke test. Differences
from configs/patn_deepfashion.py (shared/reference/peers.md 1.1-1.4): 128x64,
batch 32, batch norm in the generator and both discriminators (convs without
bias except G's output conv; PyTorch momentum 0.1), `--no_lsgan` (the official
D ends in a Sigmoid followed by BCELoss; here D outputs logits and the loss is
`losses.bce_gan_loss`, the numerically stable form of the same thing), loss
weights L1 10, perceptual 10, GAN 5, a history pool of 50 generated images per
discriminator (the official default pool_size), Gaussian heatmaps with sigma 6
(tool/generate_pose_map_market.py). Same schedule in epochs: 499 flat + 201
decaying "epochs" of 125 steps (4000 random pairs at batch 32) = 87,500 steps.
"""

import ml_collections

from configs import patn_deepfashion

STEPS_PER_EPOCH = 125  # 4000 random pairs at batch 32.


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (the official settings) or "tiny" (a two-step smoke test on the builder's dummy data)."""
  config = patn_deepfashion.get_config()
  config.data.name = "market1501_pose/no_parsing"  # PATN needs no parsing maps
  config.data.image_size = (128, 64)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 6.0

  config.batch_size = 32
  config.num_train_steps = 700 * STEPS_PER_EPOCH

  config.generator.norm = "batch"
  config.discriminator.norm = "batch"
  config.discriminator.pool_size = 50

  config.loss.gan_type = "bce"
  config.loss.l1 = 10.0
  config.loss.perceptual = 10.0
  config.loss.gan = 5.0

  config.optim.constant_steps = 499 * STEPS_PER_EPOCH
  config.optim.decay_steps = 201 * STEPS_PER_EPOCH

  if variant == "tiny":
    patn_deepfashion.shrink_for_tests(config)
    config.discriminator.pool_size = 3  # < 2 steps x batch 2: the pool fills and starts swapping
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
