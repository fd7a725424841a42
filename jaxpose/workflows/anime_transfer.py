"""The users' central workflow: from real people to anime characters, and back.

  python -m jaxpose.main --config configs/anime_transfer.py --workdir runs/anime_transfer

Take an ADGAN trained on real people (by default the shipped `synthetic-adgan`
base, trained on the synthetic people), fine-tune it on a handful of anime
pictures (every ordered pair within a character), watch the D_PB, D_PP,
generator and CX losses as it trains, then transfer pose and clothes between
real and anime people in every direction, and check that the fine-tuned model
still works on real people. Steps, each skipped when its output is already in
--workdir (re-running the command resumes):

  1. characters   `config.anime.manual_dir`, or synthetic anime characters
                  (`jaxpose.data.synthetic_anime`: 14 pictures of 4 characters, the
                  last held out) written to <workdir>/anime_characters, with a
                  contact sheet anime_characters.png;
  2. dataset      the real `anime_pose` builder (`config.data.name`) builds them
                  into `config.data.data_dir` (default <workdir>/tfds);
  3. before       the starting model on the anime test pairs and on held-out real
                  people (`config.real`);
  4. fine-tune    the training engine from `config.init_from` (all three networks,
                  fresh optimizers): loss_curves.png, samples/, checkpoints/;
  5. after        the same measurements with the fine-tuned model;
  6. figure       transfer.png: rows real->real, real->anime, anime->real,
                  anime->anime; columns source, target pose, pose transfer, a donor
                  of the other domain and the person with the donor's upper
                  clothes, lower garment and hair.

metrics.json holds '<before|after>/<anime|real>/<metric>' (ssim, lpips, psnr,
l1, mask_ssim, ssim_source_baseline, colour_error_{upper,lower,hair}, ...),
'train_steps' and the pair counts.
"""

from __future__ import annotations

import json
import os
from typing import Any

from absl import logging
import ml_collections
import numpy as np
from PIL import Image, ImageDraw

from jaxpose import evaluation
from jaxpose import inference
from jaxpose import sharding as sharding_lib
from jaxpose import systems
from jaxpose import train
from jaxpose import visualize
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import sources
from jaxpose.data import synthetic_anime

CHARACTERS_DIR = "anime_characters"
BEFORE_FILE = "metrics_before.json"
FIGURE_FILE = "transfer.png"
DIRECTIONS = (("real", "real"), ("real", "anime"), ("anime", "real"), ("anime", "anime"))
# The donor's components each swap column takes (ADGAN's 8-class names).
SWAPS = (("upper", ("upper_clothes",)), ("lower", ("pants", "skirt")), ("hair", ("hair",)))
FIGURE_SCALE = 3


def resolved_config(config: ml_collections.ConfigDict, workdir: str) -> ml_collections.ConfigDict:
  """The config with the workflow's defaults filled in: where the characters and their dataset go."""
  config = config.copy_and_resolve_references()
  if not config.anime.manual_dir:
    config.anime.manual_dir = os.path.join(workdir, CHARACTERS_DIR)
  if not config.data.data_dir:
    config.data.data_dir = os.path.join(workdir, "tfds")
  return config


def prepare_characters(config, workdir: str) -> dict:
  """Writes the synthetic characters unless the folder already holds characters; returns a summary."""
  root = config.anime.manual_dir
  if os.path.isdir(root) and os.listdir(root):
    logging.info("Anime characters: %s (already there)", root)
    return {"manual_dir": root}
  characters = synthetic_anime.write_anime_characters(root, seed=config.anime.seed,
                                                        image_size=tuple(config.anime.image_size))
  sheet = synthetic_anime.save_contact_sheet(root, os.path.join(workdir, "anime_characters.png"))
  summary = synthetic_anime.summary(characters)
  logging.info("Anime characters: wrote %s (train %s, test %s); contact sheet %s", root,
               summary["train"], summary["test"], sheet)
  return {"manual_dir": root, **summary}


def learned_pose_detector(config):
  """The keypoint detector jaxpose trained itself, reported as `pckh_learned`; None skips that metric.

  This is where the trained pose detector plugs in (a `jaxpose.metrics.pckh.KeypointDetector`:
  (B, H, W, 3) uint8 -> (B, 18, 2) (y, x)); every measurement of the workflow passes it on.
  """
  del config
  return None


def measure(config, system: systems.System, nets, test_sets: dict, mesh, detector, generate_fn) -> dict:
  """{domain: metrics} of one model on each test set ({domain: (source, transform, num_pairs)}).

  generate_fn: `evaluation.jitted_generate` of the architecture, compiled once for every measurement.
  """
  out = {}
  for domain, (source, transform, num_pairs) in test_sets.items():
    out[domain] = evaluation.evaluate_networks(config, system, nets, source, transform, mesh, num_pairs=num_pairs,
                                               learned_pose_detector=detector, generate_fn=generate_fn)
  return out


def _flat(stage: str, results: dict) -> dict:
  return {f"{stage}/{domain}/{name}": value for domain, metrics in results.items() for name, value in metrics.items()}


# ----------------------------------------------------------------------------
# The transfer figure


def _people(source, count: int, labels: str) -> list[dict]:
  """`count` pairs spread over `source`: the source person and the target pose, parsing as adgan8 labels."""
  rows = []
  for index in np.linspace(0, len(source) - 1, count).round().astype(int):
    pair = source[int(index)]
    rows.append({"image": pair["source_image"], "parsing": parsing_lib.merge(pair["source_parsing"], labels, "adgan8"),
                 "target_keypoints": pair["target_keypoints"], "name": pair["source_name"]})
  return rows


