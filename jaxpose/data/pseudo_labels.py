"""SPT's pseudo labels: for each person, the parsing map of another person in another pose that fits best.

SPT (Song et al., CVPR 2019) trains its semantic generator H_S, which turns a
source parsing map into the parsing map of a target pose, without pairs of the
same person: for each source it searches the training set for a person in a
different pose whose parsing, once the source's body parts are moved into that
person's pose, matches best, and uses that parsing map (with its pose) as the
target (peers.md 4.5; the search was never released). jaxpose scores a
candidate c for a source s, both parsing maps S one-hot over the spt10 classes,
with Deformable GAN's ten part masks B_j and part affine maps f_j (from s's
pose to c's, `jaxpose.data.part_transforms`):

  d(s, c) = sum_j sum_pixels || B_j(c) * S_c - f_j(B_j(s) * S_s) ||^2

where f_j warps by nearest-neighbour sampling, zero outside the image. With
one-hot maps a pixel costs B_j(c) + W_j - 2 B_j(c) W_j [labels equal], W_j
being the warped source mask. Part 0's mask is all ones, so d includes a whole
image comparison after the torso's alignment; the head and limb parts refine
it.

Candidates: every other image whose pose is not near-identical to the source's
(the largest distance of a joint both have, after centring each pose on its
torso and dividing by its torso size, at least `min_pose_distance`), narrowed to the
`num_candidates` whose class-area histograms (the fraction of pixels per class:
"similar clothing") are closest in L1; the `top_k` of those with the smallest
d are the pseudo labels.

The part fits here are ORDINARY least squares (closed form, batched), where
the generator's warps use scikit-image's total least squares; both are exact for
the limb rectangles and differ slightly for the body and head fits, which here
only rank candidates.

Everything after reading the maps runs in JAX, a chunk of sources at a time
(`search`); `cached_search` reads a `PairSource`'s images once, runs the search
with a progress bar and keeps the result in a .npz next to the built dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Sequence

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from jaxpose.data import keypoints as keypoints_lib
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import part_transforms as pt

NUM_PARTS = pt.NUM_PARTS
_LABEL_BITS = 4  # spt10 labels < 16; the ten part-mask bits sit above them
_K = keypoints_lib.KEYPOINT_INDEX
_BODY = np.array([_K["right_hip"], _K["left_hip"], _K["left_shoulder"], _K["right_shoulder"]])
_HEAD = np.array([_K["nose"], _K["right_eye"], _K["left_eye"], _K["right_ear"], _K["left_ear"]])
_SHOULDERS = np.array([_K["left_shoulder"], _K["right_shoulder"]])
_LIMB_FROM = np.array([r[0] for r in pt._LIMBS])  # pylint: disable=protected-access
_LIMB_TO = np.array([r[1] for r in pt._LIMBS])  # pylint: disable=protected-access
_LIMB_MIRROR_FROM = np.array([r[2] for r in pt._LIMBS])  # pylint: disable=protected-access
_LIMB_MIRROR_TO = np.array([r[3] for r in pt._LIMBS])  # pylint: disable=protected-access
_LIMB_INC = np.array([r[4] for r in pt._LIMBS], np.float32)  # pylint: disable=protected-access


@dataclasses.dataclass(frozen=True)
class SearchOptions:
  """How pseudo labels are searched.

  Attributes:
    top_k: pseudo labels kept per source (best first).
    num_candidates: candidates per source scored exactly (the rest are
      dropped by the class-histogram prefilter).
    min_pose_distance: candidates whose torso-normalised pose is closer than
      this to the source's are excluded (near-identical poses).
    downsample: the search runs on every `downsample`-th pixel (1 = full size).
    label_set: the parsing label set compared ('spt10').
    chunk: sources per JAX batch.
  """
  top_k: int = 1
  num_candidates: int = 64
  min_pose_distance: float = 0.2
  downsample: int = 1
  label_set: str = "spt10"
  chunk: int = 32

  def validate(self) -> None:
    for name in ("top_k", "num_candidates", "downsample", "chunk"):
      if getattr(self, name) < 1:
        raise ValueError(f"pseudo-label option {name} must be >= 1, got {getattr(self, name)}")
    if self.num_candidates < self.top_k:
      raise ValueError(f"num_candidates ({self.num_candidates}) must be >= top_k ({self.top_k})")
    parsing_lib.num_classes(self.label_set)


# ----------------------------------------------------------------------------
# Host preparation


def pack_maps(labels: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
  """(N, h, w) labels (< 16) and (N, 18, 2) keypoints at that size -> (N, h, w) int32 label | part-mask bits << 4."""
  labels = np.asarray(labels)
  if labels.size and labels.max() >= 2 ** _LABEL_BITS:
    raise ValueError(f"labels must be < {2 ** _LABEL_BITS}, got {labels.max()}")
  packed = labels.astype(np.int32)
  for n, kp in enumerate(keypoints):
    masks = pt.part_masks(kp, labels.shape[1:]).astype(np.int32)
    packed[n] |= np.sum(masks << (_LABEL_BITS + np.arange(NUM_PARTS))[:, None, None], axis=0)
  return packed


def class_histograms(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """(N, h, w) labels -> (N, num_classes) pixel fractions."""
  labels = np.asarray(labels).reshape(len(labels), -1)
  counts = np.stack([np.sum(labels == k, axis=1) for k in range(num_classes)], axis=1)
  return (counts / labels.shape[1]).astype(np.float32)


# ----------------------------------------------------------------------------
# JAX: fits, pose distances, distances


def _xy(keypoints: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(..., 18, 2) (y, x) -> ((..., 18, 2) (x, y) float32, (..., 18) present)."""
  present = jnp.all(keypoints >= 0, axis=-1)
  return keypoints[..., ::-1].astype(jnp.float32), present


