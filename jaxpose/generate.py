"""`--mode=generate`: pose transfer and component attribute transfer from a checkpoint.

  python -m jaxpose.main --mode=generate --config configs/synthetic_adgan.py --workdir runs/synthetic_adgan

Weights come from `config.generate.checkpoint`: empty means the latest
checkpoint of --workdir; otherwise shipped weights (`synthetic-adgan`), one of
our run or step directories, a `python -m jaxpose.convert` output, or an
official `<epoch>_net_netG.pth`. Every picture is made through the same
`jaxpose.inference.Pipeline` that `jaxpose.load` returns (`Pipeline.generate`
for pose transfer, `Pipeline.generate_components` for ADGAN's swaps). Writes under `config.generate.output_dir` (default <workdir>/generated):

  pose_transfer/<i>_<source>___<target>.png   each generated image
  strips/<i>_<source>___<target>.png          source | target pose | generated | target
  pose_transfer.png                           the first strips in one picture
  <the system's own pictures>                 e.g. ADGAN's component_swap.png: people in a
                                              target pose with their upper clothes, lower
                                              garment, hair... taken from other people
  custom_pose_transfer.png, custom_generated.png,
  custom_keypoints.json                       for a user's own source photo (and its parsing
                                              map where the system reads one) and a target
                                              pose given as keypoints or as a photo, whose
                                              keypoints OpenPose finds (config.generate.*)
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
  convert output or an official generator file (`inference.generation_networks`).
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


def parse_keypoints_text(text: str, field: str = "config.generate.target_keypoints") -> np.ndarray:
  """A pose typed by a user -> int32 (18, 2) (y, x), -1 missing.

  Accepts an annotation-CSV row `name:[y0, ..., y17]:[x0, ..., x17]` (the
  DeepFashion/Market format, as `python -m jaxpose.annotate` writes) or a JSON
  list of 18 [y, x] pairs (any spacing). `field` names the config field in errors.

  Raises:
    ValueError: unparsable text, not 18 joints, a NaN or infinite coordinate,
      or no joint given at all (every joint -1).
  """
  text = text.strip()
  try:
    if text.startswith("["):
      try:
        values = json.loads(text)
      except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at character {e.pos})") from None
      try:
        points = np.asarray(values, dtype=np.float64)
      except (ValueError, TypeError):
        raise ValueError("expected a JSON list of 18 [y, x] pairs of numbers") from None
    else:
      fields = text.split(":")
      if len(fields) != 3:
        raise ValueError("expected 'name:[ys]:[xs]' (an annotation-CSV row) or a JSON list of [y, x] pairs")
      points = np.stack([np.asarray(annotation_csv.parse_coordinates(fields[1]), np.float64),
                         np.asarray(annotation_csv.parse_coordinates(fields[2]), np.float64)], -1)
  except (ValueError, bad_input.BadInput) as e:
    raise ValueError(f"{field} {text[:60]!r}: {e}") from e
  if points.shape != (kp.NUM_KEYPOINTS, 2):
    raise ValueError(f"{field}: expected 18 (y, x) joints, got shape {points.shape}")
  not_finite = ~np.all(np.isfinite(points), axis=-1)
  if not_finite.any():
    names = ", ".join(kp.KEYPOINT_NAMES[i] for i in np.flatnonzero(not_finite))
    raise ValueError(f"{field}: joint(s) {names} are NaN or infinite; give -1 for a missing joint")
  points = np.floor(points).astype(np.int32)
  if not kp.is_present(points).any():
    raise ValueError(f"{field}: every joint is missing (-1): a pose needs joints (the generated image would be a "
                     "flat grey)")
  return points


def place_target_pose(points: np.ndarray, frame: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
  """Target keypoints given in `frame` (height, width) -> int32 (18, 2) in the model's `image_size`.

  Joints outside the frame are dropped with a warning listing them; when most
  of the given joints fall outside, the warning says the frame is probably
  wrong, and when all do, it is an error (a blank pose).
  """
  height, width = frame
  present = kp.is_present(points)
  inside = present & (points[:, 0] >= 0) & (points[:, 0] < height) & (points[:, 1] >= 0) & (points[:, 1] < width)
  outside = np.flatnonzero(present & ~inside)
  if len(outside):
    listed = ", ".join(f"{kp.KEYPOINT_NAMES[i]} (y={points[i, 0]}, x={points[i, 1]})" for i in outside)
    fix = ("set --config.generate.target_keypoints_size=<height>,<width> to the size of the image the "
           "keypoints were measured on")
    if not inside.any():
      raise ValueError(f"config.generate.target_keypoints: every joint lies outside the {height}x{width} frame "
                       f"({listed}): the keypoints are probably in another image's frame; {fix}")
    if len(outside) > present.sum() / 2:
      logging.warning("config.generate.target_keypoints: %d of %d joints lie outside the %dx%d frame and are "
                      "dropped (%s): the frame is probably wrong; %s", len(outside), present.sum(), height, width,
                      listed, fix)
    else:
      logging.warning("config.generate.target_keypoints: joints outside the %dx%d frame are dropped: %s", height,
                      width, listed)
  return letterbox.Letterbox.fit(frame, image_size).keypoints(points)


def pose_estimator(config):
  """OpenPose for users' photos: config.generate.pose_estimator_path, else config.eval.pose_estimator_path.

  Returns a `jaxpose.pose.PoseEstimator` (protocol config.eval.pose_estimator_protocol) or None when
  neither is set; a configured file that does not exist is an error.
  """
  g = config.generate
  field = "config.generate.pose_estimator_path" if g.get("pose_estimator_path") else "config.eval.pose_estimator_path"
  path = g.get("pose_estimator_path") or config.eval.get("pose_estimator_path")
  if not path:
    return None
  if not os.path.exists(path):
    raise FileNotFoundError(f"{field}={path!r} does not exist (OpenPose body weights: body_pose_model.pth or "
                            "pose_estimator.h5, see the README's 'Your own photos')")
  from jaxpose.pose import estimate  # pylint: disable=g-import-not-at-top
  protocol = config.eval.get("pose_estimator_protocol", "patn")
  logging.info("Keypoints of users' photos: OpenPose from %s (%s), protocol %r", path, field, protocol)
  return estimate.PoseEstimator.from_file(path, protocol=protocol)


def _read_photo(path: str, field: str) -> np.ndarray:
  try:
    return image_io.read_image(path).pixels
  except bad_input.BadInput as e:
    raise ValueError(f"{field}={path!r}: {e}") from e


def _custom_inputs(config, pipe: inference.Pipeline) -> dict | None:
  """A user's own source photo and target pose as a one-example batch; None without config.generate.source_image.

  The target pose is `target_keypoints` (typed, in the frame of
  `target_keypoints_size`) or `target_image`, a photo of someone in the pose,
  whose keypoints OpenPose finds (`pose_estimator`). The source's keypoints
  (models such as PATN read a source pose) are `source_keypoints` (in the source
  photo's pixels, e.g. its row of `python -m jaxpose.annotate`), else found by
  OpenPose when weights are configured, else all missing. Photos and the parsing
  map may have any size: `pipe.person` letterboxes them (aspect kept, padded) to
  the model's size as the anime builder and `Pipeline.transfer` do, and OpenPose
  runs on the letterboxed photo, at the model's size, as the datasets were
  annotated. The parsing map is needed only by systems that read one.
  """
  g = config.generate
  if not g.source_image:
    return None
  needs_parsing = any(k.endswith("_parsing") for k in pipe.keys)
  if needs_parsing and not g.source_parsing:
    raise ValueError(f"config.generate.source_image needs config.generate.source_parsing too: {config.model} "
                     "reads a human-parsing map of the source (a LIP PNG from a parser such as SCHP)")
  if bool(g.target_keypoints) == bool(g.target_image):
    raise ValueError("config.generate.source_image needs a target pose: config.generate.target_keypoints or "
                     "config.generate.target_image (a photo; its keypoints are found with OpenPose), not both")
  estimator = pose_estimator(config) if (g.target_image or not g.source_keypoints) else None
  if g.target_image and estimator is None:
    raise ValueError("config.generate.target_image needs OpenPose weights to find its keypoints: set "
                     "config.generate.pose_estimator_path or config.eval.pose_estimator_path (body_pose_model.pth "
                     "or pose_estimator.h5), or give config.generate.target_keypoints instead")
  size = pipe.image_size
  pixels = _read_photo(g.source_image, "config.generate.source_image")
  labels = None
  if g.source_parsing:
    try:
      labels = image_io.read_label_map(g.source_parsing, parsing_lib.num_classes(g.parsing_labels),
                                       [pixels.shape[:2]], g.parsing_labels)
    except bad_input.BadInput as e:
      raise ValueError(f"config.generate.source_parsing={g.source_parsing!r} (the parsing map of "
                       f"{g.source_image}): {e}") from e
  person = pipe.person(pixels, labels, labels=g.parsing_labels, name=g.source_image)
  image = visualize.to_uint8(person.image)

  target_image = None
  if g.target_image:
    target_pixels = _read_photo(g.target_image, "config.generate.target_image")
    target_image = letterbox.Letterbox.fit(target_pixels.shape[:2], size).image(target_pixels)
    target = np.asarray(estimator.keypoints(target_image), np.int32)
    logging.info("Target pose from %s: OpenPose found %d of 18 joints", g.target_image, kp.is_present(target).sum())
  else:
    frame = tuple(g.target_keypoints_size) or size
    target = place_target_pose(parse_keypoints_text(g.target_keypoints), frame, size)
  if g.source_keypoints:
    source = pipe.keypoints(parse_keypoints_text(g.source_keypoints, "config.generate.source_keypoints"), person.box,
                            "config.generate.source_keypoints")
  elif estimator is not None:
    source = np.asarray(estimator.keypoints(image), np.int32)
    logging.info("Source pose of %s: OpenPose found %d of 18 joints", g.source_image, kp.is_present(source).sum())
  else:
    source = np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32)
    if "source_pose" in pipe.keys:
      logging.warning("%s reads a source pose, and %s has none: give config.generate.source_keypoints or OpenPose "
                      "weights (config.generate.pose_estimator_path); generating with an empty one",
                      config.model, g.source_image)
  batch = {**pipe.inputs(person, pipe.heatmaps(target), pipe.heatmaps(source)), "source_keypoints": source[None],
           "target_keypoints": target[None]}
  # The system's per-pair host inputs (Deformable GAN's part warps, SPT's), as its data pipeline makes them.
  extra = type(pipe.system).host_inputs(config)
  if extra is not None:
    batch.update({k: np.asarray(v)[None] for k, v in extra({k: v[0] for k, v in batch.items()}).items()})
  return {**batch, "source_image_u8": image, "target_image_u8": target_image}


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
    source_u8, target_u8 = custom["source_image_u8"], custom["target_image_u8"]
    row = [source_u8, visualize.pose_image(custom["source_keypoints"][0], h, w, background=source_u8 // 3),
           visualize.pose_image(custom["target_keypoints"][0], h, w), generated]
    titles = ["source", "src pose", "tgt pose", system.result_title]
    if target_u8 is not None:
      row.insert(2, target_u8)
      titles.insert(2, "tgt photo")
    strip = visualize.grid([row], column_titles=titles)
    outputs["custom"] = visualize.save_png(os.path.join(out_dir, "custom_pose_transfer.png"), strip)
    visualize.save_png(os.path.join(out_dir, "custom_generated.png"), generated)
    # The keypoints used, in the model's frame: reusable as target_keypoints / source_keypoints.
    outputs["custom_keypoints"] = os.path.join(out_dir, "custom_keypoints.json")
    with open(outputs["custom_keypoints"], "w") as f:
      json.dump({"image_size": list(config.data.image_size), "source": custom["source_keypoints"][0].tolist(),
                 "target": custom["target_keypoints"][0].tolist()}, f)
    logging.info("Wrote %s and %s", outputs["custom"], outputs["custom_keypoints"])
    return outputs

  source = sources.pair_source(config.data.name, config.generate.split, config.data.data_dir or None)
  if not len(source):
    raise ValueError(f"dataset {source.name} split {source.split!r} holds no pairs to generate from "
                     "(config.generate.split); rebuild the dataset or choose another split")
  transform = type(system).transform(config, source)
  num = config.generate.num_pairs or len(source)
  indices = pipeline.spread_indices(len(source), num)
  strips = pose_transfer_pairs(pipe, source, transform, out_dir, indices=indices,
                               batch_size=config.generate.batch_size)
  overview = [[e["source_image"], visualize.pose_image(e["target_keypoints"], *g.shape[:2]), g, e["target_image"]]
              for e, g in strips[:16]]
  outputs["pose_transfer"] = visualize.save_png(
      os.path.join(out_dir, "pose_transfer.png"),
      visualize.grid(overview, column_titles=["source", "tgt pose", system.result_title, "target"]))
  logging.info("Wrote %d pose transfers under %s and %s", len(strips), out_dir, outputs["pose_transfer"])
  outputs.update(system.generation_pictures(pipe, source, transform, out_dir))
  return outputs