def _labelled(image: np.ndarray, text: str) -> np.ndarray:
  big = np.repeat(np.repeat(image, FIGURE_SCALE, axis=0), FIGURE_SCALE, axis=1)
  if not text:
    return big
  canvas = Image.fromarray(big)
  draw = ImageDraw.Draw(canvas)
  draw.rectangle([0, 0, 7 * len(text) + 3, 12], fill=(255, 255, 255))
  draw.text((2, 1), text, fill=(0, 0, 0))
  return np.asarray(canvas)


def transfer_figure(pipe: inference.Pipeline, people: dict[str, list[dict]], rows_per_direction: int) -> np.ndarray:
  """Rows: every (source domain, pose domain) of DIRECTIONS, `rows_per_direction` each.

  people: {domain: rows of `_people`} (at least 2 * rows_per_direction each).
  Columns: source | target pose | pose transfer | donor (the other domain) |
  with the donor's upper clothes | lower garment | hair.
  """
  h, w = pipe.image_size
  rows = []
  for source_domain, pose_domain in DIRECTIONS:
    donor_domain = "anime" if source_domain == "real" else "real"
    for r in range(rows_per_direction):
      person = people[source_domain][r]
      # Same domain: the pair's own target pose; across: another picture's pose of that domain.
      pose_from = person if pose_domain == source_domain else people[pose_domain][rows_per_direction + r]
      keypoints = pose_from["target_keypoints"]
      donor = people[donor_domain][(r + 1) % len(people[donor_domain])]
      transfer = pipe.transfer(person["image"], person["parsing"], keypoints, labels="adgan8")
      swaps = [pipe.swap(person["image"], person["parsing"], keypoints,
                         {c: (donor["image"], donor["parsing"]) for c in components}, labels="adgan8")
               for _, components in SWAPS]
      label = f"{source_domain} -> {pose_domain}" if r == 0 else ""
      rows.append([_labelled(person["image"], label), _labelled(visualize.pose_image(keypoints, h, w), ""),
                   _labelled(transfer, "")] + [_labelled(donor["image"], "")] + [_labelled(s, "") for s in swaps])
  titles = ["source", "target pose", "transfer", "donor", "+ upper", "+ lower", "+ hair"]
  return visualize.grid(rows, column_titles=titles, min_height=1)


# ----------------------------------------------------------------------------
# The workflow


def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs the workflow (module docstring) into `workdir`; returns metrics.json's content."""
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  config = resolved_config(config, workdir)
  # Before the first compilation: the measurements' compiled functions are cached too (a re-run skips them).
  logging.info("XLA compilation cache: %s", train.enable_compilation_cache(config) or "off")
  characters = prepare_characters(config, workdir)
  sources.build(config.data.name, config.data.data_dir, config.anime.manual_dir)

  system_cls = systems.get(config.model)
  mesh = sharding_lib.make_mesh()
  anime_test = sources.pair_source(config.data.name, "test", config.data.data_dir)
  real_test = sources.pair_source(config.real.name, "test", config.real.data_dir or None)
  test_sets = {"anime": (anime_test, system_cls.transform(config, anime_test), 0),
               "real": (real_test, system_cls.transform(config, real_test), config.real.num_pairs)}
  detector = learned_pose_detector(config)

  start = inference.load(config.init_from, config=config)
  logging.info("Before fine-tuning: %s", start)
  # Fine-tuning keeps the architecture: one compiled generation measures both models.
  generate_fn = evaluation.jitted_generate(start.system, mesh)
  before_path = os.path.join(workdir, BEFORE_FILE)
  before = None
  if os.path.exists(before_path):
    with open(before_path) as f:
      cached = json.load(f)
    before = cached["metrics"] if cached.get("init_from") == config.init_from else None
  if before is None:
    before = measure(config, start.system, start.nets, test_sets, mesh, detector, generate_fn)
    with open(before_path, "w") as f:
      json.dump({"init_from": config.init_from, "metrics": before}, f, indent=2)

  train.train_and_evaluate(config, workdir)  # the fine-tuning: the engine, from config.init_from
  tuned = inference.load(workdir)
  after = measure(config, start.system, tuned.nets, test_sets, mesh, detector, generate_fn)

  count = 2 * config.figure.rows_per_direction
  people = {"real": _people(real_test, count, real_test.parsing_labels),
            "anime": _people(anime_test, count, anime_test.parsing_labels)}
  figure = visualize.save_png(os.path.join(workdir, FIGURE_FILE),
                              transfer_figure(tuned, people, config.figure.rows_per_direction))
  logging.info("Wrote the transfer figure %s", figure)

  results: dict[str, Any] = {**_flat("before", before), **_flat("after", after)}
  results["train_steps"] = int(config.num_train_steps)
  results["init_from"] = config.init_from
  results["anime_characters"] = characters
  with open(os.path.join(workdir, "metrics.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  for domain in ("anime", "real"):
    logging.info("%s test: SSIM %.4f -> %.4f, LPIPS %.4f -> %.4f", domain, before[domain]["ssim"],
                 after[domain]["ssim"], before[domain].get("lpips", float("nan")),
                 after[domain].get("lpips", float("nan")))
  return results