def _torso_size(points: jax.Array) -> jax.Array:
  right = jnp.sum(jnp.square(points[..., _K["right_hip"], :] - points[..., _K["right_shoulder"], :]), -1)
  left = jnp.sum(jnp.square(points[..., _K["left_hip"], :] - points[..., _K["left_shoulder"], :]), -1)
  return jnp.maximum(jnp.sqrt((right + left) / 2), 1e-6)


def _rectangles(start, end, torso, inc_to):
  """`part_transforms.limb_rectangles` in jnp: (..., 8, 2) limbs -> (..., 8, 4, 2)."""
  start = start + (start - end) * 0.1
  end = end + (end - start) * inc_to[:, None]
  along = start - end
  normal = jnp.stack([-along[..., 1], along[..., 0]], axis=-1)
  length = jnp.linalg.norm(normal, axis=-1, keepdims=True)
  offset = torso[..., None, None] * 0.2 * normal / jnp.where(length == 0, 1.0, length)
  offset = jnp.where(length == 0, 1.0, offset)
  return jnp.stack([start + offset, start - offset, end - offset, end + offset], axis=-2)


def fit_points(source_keypoints: jax.Array, target_keypoints: jax.Array):
  """The ten parts' point correspondences (as `part_transforms.affine_transforms` builds them).

  (18, 2) (y, x) keypoints of a source and a target (both with their four
  torso joints) -> (target points (10, 7, 2), source points (10, 7, 2), valid
  (10, 7)), (x, y).
  """
  src_pts, src_present = _xy(source_keypoints)
  tgt_pts, tgt_present = _xy(target_keypoints)
  tgt = jnp.zeros((NUM_PARTS, 7, 2))
  src = jnp.zeros((NUM_PARTS, 7, 2))
  valid = jnp.zeros((NUM_PARTS, 7), bool)
  tgt = tgt.at[0, :4].set(tgt_pts[_BODY])
  src = src.at[0, :4].set(src_pts[_BODY])
  valid = valid.at[0, :4].set(True)
  common = src_present[_HEAD] & tgt_present[_HEAD]
  head_joints = np.concatenate([_HEAD, _SHOULDERS])
  tgt = tgt.at[1].set(tgt_pts[head_joints])
  src = src.at[1].set(src_pts[head_joints])
  valid = valid.at[1].set(jnp.concatenate([common, jnp.full((2,), jnp.any(common))]))
  own = src_present[_LIMB_FROM] & src_present[_LIMB_TO]
  mirrored = src_present[_LIMB_MIRROR_FROM] & src_present[_LIMB_MIRROR_TO]
  s_from = jnp.where(own[:, None], src_pts[_LIMB_FROM], src_pts[_LIMB_MIRROR_FROM])
  s_to = jnp.where(own[:, None], src_pts[_LIMB_TO], src_pts[_LIMB_MIRROR_TO])
  inc = jnp.asarray(_LIMB_INC)
  tgt = tgt.at[2:, :4].set(_rectangles(tgt_pts[_LIMB_FROM], tgt_pts[_LIMB_TO], _torso_size(tgt_pts), inc))
  src = src.at[2:, :4].set(_rectangles(s_from, s_to, _torso_size(src_pts), inc))
  limb_ok = tgt_present[_LIMB_FROM] & tgt_present[_LIMB_TO] & (own | mirrored)
  valid = valid.at[2:, :4].set(jnp.broadcast_to(limb_ok[:, None], (8, 4)))
  return tgt, src, valid


