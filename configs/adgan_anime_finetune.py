"""Fine-tune a DeepFashion ADGAN on anime characters (the seed project's transfer workflow).

  python -m jaxpose.main --config configs/adgan_anime_finetune.py --workdir runs/adgan_anime \
      --config.init_from=/data/adgan/1000_net_netG.pth --config.vgg19_path=/data/vgg19-dcbb9e9d.pth

Starts from a trained DeepFashion ADGAN and adapts it to a small set of anime
characters (tfds_builders/anime_pose: your own images, keypoints and parsing
maps, built with `tfds build tfds_builders/anime_pose --config 256x176 --manual_dir <dir>`).
`config.init_from` is required: an official `<epoch>_net_netG.pth` (its
`_net_netD_PB/PP.pth` beside it are used when present) or one of our checkpoint
directories. Left unset, it holds a placeholder that is no file, and the run
stops before its first step with "config.init_from=... does not exist" instead
of silently training from scratch (a run resuming from <workdir>/checkpoints
does not need it).

Everything else comes from configs/adgan_deepfashion.py (architecture, losses,
Adam betas, batch 6) except:
  * data anime_pose/256x176: the official model's size; LIP parsing merged to 8;
  * heatmap_mode 'spike', sigma 6: the official checkpoint was trained on the
    DeepFashion heatmap files, single-pixel spikes (a uint8 truncation), so the
    pose input keeps that form;
  * Adam at 1e-4 (a tenth of the official rate, so the pretrained weights are
    adapted rather than overwritten), 3,000 steps: 2,000 flat, then linear decay
    to 0; samples every 250 steps, checkpoints every 500.
`--config configs/adgan_anime_finetune.py:tiny` is a two-step smoke test on the
builder's dummy data at 128x88 with the model widths of
`configs/synthetic_adgan.py:tiny`, so that a checkpoint of that run can serve as init_from.
"""

import ml_collections

from configs import adgan_deepfashion

INIT_FROM_REQUIRED = "<required: --config.init_from=<epoch>_net_netG.pth or a jaxpose checkpoint directory>"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (the fine-tuning run) or "tiny" (a two-step smoke test on the dummy data)."""
  config = adgan_deepfashion.get_config()
  config.data.name = "anime_pose/256x176"
  config.data.image_size = (256, 176)
  config.data.heatmap_mode = "spike"
  config.data.heatmap_sigma = 6.0
  config.data.parsing_merge = "adgan8"

  config.init_from = INIT_FROM_REQUIRED
  config.init_what = "all"

  config.num_train_steps = 3000
  config.optim.learning_rate = 1e-4
  config.optim.constant_steps = 2000
  config.optim.decay_steps = 1000
  config.log_every = 50
  config.sample_every = 250
  config.checkpoint_every = 500
  config.eval.num_pairs = 0  # the whole (small) test split

  if variant == "tiny":
    # configs/synthetic_adgan.py:tiny's model (same shrink), so its checkpoint fits.
    adgan_deepfashion.shrink_for_tests(config)
    config.data.name = "anime_pose/128x88"
    config.data.image_size = (128, 88)
    config.eval.num_pairs = 2
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
