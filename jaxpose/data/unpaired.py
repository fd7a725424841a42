"""Training pairs without pairs: a source image with the pose of ANOTHER image.

Supervised systems learn from the datasets' own pairs (the same person in two
poses, `pairing='dataset'`). Unsupervised ones (SPT) never see a target image
of their source person: their example is a source image and a target pose
taken from another image. `with_pairing` rebuilds a `PairSource`'s pairs:

  'dataset'        the dataset's pairs, unchanged;
  'unpaired'       every image the dataset pairs (all have the four torso
                   joints) as a source, each with `per_image` target images
                   drawn at random (seeded) from the others, any person;
  'pseudo_labels'  every such image with its `top_k` pseudo-label partners
                   (`jaxpose.data.pseudo_labels`): the people whose parsing,
                   in their own different pose, best fits the source's parts.

An example still holds the target image and parsing (`PairSource.__getitem__`
reads both records); an unsupervised system must read only the target's pose
(and, with pseudo labels, its parsing map, which IS the pseudo label).
Evaluation always uses the dataset's pairs, whose targets are the truth.
"""

from __future__ import annotations

import dataclasses

from absl import logging
import numpy as np

from jaxpose.data import pseudo_labels

PAIRINGS = ("dataset", "unpaired", "pseudo_labels")


def paired_images(source) -> np.ndarray:
  """The image indices a source's pairs use (sorted, unique)."""
  return np.unique(np.asarray(source.pairs).reshape(-1))


def random_partner_pairs(images: np.ndarray, per_image: int, seed: int) -> np.ndarray:
  """Each of `images` with `per_image` distinct partners drawn uniformly from the others -> (P, 2) int64."""
  images = np.asarray(images, np.int64)
  if len(images) < 2:
    raise ValueError(f"unpaired examples need at least 2 images, got {len(images)}")
  per_image = min(int(per_image), len(images) - 1)
  if per_image < 1:
    raise ValueError(f"per_image must be >= 1, got {per_image}")
  rng = np.random.default_rng(seed)
  rows = []
  for i, image in enumerate(images):
    # Draw among the others: positions 0..n-2, shifted past i.
    picks = rng.choice(len(images) - 1, size=per_image, replace=False)
    picks = picks + (picks >= i)
    rows.extend((image, images[p]) for p in picks)
  return np.asarray(rows, np.int64)


def pseudo_label_pairs(source, options: pseudo_labels.SearchOptions) -> np.ndarray:
  """(P, 2) (image, pseudo-label partner) pairs of a source, best partner first; images without one are dropped."""
  images, partners, _ = pseudo_labels.cached_search(source, options)
  rows = [(image, partner) for image, row in zip(images, partners) for partner in row if partner >= 0]
  if not rows:
    raise ValueError(f"{source.name} {source.split}: the pseudo-label search found no partner for any image "
                     "(lower min_pose_distance?)")
  return np.asarray(rows, np.int64)


def with_pairing(source, pairing: str, *, per_image: int = 1, seed: int = 0,
                 search: pseudo_labels.SearchOptions | None = None):
  """`source` with its pairs rebuilt by `pairing` (see the module docstring); a new `PairSource`."""
  if pairing not in PAIRINGS:
    raise ValueError(f"config.data.pairing must be one of {PAIRINGS}, got {pairing!r}")
  if pairing == "dataset":
    return source
  if pairing == "unpaired":
    pairs = random_partner_pairs(paired_images(source), per_image, seed)
  else:
    pairs = pseudo_label_pairs(source, search or pseudo_labels.SearchOptions())
  logging.info("%s %s: %d %s pairs (instead of the dataset's %d)", source.name, source.split, len(pairs), pairing,
               len(source.pairs))
  return dataclasses.replace(source, pairs=pairs, pairing=pairing)


def search_options(data_config) -> pseudo_labels.SearchOptions:
  """`config.data.pseudo_labels` (any subset of `SearchOptions`' fields) -> SearchOptions."""
  given = data_config.get("pseudo_labels", None)
  given = dict(given.to_dict() if hasattr(given, "to_dict") else (given or {}))
  fields = {f.name for f in dataclasses.fields(pseudo_labels.SearchOptions)}
  unknown = sorted(set(given) - fields)
  if unknown:
    raise ValueError(f"config.data.pseudo_labels has unknown fields {unknown}; known: {sorted(fields)}")
  return pseudo_labels.SearchOptions(**given)


def from_config(source, data_config, seed: int = 0):
  """The training source per `config.data.pairing` ('dataset' when unset)."""
  return with_pairing(source, data_config.get("pairing", "dataset"),
                      per_image=int(data_config.get("unpaired_per_image", 1)), seed=seed,
                      search=search_options(data_config))