def least_squares_affine(src: jax.Array, dst: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Ordinary least-squares affine maps src -> dst over the valid points.

  (P, N, 2) (x, y) points and (P, N) valid -> (matrices (P, 2, 3) with dst ~
  M @ [x, y, 1], ok (P,)). Points are centred and scaled first (well
  conditioned); ok is False with fewer than 3 points, collinear points or a
  near-singular linear part.
  """
  w = valid.astype(jnp.float32)[..., None]
  count = jnp.maximum(jnp.sum(w, axis=1), 1.0)
  centre = jnp.sum(src * w, axis=1) / count
  scale = jnp.sqrt(jnp.sum(jnp.square(src - centre[:, None]) * w, axis=(1, 2)) / (2 * count[:, 0]))
  scale = jnp.where(scale > 0, scale, 1.0)
  x = (src - centre[:, None]) / scale[:, None, None]
  design = jnp.concatenate([x, jnp.ones(x.shape[:-1] + (1,))], axis=-1) * w  # (P, N, 3)
  normal = jnp.einsum("pni,pnj->pij", design, design)
  rhs = jnp.einsum("pni,pnj->pij", design, dst * w)  # (P, 3, 2)
  det = jnp.linalg.det(normal)
  ok = (jnp.sum(valid, axis=1) >= 3) & (jnp.abs(det) > 1e-6 * jnp.maximum(count[:, 0], 1.0) ** 3)
  solution = jnp.linalg.solve(jnp.where(ok[:, None, None], normal, jnp.eye(3)), rhs)  # (P, 3, 2)
  linear = solution[:, :2].transpose(0, 2, 1) / scale[:, None, None]  # dst = linear @ xy + shift
  shift = solution[:, 2] - jnp.einsum("pij,pj->pi", linear, centre)
  linear_det = linear[:, 0, 0] * linear[:, 1, 1] - linear[:, 0, 1] * linear[:, 1, 0]
  ok &= jnp.abs(linear_det) > 1e-6
  return jnp.concatenate([linear, shift[..., None]], axis=-1), ok


def pose_distance(keypoints_a: jax.Array, keypoints_b: jax.Array) -> jax.Array:
  """The largest distance of a joint present in both, each pose centred on its torso and divided by its size.

  Two poses are near-identical when EVERY shared joint is close: one raised
  arm makes two poses different however still the rest stands. (..., 18, 2) (y, x) ->
  (...); inf when no joint is shared.
  """
  pa, present_a = _xy(keypoints_a)
  pb, present_b = _xy(keypoints_b)
  normalise = lambda p: (p - jnp.mean(p[..., _BODY, :], axis=-2, keepdims=True)) / _torso_size(p)[..., None, None]
  both = present_a & present_b
  distance = jnp.linalg.norm(normalise(pa) - normalise(pb), axis=-1)
  return jnp.where(jnp.any(both, axis=-1), jnp.max(jnp.where(both, distance, 0.0), axis=-1), jnp.inf)


def pair_distance(source_packed: jax.Array, source_keypoints: jax.Array, candidate_packed: jax.Array,
                  candidate_keypoints: jax.Array) -> jax.Array:
  """d(source, candidate) of the module docstring for one pair: packed (h, w) maps, (18, 2) keypoints -> scalar."""
  h, w = source_packed.shape
  cand_pts, src_pts, valid = fit_points(source_keypoints, candidate_keypoints)
  matrices, ok = least_squares_affine(cand_pts, src_pts, valid)  # candidate pixel -> source pixel
  ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
  sx = jnp.round(matrices[:, 0, 0, None, None] * xs + matrices[:, 0, 1, None, None] * ys + matrices[:, 0, 2, None, None])
  sy = jnp.round(matrices[:, 1, 0, None, None] * xs + matrices[:, 1, 1, None, None] * ys + matrices[:, 1, 2, None, None])
  inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h) & ok[:, None, None]
  index = jnp.clip(sy, 0, h - 1).astype(jnp.int32) * w + jnp.clip(sx, 0, w - 1).astype(jnp.int32)
  sampled = jnp.where(inside, source_packed.reshape(-1)[index], 0)  # (10, h, w)
  bits = (_LABEL_BITS + jnp.arange(NUM_PARTS))[:, None, None]
  warped_mask = (sampled >> bits) & 1
  candidate_mask = (candidate_packed[None] >> bits) & 1
  label_mask = 2 ** _LABEL_BITS - 1
  same = (sampled & label_mask) == (candidate_packed[None] & label_mask)
  cost = candidate_mask + warped_mask - 2 * candidate_mask * warped_mask * same
  return jnp.sum(cost).astype(jnp.float32)


@jax.jit
def _prefilter(source_keypoints, source_histograms, all_keypoints, all_histograms, source_indices,
               min_pose_distance):
  """(S,) sources -> (S, N) prefilter scores: histogram L1, inf where excluded (itself, near-identical poses)."""
  poses = jax.vmap(lambda k: pose_distance(k[None], all_keypoints))(source_keypoints)  # (S, N)
  scores = jnp.sum(jnp.abs(source_histograms[:, None] - all_histograms[None]), axis=-1)
  excluded = (poses < min_pose_distance) | (jnp.arange(all_keypoints.shape[0])[None] == source_indices[:, None])
  return jnp.where(excluded, jnp.inf, scores)


@jax.jit
def _score(source_packed, source_keypoints, candidate_packed, candidate_keypoints):
  """(S, h, w), (S, 18, 2), (S, M, h, w), (S, M, 18, 2) -> (S, M) distances."""
  per_source = jax.vmap(pair_distance, in_axes=(None, None, 0, 0))
  return jax.vmap(per_source)(source_packed, source_keypoints, candidate_packed, candidate_keypoints)


def search(labels: np.ndarray, keypoints: np.ndarray, options: SearchOptions = SearchOptions(),
           progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """The pseudo labels of every image among `labels`.

  Args:
    labels: (N, h, w) integer parsing maps of `options.label_set`, already at
      the search size.
    keypoints: (N, 18, 2) (y, x) at that size, -1 missing; every image needs
      its four torso joints.
    options: `SearchOptions`.
    progress: show a progress bar over the chunks.

  Returns:
    (indices (N, top_k) int64, distances (N, top_k) float32), best first;
    index -1 and distance inf where fewer than top_k candidates remain.
  """
  options.validate()
  labels = np.asarray(labels)
  keypoints = np.asarray(keypoints, np.float32)
  n = len(labels)
  if keypoints.shape != (n, keypoints_lib.NUM_KEYPOINTS, 2):
    raise ValueError(f"keypoints must be ({n}, 18, 2), got {keypoints.shape}")
  missing_torso = [i for i in range(n) if not keypoints_lib.has_torso(keypoints[i])]
  if missing_torso:
    raise ValueError(f"images {missing_torso[:10]} lack a torso joint; the part fits need all four")
  packed = jnp.asarray(pack_maps(labels, keypoints))
  histograms = jnp.asarray(class_histograms(labels, parsing_lib.num_classes(options.label_set)))
  kp = jnp.asarray(keypoints)
  m = min(options.num_candidates, n)
  k = min(options.top_k, m)
  out_index = np.full((n, options.top_k), -1, np.int64)
  out_distance = np.full((n, options.top_k), np.inf, np.float32)
  starts = range(0, n, options.chunk)
  for start in tqdm.tqdm(starts, desc="pseudo-label search", unit="chunk", disable=not progress):
    rows = np.arange(start, start + options.chunk)
    valid = rows < n
    rows = np.minimum(rows, n - 1)  # pad the last chunk (one shape, one compilation)
    scores = _prefilter(kp[rows], histograms[rows], kp, histograms, jnp.asarray(rows),
                        jnp.float32(options.min_pose_distance))
    neg_scores, candidates = jax.lax.top_k(-scores, m)  # (S, M)
    distances = _score(packed[rows], kp[rows], packed[candidates], kp[candidates])
    distances = jnp.where(jnp.isfinite(neg_scores), distances, jnp.inf)
    neg, order = jax.lax.top_k(-distances, k)
    best = np.asarray(jnp.take_along_axis(candidates, order, axis=1))
    best_distance = -np.asarray(neg)
    best = np.where(np.isfinite(best_distance), best, -1)
    out_index[rows[valid], :k] = best[valid]
    out_distance[rows[valid], :k] = best_distance[valid]
  return out_index, out_distance


# ----------------------------------------------------------------------------
# A dataset's pseudo labels, cached next to it


def read_maps(source, indices: Sequence[int], options: SearchOptions, progress: bool = True
              ) -> tuple[np.ndarray, np.ndarray]:
  """Parsing maps (merged to the label set, subsampled) and keypoints (scaled) of `source.images[indices]`."""
  step = options.downsample
  labels, keypoints = [], []
  for i in tqdm.tqdm(indices, desc=f"reading {source.name} {source.split}", unit="image", disable=not progress):
    record = source.images[int(i)]
    merged = parsing_lib.merge(np.asarray(record["parsing"])[..., 0], source.parsing_labels, options.label_set)
    labels.append(merged[::step, ::step])
    kp = np.asarray(record["keypoints"], np.int32)
    keypoints.append(np.where(kp >= 0, kp // step, -1))
  return np.stack(labels), np.stack(keypoints)


def cache_path(source, options: SearchOptions, num_images: int) -> str:
  """`<dataset directory>/pseudo_labels_<split>_<hash>.npz`; the hash covers the options and the image count."""
  key = json.dumps({"options": dataclasses.asdict(options), "images": num_images, "name": source.name},
                   sort_keys=True)
  digest = hashlib.sha256(key.encode()).hexdigest()[:10]
  return os.path.join(source.directory, f"pseudo_labels_{source.split}_{digest}.npz")


def cached_search(source, options: SearchOptions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The pseudo labels of a `PairSource`'s paired images, computed once and cached.

  The images searched are those the dataset pairs that have their four torso
  joints (the part fits need them; Market's pairs include a few without).
  Returns (images (N,), partners (N, top_k) image indices, -1 where none,
  distances (N, top_k)).
  """
  if not source.has_parsing:
    raise ValueError(f"{source.name} has no parsing maps: pseudo labels need them (choose a config with parsing)")
  images = np.unique(np.asarray(source.pairs).reshape(-1))
  if not len(images):
    raise ValueError(f"{source.name} {source.split} pairs no images")
  path = cache_path(source, options, len(images))
  if os.path.exists(path):
    with np.load(path) as cached:
      if "paired_images" in cached and np.array_equal(cached["paired_images"], images):
        logging.info("Pseudo labels of %s %s from %s", source.name, source.split, path)
        return cached["images"], cached["partners"], cached["distances"]
  logging.info("Searching pseudo labels for %d %s images of %s (once; cached in %s)", len(images), source.split,
               source.name, path)
  paired = images
  labels, keypoints = read_maps(source, images, options)
  torso = np.array([keypoints_lib.has_torso(k) for k in keypoints], bool)
  if not torso.any():
    raise ValueError(f"no {source.name} {source.split} image has its four torso joints")
  if not torso.all():
    logging.info("Pseudo labels: %d of %d images lack a torso joint and are left out", int((~torso).sum()),
                 len(images))
  images, labels, keypoints = images[torso], labels[torso], keypoints[torso]
  index, distances = search(labels, keypoints, options, progress=True)
  partners = np.where(index >= 0, images[np.maximum(index, 0)], -1)
  tmp = path + ".tmp.npz"
  np.savez(tmp, paired_images=paired, images=images, partners=partners, distances=distances,
           options=json.dumps(dataclasses.asdict(options)))
  os.replace(tmp, path)
  logging.info("Wrote %s", path)
  return images, partners, distances
