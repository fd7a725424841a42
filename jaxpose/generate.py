"""`--mode=generate`: pose transfer and component attribute transfer from a checkpoint.

  python -m jaxpose.main --mode=generate --config configs/synthetic_adgan.py --workdir runs/synthetic_adgan

Weights come from `config.generate.checkpoint`: empty means the latest
checkpoint of --workdir; otherwise one of our run or step directories, a
`python -m jaxpose.convert` output, or an official `<epoch>_net_netG.pth`.
Writes under `config.generate.output_dir` (default <workdir>/generated):

  pose_transfer/<i>_<source>___<target>.png   each generated image
  strips/<i>_<source>___<target>.png          source | target pose | generated | target
  pose_transfer.png                           the first strips in one picture
  component_swap.png                          (ADGAN) people in a target pose with their
                                              upper clothes, lower garment, hair... taken
                                              from other people, by mixing style codes
  custom_*.png                                for a user's own source image, parsing and
                                              target keypoints (config.generate.source_image ...)
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from jaxpose import checkpoints
from jaxpose import networks as networks_lib
from jaxpose import sharding as sharding_lib
from jaxpose import visualize
from jaxpose.data import heatmaps
from jaxpose.data import keypoints as kp
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import pipeline
from jaxpose.data import sources
from jaxpose.models import adgan

_MODEL_KEYS = ("source_image", "target_image", "source_pose", "target_pose", "source_parsing",
               "target_parsing")


def load_generator(config: ml_collections.ConfigDict, workdir: str) -> tuple[networks_lib.Networks, Any, str]:
  """(networks with the right generator, its variables, where they came from)."""
  path = config.generate.checkpoint or workdir
  if path.endswith(".pth"):
    from jaxpose import convert  # pylint: disable=g-import-not-at-top
    model, variables = convert.import_checkpoint(f"{config.model}_generator", path)
    nets = networks_lib.Networks(model=config.model, generator=model, discriminator_pb=None,
                                 discriminator_pp=None, loss_vgg=None, cx_vgg=None)
    return nets, variables, f"official checkpoint {path}"
  tree, step_dir = checkpoints.read_weights(path)
  variables = tree["generator"]
  vgg = variables.get("frozen", {}).get("style_encoder", {}).get("vgg", {})
  arch = "vgg19" if "conv3_4" in vgg else "vgg16"
  pretrained = networks_lib.Pretrained(generator_arch=arch, generator_frozen=None, loss_arch=arch,
                                       loss_vgg=None, cx_arch=None, cx_vgg=None, descriptions=())
  return networks_lib.build(config, pretrained), variables, f"checkpoint {step_dir}"


def _safe(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(name)[0])[:80]


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


class _Generator:
  """Jitted generation, style encoding and decoding for one set of variables."""

  def __init__(self, nets: networks_lib.Networks, variables: Any, mesh):
    # Checkpoints restore onto the devices they were saved from; generation runs on `mesh`.
    variables = jax.device_put(variables, sharding_lib.replicated_sharding(mesh))
    self.nets, self.variables, self.mesh = nets, variables, mesh
    self._generate = jax.jit(nets.generate)
    model = nets.generator
    if nets.model == "adgan":
      self._encode = jax.jit(lambda v, image, parsing: model.apply(v, image, parsing, method=model.encode_style))
      self._decode = jax.jit(lambda v, pose, code: model.apply(v, pose, code, method=model.decode))

  def _device(self, batch):
    return sharding_lib.to_global_arrays({k: batch[k] for k in batch if k in _MODEL_KEYS}, self.mesh)

  def generate(self, batch) -> np.ndarray:
    return visualize.to_uint8(jax.device_get(self._generate(self.variables, self._device(batch))))

  def encode_style(self, image, parsing) -> jax.Array:
    return self._encode(self.variables, jnp.asarray(image), jnp.asarray(parsing))

  def decode(self, pose, code) -> np.ndarray:
    return visualize.to_uint8(jax.device_get(self._decode(self.variables, jnp.asarray(pose), code)))


def pose_transfer_pairs(gen: _Generator, source, transform, out_dir: str, *, indices: Sequence[int],
                        batch_size: int) -> list[np.ndarray]:
  """Generates every pair in `indices`, writing PNGs and strips; returns the strips."""
  strips = []
  os.makedirs(os.path.join(out_dir, "pose_transfer"), exist_ok=True)
  os.makedirs(os.path.join(out_dir, "strips"), exist_ok=True)
  batches = pipeline.eval_batches(source, batch_size=batch_size, transform=transform, indices=indices)
  total = -(-len(indices) // batch_size)
  for batch, valid in tqdm.tqdm(batches, total=total, desc="pose transfer", unit="batch"):
    generated = gen.generate(batch)
    for i in range(valid):
      pair = int(batch["pair_index"][i])
      example = source[pair]
      name = f"{pair:05d}_{_safe(example['source_name'])}___{_safe(example['target_name'])}.png"
      visualize.save_png(os.path.join(out_dir, "pose_transfer", name), generated[i])
      h, w = generated[i].shape[:2]
      strip = visualize.grid([[example["source_image"], visualize.pose_image(example["target_keypoints"], h, w),
                               generated[i], example["target_image"]]], min_height=h)
      visualize.save_png(os.path.join(out_dir, "strips", name), strip)
      strips.append((example, generated[i]))
  return strips


def component_swap_grid(gen: _Generator, source, transform, *, indices: Sequence[int],
                        groups: Sequence[tuple[str, list[int]]], num_components: int) -> tuple[np.ndarray, dict]:
  """Rows: a person (a pair's source) in a target pose, as is and with each
  component group taken from another row's person.

  Returns the grid and the arrays behind it: 'own' (R, H, W, 3) generated as
  is, 'swapped' {group: (R, H, W, 3)}, 'donor_rows' {group: (R,) donor row}.
  """
  batch, valid = next(pipeline.eval_batches(source, batch_size=len(indices), transform=transform, indices=indices))
  rows = valid
  codes = gen.encode_style(batch["source_image"], batch["source_parsing"])
  own = gen.decode(batch["target_pose"], codes)
  swapped, donor_rows = {}, {}
  for j, (name, members) in enumerate(groups):
    donors = (np.arange(rows) + j + 1) % rows
    mixed = adgan.mix_components(codes, codes[donors], members, num_components)
    swapped[name], donor_rows[name] = gen.decode(batch["target_pose"], mixed), donors
  source_u8 = visualize.to_uint8(batch["source_image"])
  h, w = source_u8.shape[1:3]
  grid_rows, titles = [], ["person", "tgt pose", "as is"]
  for name, _ in groups:
    titles += ["donor", name.replace("upper_clothes", "upper").replace("+", "/")]
  for r in range(rows):
    row = [source_u8[r], visualize.pose_image(batch["target_keypoints"][r], h, w), own[r]]
    for name, _ in groups:
      row += [source_u8[donor_rows[name][r]], swapped[name][r]]
    grid_rows.append(row)
  return visualize.grid(grid_rows, column_titles=titles), {
      "own": own, "swapped": swapped, "donor_rows": donor_rows, "batch": batch}


def _region_mean_colour(images_u8: np.ndarray, onehot: np.ndarray, components: Sequence[int]) -> np.ndarray:
  """Mean RGB (R, 3) of each image over the union of `components` of its one-hot parsing."""
  mask = onehot[..., list(components)].sum(-1, keepdims=True)
  return (images_u8.astype(np.float64) * mask).sum((1, 2)) / np.maximum(mask.sum((1, 2)), 1)


def swap_colour_shift(arrays: dict, groups: Sequence[tuple[str, list[int]]], min_pixels: int = 20) -> dict:
  """How far each component swap moved the region's colour toward the donor's.

  For each group and row: d_own = |colour of the region in the as-is image -
  the donor's own colour there|, d_swap = the same for the swapped image
  (colours are region means in the target parsing, the donor's measured on its
  source image). Returns {group: {'rows', 'moved', 'closer'}}: the mean of
  (d_own - d_swap) / d_own (0: no change, 1: exactly the donor's colour) and
  the fraction of rows that got closer, over rows where both people have at
  least `min_pixels` pixels of the region. `arrays` is `component_swap_grid`'s.
  """
  batch = arrays["batch"]
  source_u8 = visualize.to_uint8(batch["source_image"])
  out = {}
  for name, members in groups:
    donors = arrays["donor_rows"][name]
    donor_colour = _region_mean_colour(source_u8, batch["source_parsing"], members)[donors]
    own = _region_mean_colour(arrays["own"], batch["target_parsing"], members)
    swapped = _region_mean_colour(arrays["swapped"][name], batch["target_parsing"], members)
    present = ((batch["target_parsing"][..., list(members)].sum((1, 2, 3)) >= min_pixels)
               & (batch["source_parsing"][..., list(members)].sum((1, 2, 3))[donors] >= min_pixels))
    d_own = np.linalg.norm(own - donor_colour, axis=-1)[present]
    d_swap = np.linalg.norm(swapped - donor_colour, axis=-1)[present]
    out[name] = {"rows": int(present.sum()),
                 "moved": float(np.mean((d_own - d_swap) / np.maximum(d_own, 1e-6))) if present.any() else float("nan"),
                 "closer": float(np.mean(d_swap < d_own)) if present.any() else float("nan")}
  return out


def parse_keypoints_text(text: str) -> np.ndarray:
  """A target pose typed by a user -> int32 (18, 2) (y, x), -1 missing.

  Accepts an annotation-CSV row `name:[y0, ..., y17]:[x0, ..., x17]` (the
  DeepFashion/Market format) or a JSON list of 18 [y, x] pairs.
  """
  from jaxpose.data import annotations  # pylint: disable=g-import-not-at-top
  text = text.strip()
  try:
    if text.startswith("[["):
      points = np.asarray(json.loads(text))
    else:
      fields = text.split(":")
      if len(fields) != 3:
        raise ValueError("expected 'name:[ys]:[xs]' (an annotation-CSV row) or a JSON list of [y, x] pairs")
      points = np.stack([annotations.parse_coordinates(fields[1]), annotations.parse_coordinates(fields[2])], -1)
  except (ValueError, annotations.BadInput) as e:
    raise ValueError(f"config.generate.target_keypoints {text[:60]!r}: {e}") from e
  if points.shape != (kp.NUM_KEYPOINTS, 2):
    raise ValueError(f"config.generate.target_keypoints: expected 18 (y, x) joints, got shape {points.shape}")
  return points.astype(np.int32)


def _custom_inputs(config, image_size) -> dict | None:
  """A user's own source image, parsing map and target keypoints as a one-example batch.

  The image and its parsing map may have any size: they are letterboxed
  (aspect kept, padded) to the model's size as the anime builder does.
  """
  from jaxpose.data import annotations  # pylint: disable=g-import-not-at-top
  g = config.generate
  if not g.source_image:
    return None
  if not (g.source_parsing and g.target_keypoints):
    raise ValueError("config.generate.source_image needs config.generate.source_parsing and "
                     "config.generate.target_keypoints too")
  height, width = image_size
  try:
    pixels = annotations.read_image(g.source_image).pixels
    labels = annotations.read_label_map(g.source_parsing, parsing_lib.num_classes(g.parsing_labels),
                                        [pixels.shape[:2]], g.parsing_labels)
  except annotations.BadInput as e:
    raise ValueError(f"{g.source_image} / {g.source_parsing}: {e}") from e
  box = annotations.Letterbox.fit(pixels.shape[:2], (height, width))
  image, labels = box.image(pixels), box.labels(labels)
  target = parse_keypoints_text(g.target_keypoints)
  frame = tuple(g.target_keypoints_size) or (height, width)
  target = annotations.Letterbox.fit(frame, (height, width)).keypoints(target)
  num = parsing_lib.num_classes(config.data.parsing_merge)
  one_hot = parsing_lib.one_hot(parsing_lib.merge(labels, g.parsing_labels, config.data.parsing_merge), num)
  pose = heatmaps.keypoints_to_heatmaps(target, height, width, sigma=config.data.heatmap_sigma,
                                        mode=config.data.heatmap_mode)
  image_f = image.astype(np.float32) / 127.5 - 1.0
  # Models that also read a source pose (PATN) get an empty one: a user's image has no annotation.
  return {"source_image": image_f[None], "target_image": image_f[None], "source_parsing": one_hot[None],
          "target_parsing": one_hot[None], "target_pose": pose[None], "source_pose": np.zeros_like(pose)[None],
          "target_keypoints": target[None], "source_image_u8": image}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Writes pose-transfer and component-swap pictures; returns the output paths."""
  workdir = os.path.abspath(workdir)
  out_dir = config.generate.output_dir or os.path.join(workdir, "generated")
  os.makedirs(out_dir, exist_ok=True)
  nets, variables, origin = load_generator(config, workdir)
  logging.info("Generating with the generator from %s", origin)
  mesh = sharding_lib.make_mesh(jax.devices()[:1])
  gen = _Generator(nets, variables, mesh)
  outputs = {}

  custom = _custom_inputs(config, tuple(config.data.image_size))
  if custom is not None:
    generated = gen.generate(custom)[0]
    h, w = generated.shape[:2]
    strip = visualize.grid([[custom["source_image_u8"], visualize.pose_image(custom["target_keypoints"][0], h, w),
                             generated]], column_titles=["source", "tgt pose", "generated"])
    outputs["custom"] = visualize.save_png(os.path.join(out_dir, "custom_pose_transfer.png"), strip)
    visualize.save_png(os.path.join(out_dir, "custom_generated.png"), generated)
    logging.info("Wrote %s", outputs["custom"])
    return outputs

  source = sources.pair_source(config.data.name, config.generate.split, config.data.data_dir or None)
  transform = pipeline.transform_for(source, heatmap_sigma=config.data.heatmap_sigma,
                                     heatmap_mode=config.data.heatmap_mode,
                                     parsing_merge=config.data.parsing_merge)
  num = config.generate.num_pairs or len(source)
  indices = pipeline.spread_indices(len(source), num)
  strips = pose_transfer_pairs(gen, source, transform, out_dir, indices=indices,
                               batch_size=config.generate.batch_size)
  overview = [[e["source_image"], visualize.pose_image(e["target_keypoints"], *g.shape[:2]), g, e["target_image"]]
              for e, g in strips[:16]]
  outputs["pose_transfer"] = visualize.save_png(
      os.path.join(out_dir, "pose_transfer.png"),
      visualize.grid(overview, column_titles=["source", "tgt pose", "generated", "target"]))
  logging.info("Wrote %d pose transfers under %s and %s", len(strips), out_dir, outputs["pose_transfer"])

  if nets.model == "adgan":
    groups = component_groups(config.generate.components, config.data.parsing_merge)
    swap_indices = _distinct_people(source, config.generate.num_swap_rows)
    grid, arrays = component_swap_grid(gen, source, transform, indices=swap_indices, groups=groups,
                                       num_components=parsing_lib.num_classes(config.data.parsing_merge))
    outputs["component_swap"] = visualize.save_png(os.path.join(out_dir, "component_swap.png"), grid)
    logging.info("Wrote the component swap grid %s", outputs["component_swap"])
    shift = swap_colour_shift(arrays, groups)
    for name, m in shift.items():
      logging.info("Swap %-14s over %2d rows: region colour moved %+.0f%% of the way to the donor's, closer in %.0f%%",
                   name, m["rows"], 100 * m["moved"], 100 * m["closer"])
    outputs["component_swap_metrics"] = os.path.join(out_dir, "component_swap_metrics.json")
    with open(outputs["component_swap_metrics"], "w") as f:
      json.dump(shift, f, indent=2)
  return outputs


def _distinct_people(source, count: int) -> list[int]:
  """Pair indices whose source people (identities by name prefix) differ, spread over the split."""
  chosen, seen = [], set()
  for i in pipeline.spread_indices(len(source), max(count * 8, count)):
    who = source[i]["source_name"].rsplit("_", 1)[0]
    if who not in seen:
      seen.add(who)
      chosen.append(i)
    if len(chosen) == count:
      break
  return chosen
