"""SDGAN on the embedded synthetic people (64x32): the SDGAN counterpart of synthetic_defgan.py.

  python -m jaxpose.main --config configs/synthetic_sdgan.py --workdir runs/synthetic_sdgan

configs/synthetic_defgan.py's data, widths and run with SDGAN's multi-scale generator
in the 'paper' variant (tanh images at 1/4, 1/2 and full size; the sample grids show
all three) and SDGAN's losses (L1 weight 10, the full scale counted twice; the
discriminator judges the full image, jaxpose/systems/sdgan.py says why). Not the 'released' variant here: its fully
connected side outputs have 189 million parameters at 128x64 and 11.8 million at
64x32, whatever the widths, far more than the rest of this small model. `:tiny` (tests, 32x24) uses the 'released' variant, whose
FC layers are small there, so the contract test covers it.
"""

from configs import sdgan_market
from configs import synthetic_defgan


def get_config(variant: str = ""):
  """variant: "" (the main job) or "tiny" (tests)."""
  config = sdgan_market.get_config("paper")
  synthetic_defgan.synthetic_sections(config)
  # A step costs about 1.2 times Deformable GAN's (0.32 vs 0.26 s of CPU): 580 steps take the
  # training time of synthetic_defgan's 700.
  config.num_train_steps = 580
  config.optim.constant_steps = 400
  config.optim.decay_steps = 180
  if variant == "tiny":
    synthetic_defgan.tiny_sections(config)
    config.generator.variant = "released"
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
