"""Deformable GAN on the embedded synthetic people, at Market's aspect (64x32).

  python -m jaxpose.main --config configs/synthetic_defgan.py --workdir runs/synthetic_defgan

The authors' 'dsc' recipe (deformable skips, L1 weight 100, BCE GAN, D first on its
own batch, batch 4) with small widths, so that building the data, training and
evaluating take under 10 minutes on 2 CPU cores. Why synthetic_people/64x32 and
not the other synthetic configs' 64x44: the official encoder halves the image 5
times (Market: 128x64 down to 4x2), and 44 halves only twice. 64x32 is Market at
half size: five levels down to 4x2 (the official six minus the finest), the four
finest with deformable skips, as the official. Market's own 128x64 (six levels)
costs 4x more per step: a training step took 1.07 s of CPU there against 0.25 s
at 64x32 (widths as below; 40% of it in the ten-part warps), too slow for the
10-minute budget. `--config.generator.warp_skip=none` trains the
paper's baseline (no deformable skips) for comparison;
`--config configs/synthetic_defgan.py:tiny` shrinks everything for tests (32x24
images, four levels, a few steps).
"""

from configs import common
from configs import defgan_market


def synthetic_sections(config) -> None:
  """The synthetic people at 64x32, small widths and the run length (shared with synthetic_sdgan)."""
  common.use_synthetic_people(config)
  config.data.name = "synthetic_people/64x32"
  config.data.image_size = (64, 32)
  config.data.heatmap_sigma = 3.0  # Market's 6 at half size
  config.batch_size = 4
  config.num_train_steps = 700
  config.generator.encoder_widths = (16, 32, 64, 64, 64)
  config.generator.decoder_widths = (64, 64, 32, 16, 3)
  config.discriminator.widths = (16, 32, 64)  # 64x32 allows four stride-2 convs
  # As the other synthetic configs: 5x the official rate, then a linear decay.
  config.optim.learning_rate = 1e-3
  config.optim.constant_steps = 500
  config.optim.decay_steps = 200


def tiny_sections(config) -> None:
  """`:tiny`: 32x24 people (which halve 3 times: four levels), toy widths, a two-step run."""
  common.synthetic_tiny(config, common.shrink_for_tests)
  config.generator.encoder_widths = (4, 8, 8, 8)
  config.generator.decoder_widths = (8, 8, 4, 3)
  config.discriminator.widths = (4, 8)  # 32x24 allows three stride-2 convs
  config.data.heatmap_sigma = 3.0


def get_config(variant: str = ""):
  """variant: "" (the main job) or "tiny" (tests)."""
  config = defgan_market.get_config("dsc")
  synthetic_sections(config)
  if variant == "tiny":
    tiny_sections(config)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
