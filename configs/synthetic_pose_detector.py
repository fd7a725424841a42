"""The pose detector jaxpose ships, trained on the embedded synthetic people at 64x44.

  python -m jaxpose.main --config configs/synthetic_pose_detector.py --workdir runs/synthetic_pose_detector

SPT's detector structure (configs/pose_detector_deepfashion.py) at a width and
depth that fit the package: width 16, 4 residual blocks. Targets: Gaussians
of sigma 1.5 px, SPT's 6 px at 256 px scaled to 64 px (the same fraction of
the body); see the README's pose-detector section for how it was chosen and
what it scores. `:tiny` shrinks everything for tests (32x24 images, a few steps).
"""

from configs import common
from configs import pose_detector_deepfashion


def get_config(variant: str = ""):
  """variant: "" (the shipped detector's run) or "tiny" (tests)."""
  config = pose_detector_deepfashion.get_config()
  common.use_synthetic_people(config)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 1.5

  # Batch 16 pairs (32 images) a step for 10,000 steps: 2 min 33 s on one H200 GPU
  # (about 100 steps/s with 6 Grain workers); 2 CPU cores made 5.6 steps/s at batch 4.
  config.batch_size = 16
  config.data.worker_count = 6
  config.num_train_steps = 10000
  config.detector.width = 16
  config.detector.num_blocks = 4

  # Not a GAN: Adam's usual b1 0.9, and a higher rate than SPT's 2e-4; the last
  # 3,000 steps decay it linearly to zero.
  config.optim.learning_rate = 1e-3
  config.optim.b1 = 0.9
  config.optim.constant_steps = 7000
  config.optim.decay_steps = 3000
  config.log_every = 500
  config.sample_every = 4000
  config.checkpoint_every = 1000
  # Every one of the 300 held-out test images, once.
  config.eval.num_pairs = 0

  if variant == "tiny":
    common.synthetic_tiny(config, pose_detector_deepfashion.shrink_for_tests)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
