"""SPT on Market-1501 with the authors' settings: 128x64, batch 16, no face discriminator.

  python -m jaxpose.main --config configs/spt_market.py:stage1 --workdir runs/spt_market_stage1
  python -m jaxpose.main --config configs/spt_market.py:stage2 --workdir runs/spt_market_stage2 \
      --config.pose_detector_path=<detector run or .msgpack>
  python -m jaxpose.main --config configs/spt_market.py:stage3 --workdir runs/spt_market_stage3 \
      --config.pose_detector_path=<detector run or .msgpack>

Needs market1501_pose/lip built first (tfds_builders/market1501_pose/README.md;
LIP parsing merged into SPT's 10 classes by parsing_merge='spt10'). The
release covers DeepFashion only; at Market's 128x64 H_A is its global
generator alone at full size without the final upsampling (Deformable GAN's
Market generator with SPT's inputs, our reading of the paper's Market
settings), and the face discriminator is left out at this resolution, as the
authors did. Everything else as configs/spt_deepfashion.py. `:tiny` is a
two-step stage 1 (pseudo labels and H_S) at toy widths on the builder's dummy
data (the synthetic :tiny runs this H_A).
"""

import ml_collections

from configs import spt_deepfashion


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "stage1" (also ""), "stage2", "stage3", or "tiny" (stage 1 at toy size)."""
  config = spt_deepfashion.get_config("tiny" if variant == "tiny" else "stage1")
  config.data.name = "market1501_pose/lip"
  config.data.image_size = (128, 64)
  config.data.pseudo_labels.downsample = 1 if variant == "tiny" else 2
  config.batch_size = 16 if variant != "tiny" else config.batch_size
  config.generator.progressive = False
  config.generator.fade_in_steps = 0
  config.face_discriminator.enabled = False
  if variant == "tiny":
    config.stage = 1
  if variant in ("", "stage1", "stage2", "stage3"):
    spt_deepfashion.set_stage(config, int(variant[-1]) if variant else 1, "runs/spt_market_stage{}")
  elif variant != "tiny":
    raise ValueError(f"unknown variant {variant!r}; use 'stage1', 'stage2', 'stage3' or 'tiny'")
  return config
