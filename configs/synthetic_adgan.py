"""ADGAN from scratch on the embedded synthetic people, in 10 minutes (the main job starts from a longer-trained base).

  python -m jaxpose.main --config configs/synthetic_adgan.py --workdir runs/synthetic_adgan

Small widths at 64x44 so that building the data, training and evaluating take
under 10 minutes on 2 CPU cores; every network keeps ADGAN's architecture and
the losses keep their official definitions. `--config configs/synthetic_adgan.py:tiny`
shrinks everything further for tests (32x24 images, a few steps).
"""

from configs import adgan_deepfashion
from configs import common


def get_config(variant: str = ""):
  """variant: "" (the main job) or "tiny" (tests)."""
  config = adgan_deepfashion.get_config()
  common.use_synthetic_people(config)

  # Batch 4 and batch 8 give the same images/s on 2 CPU cores; 4 gives twice
  # the updates. 400 steps: about 7.5 minutes of training, 9 minutes in all.
  config.num_train_steps = 400
  config.generator.width = 16
  config.generator.style_dim = 64
  config.generator.n_res = 2
  config.generator.mlp_dim = 64
  # With the official init the AdaIN parameters start nearly independent of the
  # style code and a short run never learns to use it; LeCun-normal style layers
  # depend on it from step 0. Identity colours still need ~1000+ steps (README).
  config.generator.style_init = "lecun"
  config.discriminator.width = 16
  config.discriminator.n_blocks = 1

  config.optim.learning_rate = 1e-3
  config.optim.constant_steps = 250
  config.optim.decay_steps = 150

  if variant == "tiny":
    common.synthetic_tiny(config, adgan_deepfashion.shrink_for_tests)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
