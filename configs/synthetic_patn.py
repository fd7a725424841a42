"""PATN on the embedded synthetic people: the PATN counterpart of configs/synthetic_adgan.py.

  python -m jaxpose.main --config configs/synthetic_patn.py --workdir runs/synthetic_patn

Small widths at 64x44 so that building the data, training and evaluating take
under 10 minutes on 2 CPU cores; the networks keep PATN's architecture (two
streams, PATBs with attention, transposed convs) and the losses their official
definitions, with the DeepFashion settings (instance norm, LSGAN, no pool).
`--config configs/synthetic_patn.py:tiny` shrinks everything further for tests
(32x24 images, a few steps); tests switch it to Market's batch norm, BCE and
history pool with overrides.
"""

from configs import patn_deepfashion


def get_config(variant: str = ""):
  """variant: "" (the main job) or "tiny" (tests)."""
  config = patn_deepfashion.get_config()
  config.data.name = "synthetic_people/64x44"
  config.data.image_size = (64, 44)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 3.0
  config.data.worker_count = 0

  config.batch_size = 4
  config.num_train_steps = 600
  config.generator.width = 16
  config.generator.n_blocks = 4
  config.discriminator.width = 16
  config.discriminator.n_blocks = 1

  # A faster rate than the official 2e-4 for a run of a few hundred steps.
  config.optim.learning_rate = 1e-3
  config.optim.constant_steps = 400
  config.optim.decay_steps = 200

  config.log_every = 20
  config.sample_every = 100
  config.checkpoint_every = 100
  config.eval.num_pairs = 200
  config.eval.batch_size = 40

  if variant == "tiny":
    config.data.name = "synthetic_people/tiny"
    config.data.image_size = (32, 24)
    config.batch_size = 4
    config.num_train_steps = 2
    config.generator.width = 4
    config.generator.n_blocks = 2
    config.discriminator.width = 4
    config.optim.constant_steps = 1
    config.optim.decay_steps = 1
    config.log_every = 1
    config.sample_every = 2
    config.checkpoint_every = 1
    config.eval.num_pairs = 8
    config.eval.batch_size = 4
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
