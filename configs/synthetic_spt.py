"""SPT's three stages on the embedded synthetic people (64x32, Market's aspect), each under 10 minutes on 2 CPU cores.

  python -m jaxpose.main --config configs/synthetic_spt.py:stage1 --workdir runs/synthetic_spt_stage1
  python -m jaxpose.main --config configs/synthetic_spt.py:stage2 --workdir runs/synthetic_spt_stage2
  python -m jaxpose.main --config configs/synthetic_spt.py:stage3 --workdir runs/synthetic_spt_stage3
  python -m jaxpose.main --mode=generate --config configs/synthetic_spt.py:stage3 --workdir runs/synthetic_spt_stage3

Stage 1 trains H_S on pseudo labels (searched once and cached next to the
dataset), stage 2 H_A with H_S fixed, stage 3 both end to end; stages 2 and 3
start from the previous stage's workdir (`init_from`). Small widths at 64x32
(the synthetic_people/64x32 config: the U-Nets need sides divisible by 16),
Market's settings otherwise: the global generator alone, no face
discriminator. The pose loss is off here: with the detector jaxpose ships
(--config.pose_detector_path=synthetic; trained on 64x44 people, it scores
PCKh 0.947 on these 64x32 test people) stage 2 measured SSIM 0.460 against
0.486 without it (LPIPS 0.111 against 0.095): its pictures grow a texture
that pleases the small detector.
Evaluation reports H_S's parsing accuracy against the true target parsing of
held-out people (which the synthetic data has and real data lacks) besides SSIM.
`:tiny` (tests) is stage 3 on 32x24 people at toy widths (configs/spt_deepfashion.py:tiny
runs the progressive H_A and the face discriminator).
"""

from configs import common
from configs import spt_deepfashion

STAGE_STEPS = {1: 1500, 2: 900, 3: 700}


def get_config(variant: str = ""):
  """variant: "stage1" (also ""), "stage2", "stage3" or "tiny"."""
  config = spt_deepfashion.get_config("stage1")
  common.use_synthetic_people(config)
  config.data.name = "synthetic_people/64x32"
  config.data.image_size = (64, 32)
  config.data.pseudo_labels.top_k = 4
  config.data.pseudo_labels.downsample = 1
  config.batch_size = 4

  config.generator.encoder_widths = (16, 32, 64, 64, 64)
  config.generator.decoder_widths = (64, 64, 64, 32, 3)
  config.generator.progressive = False
  config.semantic_generator.encoder_widths = (16, 32, 64, 64, 64)
  config.semantic_generator.decoder_widths = (64, 64, 64, 32)
  config.face_discriminator.enabled = False  # 64x32: faces of a few pixels (Market's choice)
  for name in ("discriminator", "parsing_discriminator"):
    config[name].width = 16
  config.optim.learning_rate = 5e-4

  if variant in ("", "stage1", "stage2", "stage3"):
    spt_deepfashion.set_stage(config, int(variant[-1]) if variant else 1, "runs/synthetic_spt_stage{}", STAGE_STEPS)
  elif variant == "tiny":
    spt_deepfashion.set_stage(config, 3, None, STAGE_STEPS)
    common.synthetic_tiny(config, spt_deepfashion.shrink_for_tests)
  else:
    raise ValueError(f"unknown variant {variant!r}; use 'stage1', 'stage2', 'stage3' or 'tiny'")
  return config
