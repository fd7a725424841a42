"""`--mode=generate`: pose transfer and component attribute transfer from a checkpoint.

  python -m jaxpose.main --mode=generate --config configs/synthetic_adgan.py --workdir runs/synthetic_adgan

Weights come from `config.generate.checkpoint`: empty means the latest
checkpoint of --workdir; otherwise shipped weights (`synthetic-adgan`), one of
our run or step directories, a `python -m jaxpose.convert` output, or an
official `<epoch>_net_netG.pth`. Every picture is made through the same
`jaxpose.inference.Pipeline` that `jaxpose.load` returns. Writes under `config.generate.output_dir` (default <workdir>/generated):

  pose_transfer/<i>_<source>___<target>.png   each generated image
  strips/<i>_<source>___<target>.png          source | target pose | generated | target
  pose_transfer.png                           the first strips in one picture
  <the system's own pictures>                 e.g. ADGAN's component_swap.png: people in a
                                              target pose with their upper clothes, lower
                                              garment, hair... taken from other people
  custom_*.png                                for a user's own source image, parsing and
                                              target keypoints (config.generate.source_image ...)
"""

from __future__ import annotations

import json
import os
import re
from typing import Sequence

from absl import logging
import ml_collections
import numpy as np
import tqdm

from jaxpose import inference
from jaxpose import systems
from jaxpose import visualize
from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import image_io
from jaxpose.data import keypoints as kp
from jaxpose.data import letterbox
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import pipeline
from jaxpose.data import sources


def load_generator(config: ml_collections.ConfigDict, workdir: str) -> tuple[systems.System, dict, str]:
  """(a system able to generate, its generation networks' variables, where they came from).

  From `config.generate.checkpoint`: empty means the latest checkpoint of
  `workdir`; otherwise shipped weights, one of our run or step directories, a
  convert output or an official generator `.pth` (`inference.generation_networks`).
  """
  return inference.generation_networks(config, config.generate.checkpoint or workdir)


def pose_transfer_pairs(pipe: inference.Pipeline, source, transform, out_dir: str, *, indices: Sequence[int],
                        batch_size: int) -> list[np.ndarray]:
  """Generates every pair in `indices`, writing PNGs and strips; returns (example, generated) pairs."""
  strips = []
  os.makedirs(os.path.join(out_dir, "pose_transfer"), exist_ok=True)
  os.makedirs(os.path.join(out_dir, "strips"), exist_ok=True)
  batches = pipeline.eval_batches(source, batch_size=batch_size, transform=transform, indices=indices)
  total = -(-len(indices) // batch_size)
  for batch, valid in tqdm.tqdm(batches, total=total, desc="pose transfer", unit="batch"):
    generated = pipe.generate(batch)
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


def _safe(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.splitext(name)[0])[:80]


def parse_keypoints_text(text: str) -> np.ndarray:
  """A target pose typed by a user -> int32 (18, 2) (y, x), -1 missing.

  Accepts an annotation-CSV row `name:[y0, ..., y17]:[x0, ..., x17]` (the
  DeepFashion/Market format) or a JSON list of 18 [y, x] pairs.
  """
  text = text.strip()
  try:
    if text.startswith("[["):
      points = np.asarray(json.loads(text))
    else:
      fields = text.split(":")
      if len(fields) != 3:
        raise ValueError("expected 'name:[ys]:[xs]' (an annotation-CSV row) or a JSON list of [y, x] pairs")
      points = np.stack([annotation_csv.parse_coordinates(fields[1]),
                         annotation_csv.parse_coordinates(fields[2])], -1)
  except (ValueError, bad_input.BadInput) as e:
    raise ValueError(f"config.generate.target_keypoints {text[:60]!r}: {e}") from e
  if points.shape != (kp.NUM_KEYPOINTS, 2):
    raise ValueError(f"config.generate.target_keypoints: expected 18 (y, x) joints, got shape {points.shape}")
  return points.astype(np.int32)


def _custom_inputs(config, pipe: inference.Pipeline) -> dict | None:
  """A user's own source image, parsing map and target keypoints as a one-example batch.

  The image and its parsing map may have any size: `pipe.person` letterboxes
  them to the model's size, as `Pipeline.transfer` does. The target keypoints
  are in the frame of `target_keypoints_size` (default: the model's).
  """
  g = config.generate
  if not g.source_image:
    return None
  if not (g.source_parsing and g.target_keypoints):
    raise ValueError("config.generate.source_image needs config.generate.source_parsing and "
                     "config.generate.target_keypoints too")
  try:
    pixels = image_io.read_image(g.source_image).pixels
    labels = image_io.read_label_map(g.source_parsing, parsing_lib.num_classes(g.parsing_labels),
                                     [pixels.shape[:2]], g.parsing_labels)
  except bad_input.BadInput as e:
    raise ValueError(f"{g.source_image} / {g.source_parsing}: {e}") from e
  person = pipe.person(pixels, labels, labels=g.parsing_labels, name=g.source_image)
  frame = tuple(g.target_keypoints_size) or pipe.image_size
  target = pipe.keypoints(parse_keypoints_text(g.target_keypoints), letterbox.Letterbox.fit(frame, pipe.image_size))
  batch = pipe.inputs(person, pipe.heatmaps(target))
  return {**batch, "target_keypoints": target[None], "source_image_u8": visualize.to_uint8(person.image)}


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Writes pose-transfer pictures (and the system's own, e.g. ADGAN's swap grid); returns the output paths."""
  workdir = os.path.abspath(workdir)
  out_dir = config.generate.output_dir or os.path.join(workdir, "generated")
  os.makedirs(out_dir, exist_ok=True)
  system, nets, origin = load_generator(config, workdir)
  logging.info("Generating with %s's %s from %s", config.model, ", ".join(nets), origin)
  pipe = inference.Pipeline(system, nets, origin)
  outputs = {}

  custom = _custom_inputs(config, pipe)
  if custom is not None:
    generated = pipe.generate(custom)[0]
    h, w = generated.shape[:2]
    strip = visualize.grid([[custom["source_image_u8"], visualize.pose_image(custom["target_keypoints"][0], h, w),
                             generated]], column_titles=["source", "tgt pose", "generated"])
    outputs["custom"] = visualize.save_png(os.path.join(out_dir, "custom_pose_transfer.png"), strip)
    visualize.save_png(os.path.join(out_dir, "custom_generated.png"), generated)
    logging.info("Wrote %s", outputs["custom"])
    return outputs

  source = sources.pair_source(config.data.name, config.generate.split, config.data.data_dir or None)
  transform = type(system).transform(config, source)
  num = config.generate.num_pairs or len(source)
  indices = pipeline.spread_indices(len(source), num)
  strips = pose_transfer_pairs(pipe, source, transform, out_dir, indices=indices,
                               batch_size=config.generate.batch_size)
  overview = [[e["source_image"], visualize.pose_image(e["target_keypoints"], *g.shape[:2]), g, e["target_image"]]
              for e, g in strips[:16]]
  outputs["pose_transfer"] = visualize.save_png(
      os.path.join(out_dir, "pose_transfer.png"),
      visualize.grid(overview, column_titles=["source", "tgt pose", "generated", "target"]))
  logging.info("Wrote %d pose transfers under %s and %s", len(strips), out_dir, outputs["pose_transfer"])
  outputs.update(system.generation_pictures(pipe, source, transform, out_dir))
  return outputs
