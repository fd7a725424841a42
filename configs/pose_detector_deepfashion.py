"""SPT's pose detector at its own size, trained by jaxpose on DeepFashion (SPT never released one).

  python -m jaxpose.main --config configs/pose_detector_deepfashion.py --workdir runs/pose_detector_deepfashion

Needs deepfashion_pose/no_parsing built first (tfds_builders/deepfashion_pose/README.md).
SPT's construction (shared/reference/pose.md section 3): the CycleGAN
ResnetGenerator 3 -> 18, width 64, 9 residual blocks, instance norm, Tanh,
11,425,234 parameters, on RGB in [-1, 1]; targets exp(-d^2 / (2 * 6^2)) per
joint at full resolution, MSE. SPT's training script and its settings are
unreleased; the batch, rate and steps below are jaxpose's choice (the
CycleGAN codebase's Adam 2e-4, b1 0.5, as in SPT's other networks). Every
other pose-detector config starts from this one; `:tiny` shrinks it for a smoke
test on the builder's dummy data.
"""

import ml_collections

from configs import common


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (SPT's architecture and targets) or "tiny" (see `shrink_for_tests`)."""
  config = common.get_config(model="pose_detector")
  config.data.name = "deepfashion_pose/no_parsing"
  config.data.image_size = (256, 176)
  # The detector's training targets: Gaussians of sigma 6 at 256 px, SPT's cords_to_map(sigma=6).
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 6.0

  config.batch_size = 8  # pairs; each gives two images (source and target)
  config.num_train_steps = 100_000

  config.detector = ml_collections.ConfigDict()
  config.detector.width = 64  # ngf
  config.detector.num_blocks = 9
  config.detector.dropout_rate = 0.0  # CycleGAN's define_G default would be 0.5; SPT's choice is unknown
  config.detector.mirror = True  # mirror half the images (left and right joints swapped)
  config.detector.threshold = 0.1  # heatmap peak below which a joint counts as missing

  config.optim.learning_rate = 2e-4
  config.optim.b1 = 0.5
  config.optim.constant_steps = 50_000
  config.optim.decay_steps = 50_000

  # The detector evaluates itself (pckh_learned over the test images, 0 = all of them).
  config.eval.num_pairs = 0

  if variant == "tiny":
    shrink_for_tests(config)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config


def shrink_for_tests(config: ml_collections.ConfigDict) -> None:
  """A toy detector and `common.shrink_for_tests`' two-step run; every pose-detector config's `:tiny` uses it."""
  common.shrink_for_tests(config)
  config.detector.width = 4
  config.detector.num_blocks = 1
