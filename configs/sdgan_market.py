"""SDGAN on Market-1501 as the authors' released code trains it (LanglandsLin/SDGAN).

  python -m jaxpose.main --config configs/sdgan_market.py --workdir runs/sdgan_market

Needs market1501_pose/no_parsing built first (tfds_builders/market1501_pose/README.md).
Variants: '' (the released code), 'paper' (our design of the paper's multi-scale
generator, see jaxpose/models/defgan.py), each with ',tiny' for a two-step smoke test
on the builder's dummy data (':tiny' always the 'paper' variant, see `get_config`). Everything not about the scales is configs/defgan_market.py's
'dsc' recipe (128x64, batch 4, deformable skips, Adam(2e-4, 0.5, 0.999), 90,000 steps,
D first on its own batch); SDGAN's own values (shared/reference/peers.md 3.1): the
'released' generator (side outputs at 1/4 and 1/2 resolution mapped to 128x64 by fully
connected layers: 250,024,801 parameters, of which 188,792,832 in the two FC layers),
L1 weight 10 (its "stacked/deformable" command), L1 of the full image counted twice
(the released code adds it once more when it uses no content loss), one shared
discriminator on all three outputs.
"""

import ml_collections

from configs import defgan_market

VARIANTS = ("released", "paper")


def parse_variant(variant: str) -> tuple[str, bool]:
  """'', 'paper', 'released,tiny', 'tiny' -> (generator variant, tiny)."""
  tokens = [t.strip() for t in variant.split(",") if t.strip()]
  names = [t for t in tokens if t in VARIANTS]
  if [t for t in tokens if t not in VARIANTS and t != "tiny"] or len(names) > 1:
    raise ValueError(f"unknown variant {variant!r}; use '', 'paper' or 'released', optionally with ',tiny'")
  return (names[0] if names else "released"), "tiny" in tokens


def sdgan_sections(config: ml_collections.ConfigDict, variant: str) -> None:
  """SDGAN's knobs on top of a Deformable GAN config with deformable skips."""
  config.model = "sdgan"
  del config.generator.warp_skip  # always deformable skips
  config.generator.variant = variant
  config.loss.l1 = 10.0
  # (full, half, quarter) weights of the reconstruction terms, times loss.l1.
  config.loss.scale_weights = (2.0, 1.0, 1.0)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: '' / 'released' (the authors' code) or 'paper', optionally with ',tiny'.

  ':tiny' runs the 'paper' variant: the released side outputs' fully connected
  layers have 189 million parameters at 128x64 whatever the widths (the
  released variant trains in the synthetic_sdgan:tiny contract test at 32x24).
  """
  generator_variant, tiny = parse_variant(variant)
  config = defgan_market.get_config("dsc")
  sdgan_sections(config, generator_variant)
  if tiny:
    defgan_market.shrink_for_tests(config)
    config.generator.variant = "paper"
  return config
