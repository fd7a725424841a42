"""ADGAN on Market-1501 at 128x64: derived here, not an official configuration.

  python -m jaxpose.main --config configs/adgan_market.py --workdir runs/adgan_market \
      --config.vgg19_path=/data/vgg19-dcbb9e9d.pth

The ADGAN authors released DeepFashion settings only (menyifang/ADGAN trains and
evaluates on DeepFashion), so this config takes configs/adgan_deepfashion.py as
it is (architecture, losses and their weights, Adam and the 1000-"epoch"
schedule at batch 6) and changes only the data:
  * market1501_pose/lip: 128x64 images with 20-label LIP parsing maps, merged to
    ADGAN's 8 components in the pipeline. Market-1501 ships no parsing, and
    ADGAN's style encoder needs it, so build that config from LIP maps you
    produce (tfds_builders/market1501_pose/README.md);
  * Gaussian heatmaps, sigma 6: the Market heatmaps of PATN's
    tool/generate_pose_map_market.py are float32 Gaussians (the single-pixel
    spikes of the DeepFashion files are a uint8 truncation of the fashion script only).
`--config configs/adgan_market.py:tiny` shrinks everything for a smoke test on
the builder's dummy data: build it with
  tfds build tfds_builders/market1501_pose --config lip \
      --manual_dir tfds_builders/market1501_pose/dummy_data --data_dir /tmp/fixtures
then pass --config.data.data_dir=/tmp/fixtures.
"""

import ml_collections

from configs import adgan_deepfashion


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "" (the full run) or "tiny" (a two-step smoke test on the dummy data)."""
  config = adgan_deepfashion.get_config()
  config.data.name = "market1501_pose/lip"
  config.data.image_size = (128, 64)
  config.data.heatmap_mode = "gaussian"
  config.data.heatmap_sigma = 6.0
  config.data.parsing_merge = "adgan8"

  if variant == "tiny":
    adgan_deepfashion.shrink_for_tests(config)
  elif variant:
    raise ValueError(f"unknown variant {variant!r}; use '' or 'tiny'")
  return config
