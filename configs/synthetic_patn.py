"""PATN on the embedded synthetic people: the PATN counterpart of configs/synthetic_adgan.py.

  python -m jaxpose.main --config configs/synthetic_patn.py --workdir runs/synthetic_patn

Small widths (ngf 16, 4 PATBs) at 64x44 so that building the data, training
and evaluating take under 10 minutes on 2 CPU cores; the networks keep PATN's
architecture (two streams, attention blocks with dropout 0.5, transposed convs)
and the losses their official definitions with the DeepFashion weights (L1 1,
perceptual 1, LSGAN 5, no pool). One change from patn_deepfashion: batch norm
(Market's choice) instead of instance norm. The synthetic people stand on a
differently coloured background each, where DeepFashion's are all white;
instance norm removes every image's own feature means, so its generator has to
rediscover each absolute colour, and in a few hundred steps it does not: with
instance norm, 600 steps produced the same grey figure for every input (SSIM
0.52 from the background alone), with batch norm 300 steps already follow the
source's colours.
`--config configs/synthetic_patn.py:tiny` shrinks everything further for tests
(32x24 images, a few steps).
"""

from configs import common
from configs import patn_deepfashion


def get_config(variant: str = ""):
  """variant: "" (the main job) or "tiny" (tests)."""
  config = patn_deepfashion.get_config()
  common.use_synthetic_people(config)

  # Batch 4 gives more updates per second of CPU than 8 (0.6 s vs 1.5 s a step).
  config.num_train_steps = 800
  config.generator.width = 16
  config.generator.n_blocks = 4
  config.generator.norm = "batch"
  config.discriminator.width = 16
  config.discriminator.n_blocks = 1
  config.discriminator.norm = "batch"

  # ADGAN's synthetic rate: the official 2e-4 is still at the mean image after 300 steps.
  config.optim.learning_rate = 1e-3
  config.optim.constant_steps = 550
  config.optim.decay_steps = 250

  if variant == "tiny":
    common.synthetic_tiny(config, patn_deepfashion.shrink_for_tests)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
