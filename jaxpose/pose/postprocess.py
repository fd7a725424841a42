"""From OpenPose's confidence maps and part affinity fields to people and to one person's 18 keypoints.

This is the post-processing of CMU's demo as Deformable GAN's and PATN's
`compute_coordinates.py` copied it (the function `compute_cordinates`), in
numpy, step for step, so that it returns the keypoints those scripts wrote,
quirks included. Inputs are the maps at the photo's resolution, already
averaged (or summed) over scales by jaxpose.pose.estimate.

1. Peaks (`find_peaks`): per part, the map is smoothed with
   `scipy.ndimage.gaussian_filter(sigma=3)`; a peak is a pixel >= its four
   neighbours (outside the map counts as 0) and > 0.1; its score is read from
   the unsmoothed map. Peaks are numbered in part order, then row-major.
2. Limbs (`connect_limbs`): for each of the 19 limbs (`LIMBS`, the scripts'
   `limbSeq`) and each pair of candidate peaks (A, B), 10 points are spaced
   from A to B with `np.linspace` and rounded half away from zero (the scripts
   are Python 2, whose `round` does that); the PAF (`PAF_CHANNELS`, from
   `mapIdx`) there is projected on the unit vector A->B. The pair is accepted
   when more than 80% of the projections exceed 0.05 and their mean plus
   min(0.5 * image height / |AB| - 1, 0) is positive. Accepted pairs are taken
   greedily by that score, each peak at most once, at most min(nA, nB).
   (A pair of coincident peaks divides by zero in the original and comes out
   NaN, i.e. rejected; it is rejected here without the warning.)
3. People (`group_people`): the scripts' 20-column rows (18 peak ids, total
   score, part count), merged limb by limb in `LIMBS` order; only the first 17
   limbs start new rows (the two ear-shoulder limbs never do); rows with
   fewer than 4 parts or a mean score (total / count) below 0.4 are dropped.
   When a limb touches more than two rows, the original raises an IndexError
   (its `subset_idx` has two slots) and stops; here the first two rows are
   used and the rest ignored.
4. One person (`single_person_keypoints`): the row with the highest total
   score (first on ties); (y, x) of each part as int, (-1, -1) for a part it
   lacks, all -1 when nobody is found.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

from jaxpose.data import keypoints as kp

# The scripts' `limbSeq` (1-based there): (part A, part B) per limb.
LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13),
         (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17))
# The scripts' `mapIdx` minus 19: the (x, y) PAF channels of each limb.
PAF_CHANNELS = ((12, 13), (20, 21), (14, 15), (16, 17), (22, 23), (24, 25), (0, 1), (2, 3), (4, 5), (6, 7),
                (8, 9), (10, 11), (28, 29), (30, 31), (34, 35), (32, 33), (36, 37), (18, 19), (26, 27))
NUM_ROW_COLUMNS = kp.NUM_KEYPOINTS + 2  # 18 peak ids, total score, part count
LIMBS_STARTING_PEOPLE = 17  # `k < 17`: the ear-shoulder limbs 17 and 18 only join existing rows


@dataclasses.dataclass(frozen=True)
class Thresholds:
  """The scripts' constants (CMU's demo config uses the same)."""
  peak: float = 0.1            # thre1
  paf: float = 0.05            # thre2
  smoothing_sigma: float = 3.0
  samples: int = 10            # mid_num
  sample_fraction: float = 0.8
  min_parts: int = 4
  min_mean_score: float = 0.4


@dataclasses.dataclass(frozen=True)
class People:
  """Everyone found in one image.

  Attributes:
    peaks: (N, 4) float64 rows (x, y, score, id), all parts' peaks numbered 0..N-1
      (the scripts' `candidate`).
    rows: (P, 20) float64: per person the peak id of each of the 18 parts (-1
      if absent), the total score, the part count (the scripts' `subset`).
  """
  peaks: np.ndarray
  rows: np.ndarray


def find_peaks(heatmaps: np.ndarray, thresholds: Thresholds = Thresholds()) -> list[np.ndarray]:
  """(H, W, >= 18) confidence maps -> per part an (n, 4) array of (x, y, score, id)."""
  heatmaps = np.asarray(heatmaps, np.float64)
  if heatmaps.ndim != 3 or heatmaps.shape[-1] < kp.NUM_KEYPOINTS:
    raise ValueError(f"expected (H, W, 19) confidence maps, got shape {heatmaps.shape}")
  peaks, next_id = [], 0
  for part in range(kp.NUM_KEYPOINTS):
    raw = heatmaps[:, :, part]
    smooth = ndimage.gaussian_filter(raw, sigma=thresholds.smoothing_sigma)
    neighbours = np.zeros((4,) + smooth.shape)
    neighbours[0, 1:, :] = smooth[:-1, :]
    neighbours[1, :-1, :] = smooth[1:, :]
    neighbours[2, :, 1:] = smooth[:, :-1]
    neighbours[3, :, :-1] = smooth[:, 1:]
    is_peak = np.all(smooth[None] >= neighbours, axis=0) & (smooth > thresholds.peak)
    ys, xs = np.nonzero(is_peak)
    ids = np.arange(next_id, next_id + len(ys))
    peaks.append(np.stack([xs, ys, raw[ys, xs], ids], axis=-1).astype(np.float64).reshape(-1, 4))
    next_id += len(ys)
  return peaks


def _round_half_away(values: np.ndarray) -> np.ndarray:
  """Python 2's round() for non-negative floats, exactly (floor + (fraction >= 0.5); no x + 0.5 rounding error)."""
  floor = np.floor(values)
  return (floor + (values - floor >= 0.5)).astype(np.int64)


def _limb_candidates(peaks_a: np.ndarray, peaks_b: np.ndarray, pafs: np.ndarray, channels: tuple[int, int],
                     image_height: int, thresholds: Thresholds) -> list[tuple[int, int, float]]:
  """Accepted (i, j, score) pairs in the scripts' loop order (i outer, j inner)."""
  n = thresholds.samples
  ax, ay = peaks_a[:, 0][:, None], peaks_a[:, 1][:, None]
  bx, by = peaks_b[:, 0][None, :], peaks_b[:, 1][None, :]
  dx, dy = bx - ax, by - ay                                  # (nA, nB), exact integers
  norm = np.sqrt(dx * dx + dy * dy)
  coincident = norm == 0
  safe = np.where(coincident, 1.0, norm)
  ux, uy = dx / safe, dy / safe
  # np.linspace(a, b, n): k * ((b - a) / (n - 1)) + a, the last point exactly b.
  k = np.arange(n, dtype=np.float64)
  xs = k * (dx / (n - 1))[..., None] + ax[..., None]
  ys = k * (dy / (n - 1))[..., None] + ay[..., None]
  xs[..., -1], ys[..., -1] = np.broadcast_to(bx, dx.shape), np.broadcast_to(by, dy.shape)
  rows, cols = _round_half_away(ys), _round_half_away(xs)
  projections = pafs[rows, cols, channels[0]] * ux[..., None] + pafs[rows, cols, channels[1]] * uy[..., None]
  total = np.zeros(dx.shape)
  for i in range(n):  # Python's sum(): left to right, from 0
    total = total + projections[..., i]
  with np.errstate(divide="ignore"):
    prior = np.minimum(0.5 * image_height / safe - 1, 0)
  score = total / n + prior
  above = np.sum(projections > thresholds.paf, axis=-1)
  accepted = (above > thresholds.sample_fraction * n) & (score > 0) & ~coincident
  return [(int(i), int(j), float(score[i, j])) for i, j in zip(*np.nonzero(accepted))]


def connect_limbs(peaks: list[np.ndarray], pafs: np.ndarray, image_height: int,
                  thresholds: Thresholds = Thresholds()) -> list[np.ndarray | None]:
  """Per limb an (m, 5) array of (id A, id B, score, i, j) connections, or None when A or B has no peak."""
  pafs = np.asarray(pafs, np.float64)
  if pafs.ndim != 3 or pafs.shape[-1] != 2 * len(LIMBS):
    raise ValueError(f"expected (H, W, 38) part affinity fields, got shape {pafs.shape}")
  connections = []
  for (part_a, part_b), channels in zip(LIMBS, PAF_CHANNELS):
    peaks_a, peaks_b = peaks[part_a], peaks[part_b]
    if not len(peaks_a) or not len(peaks_b):
      connections.append(None)
      continue
    candidates = _limb_candidates(peaks_a, peaks_b, pafs, channels, image_height, thresholds)
    candidates = sorted(candidates, key=lambda c: c[2], reverse=True)  # stable, as the scripts' sorted()
    chosen: list[list[float]] = []
    used_a, used_b = set(), set()
    for i, j, score in candidates:
      if i not in used_a and j not in used_b:
        chosen.append([peaks_a[i, 3], peaks_b[j, 3], score, i, j])
        used_a.add(i)
        used_b.add(j)
        if len(chosen) >= min(len(peaks_a), len(peaks_b)):
          break
    connections.append(np.array(chosen, np.float64).reshape(-1, 5))
  return connections


def group_people(peaks: list[np.ndarray], connections: list[np.ndarray | None],
                 thresholds: Thresholds = Thresholds()) -> People:
  """Merges limb connections into people (the scripts' `subset`); see the module docstring."""
  candidate = np.concatenate([p for p in peaks if len(p)] or [np.zeros((0, 4))], axis=0)
  rows = -1 * np.ones((0, NUM_ROW_COLUMNS))
  for k, ((index_a, index_b), connection) in enumerate(zip(LIMBS, connections)):
    if connection is None:
      continue
    for i in range(len(connection)):
      id_a, id_b, score = connection[i, 0], connection[i, 1], connection[i, 2]
      found = [j for j in range(len(rows)) if rows[j, index_a] == id_a or rows[j, index_b] == id_b][:2]
      if len(found) == 1:
        j = found[0]
        if rows[j, index_b] != id_b:
          rows[j, index_b] = id_b
          rows[j, -1] += 1
          rows[j, -2] += candidate[int(id_b), 2] + score
      elif len(found) == 2:
        j1, j2 = found
        membership = ((rows[j1] >= 0).astype(int) + (rows[j2] >= 0).astype(int))[:-2]
        if not np.any(membership == 2):  # disjoint: merge the second row into the first
          rows[j1, :-2] += rows[j2, :-2] + 1
          rows[j1, -2:] += rows[j2, -2:]
          rows[j1, -2] += score
          rows = np.delete(rows, j2, axis=0)
        else:
          rows[j1, index_b] = id_b
          rows[j1, -1] += 1
          rows[j1, -2] += candidate[int(id_b), 2] + score
      elif k < LIMBS_STARTING_PEOPLE:
        row = -1 * np.ones(NUM_ROW_COLUMNS)
        row[index_a] = id_a
        row[index_b] = id_b
        row[-1] = 2
        row[-2] = sum(candidate[connection[i, :2].astype(int), 2]) + score
        rows = np.vstack([rows, row])
  keep = [j for j in range(len(rows))
          if not (rows[j, -1] < thresholds.min_parts or rows[j, -2] / rows[j, -1] < thresholds.min_mean_score)]
  return People(peaks=candidate, rows=rows[keep])


def people_from_maps(heatmaps: np.ndarray, pafs: np.ndarray, image_height: int | None = None,
                     thresholds: Thresholds = Thresholds()) -> People:
  """(H, W, 19) confidence maps and (H, W, 38) PAFs at the photo's resolution -> everyone found.

  image_height: the photo's height, in the distance prior (default: the maps' height).
  """
  heatmaps = np.asarray(heatmaps, np.float64)
  pafs = np.asarray(pafs, np.float64)
  if heatmaps.shape[:2] != pafs.shape[:2]:
    raise ValueError(f"confidence maps {heatmaps.shape} and PAFs {pafs.shape} must have the same height and width")
  height = heatmaps.shape[0] if image_height is None else image_height
  peaks = find_peaks(heatmaps, thresholds)
  return group_people(peaks, connect_limbs(peaks, pafs, height, thresholds), thresholds)


def person_keypoints(people: People, row: int) -> np.ndarray:
  """Person `row`'s (18, 2) int32 (y, x), (-1, -1) for the parts it lacks."""
  out = np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32)
  for part in range(kp.NUM_KEYPOINTS):
    peak = people.rows[row, part]
    if peak != -1:
      x, y = people.peaks[int(peak), 0], people.peaks[int(peak), 1]
      out[part] = (int(y), int(x))
  return out


def single_person_keypoints(people: People) -> np.ndarray:
  """The scripts' choice: the person with the highest total score (first on ties); all -1 if nobody."""
  if not len(people.rows):
    return np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING, np.int32)
  return person_keypoints(people, int(np.argmax(people.rows[:, -2])))


def keypoints_from_maps(heatmaps: np.ndarray, pafs: np.ndarray, image_height: int | None = None,
                        thresholds: Thresholds = Thresholds()) -> np.ndarray:
  """`compute_cordinates(heatmap_avg, paf_avg)` of the scripts: maps -> (18, 2) int32 (y, x), -1 missing."""
  return single_person_keypoints(people_from_maps(heatmaps, pafs, image_height, thresholds))
