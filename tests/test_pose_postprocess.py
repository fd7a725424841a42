"""OpenPose post-processing: exact keypoints from maps rendered from known skeletons, and the scripts' rules."""

import math

import numpy as np
import pytest
from scipy import ndimage

from jaxpose.data import keypoints as kp
from jaxpose.pose import postprocess

# A standing person, (y, x) offsets from the nose, in COCO-18 order.
SKELETON = np.array([[0, 0], [12, 0], [12, -10], [30, -14], [46, -16], [12, 10], [30, 14], [46, 16],
                     [50, -6], [72, -7], [94, -8], [50, 6], [72, 7], [94, 8], [-3, -3], [-3, 3], [-1, -6],
                     [-1, 6]])


def person(y, x, missing=(), scale=1.0):
  points = np.round(SKELETON * scale).astype(np.int32) + np.array([y, x])
  points[list(missing)] = -1
  return points


def render(people, height=140, width=200, peak=None, paf=None, sigma=2.0, limb_radius=1.5):
  """Confidence maps (H, W, 19) and PAFs (H, W, 38) as OpenPose's training labels draw them.

  Per part the maximum of one Gaussian per person (times that person's `peak`);
  per limb the unit vector A->B (times `paf`) on pixels within `limb_radius` of
  the segment, averaged where people overlap.
  """
  peak = peak or [1.0] * len(people)
  paf = paf or [1.0] * len(people)
  ys, xs = np.mgrid[:height, :width].astype(np.float64)
  heatmaps = np.zeros((height, width, 19))
  for points, strength in zip(people, peak):
    for part, (y, x) in enumerate(points):
      if y >= 0:
        heatmaps[:, :, part] = np.maximum(heatmaps[:, :, part],
                                          strength * np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / (2 * sigma ** 2)))
  heatmaps[:, :, 18] = 1 - heatmaps[:, :, :18].max(-1)
  sums, counts = np.zeros((height, width, 38)), np.zeros((height, width, 19))
  for points, strength in zip(people, paf):
    for limb, ((a, b), (cx, cy)) in enumerate(zip(postprocess.LIMBS, postprocess.PAF_CHANNELS)):
      if points[a, 0] < 0 or points[b, 0] < 0:
        continue
      (ay, ax), (by, bx) = points[a], points[b]
      length = math.hypot(bx - ax, by - ay)
      ux, uy = (bx - ax) / length, (by - ay) / length
      t = (xs - ax) * ux + (ys - ay) * uy
      d = np.abs((xs - ax) * uy - (ys - ay) * ux)
      on = (t >= -0.5) & (t <= length + 0.5) & (d <= limb_radius)
      sums[:, :, cx] += on * ux * strength
      sums[:, :, cy] += on * uy * strength
      counts[:, :, limb] += on
  pafs = np.zeros_like(sums)
  for limb, (cx, cy) in enumerate(postprocess.PAF_CHANNELS):
    n = np.maximum(counts[:, :, limb], 1)
    pafs[:, :, cx], pafs[:, :, cy] = sums[:, :, cx] / n, sums[:, :, cy] / n
  return heatmaps, pafs


def test_one_person_is_recovered_exactly_with_missing_joints():
  truth = person(20, 60)
  np.testing.assert_array_equal(postprocess.keypoints_from_maps(*render([truth])), truth)
  partial = person(20, 100, missing=(4, 10, 13, 17))  # right wrist, both ankles, left ear
  keypoints = postprocess.keypoints_from_maps(*render([partial]))
  np.testing.assert_array_equal(keypoints, partial)
  assert keypoints.dtype == np.int32 and np.all(keypoints[[4, 10, 13, 17]] == -1)


def test_two_people_are_both_found_and_the_single_person_rule_is_the_highest_total_score():
  left, right = person(20, 50), person(30, 150, missing=(3, 4, 9, 10, 16, 17))
  people = postprocess.people_from_maps(*render([left, right]))
  assert len(people.rows) == 2
  found = sorted((postprocess.person_keypoints(people, r) for r in range(2)), key=lambda k: k[1, 1])
  np.testing.assert_array_equal(found[0], left)
  np.testing.assert_array_equal(found[1], right)
  # The complete person wins, wherever it stands; scores are peaks plus limb scores.
  np.testing.assert_array_equal(postprocess.single_person_keypoints(people), left)
  np.testing.assert_array_equal(
      postprocess.keypoints_from_maps(*render([person(20, 50, missing=(3, 4, 9, 10, 16, 17)), person(30, 150)])),
      person(30, 150))
  # Highest total score, not most parts: a faint complete person loses to a strong one with 15 joints.
  faint, strong = person(20, 50), person(30, 150, missing=(9, 10, 17))
  heatmaps, pafs = render([faint, strong], peak=[0.5, 1.0], paf=[0.6, 1.0])
  people = postprocess.people_from_maps(heatmaps, pafs)
  counts = sorted(people.rows[:, -1].tolist())
  assert counts == [15, 18]
  np.testing.assert_array_equal(postprocess.keypoints_from_maps(heatmaps, pafs), strong)


def test_crossing_forearms_are_assigned_to_their_own_people():
  one = person(20, 50)
  two = person(20, 110)
  # Right elbows and wrists placed so that the two right forearms cross at (y, x) = (60, 80).
  one[3], one[4] = (50, 70), (70, 90)
  two[3], two[4] = (50, 90), (70, 70)
  heatmaps, pafs = render([one, two])
  assert np.abs(pafs[60, 80, list(postprocess.PAF_CHANNELS[3])]).sum() > 0  # both limbs' vectors, averaged
  people = postprocess.people_from_maps(heatmaps, pafs)
  found = sorted((postprocess.person_keypoints(people, r) for r in range(len(people.rows))),
                 key=lambda k: k[1, 1])
  assert len(found) == 2
  np.testing.assert_array_equal(found[0], one)
  np.testing.assert_array_equal(found[1], two)


def test_rows_with_few_parts_or_a_low_mean_score_are_dropped():
  fragment = np.full((18, 2), -1, np.int32)
  fragment[:3] = person(40, 100)[:3]  # nose, neck, right shoulder: 3 parts < 4
  assert len(postprocess.people_from_maps(*render([fragment])).rows) == 0
  np.testing.assert_array_equal(postprocess.keypoints_from_maps(*render([fragment])), np.full((18, 2), -1))
  # Faint everywhere: peaks 0.3 (0.15 after smoothing, > 0.1) and limbs 0.055 (> 0.05) give a mean
  # score (total / parts) near 0.36 < 0.4.
  heatmaps, pafs = render([person(20, 100)], peak=[0.3], paf=[0.055], sigma=3.0)
  assert [len(p) for p in postprocess.find_peaks(heatmaps)] == [1] * 18
  assert len(postprocess.people_from_maps(heatmaps, pafs).rows) == 0
  heatmaps, pafs = render([person(20, 100)], peak=[0.3], paf=[1.0], sigma=3.0)
  people = postprocess.people_from_maps(heatmaps, pafs)
  assert len(people.rows) == 1 and people.rows[0, -1] == 18


def test_distance_prior_uses_the_image_height():
  tall = person(8, 100, scale=1.25)  # neck-hip limbs of 48 pixels, hip-knee 28
  heatmaps, pafs = render([tall], height=140, paf=[0.6])
  np.testing.assert_array_equal(postprocess.keypoints_from_maps(heatmaps, pafs), tall)
  # Limb score 0.6 + min(0.5 * 30 / length - 1, 0) is negative beyond 37.5 pixels in a 30-pixel photo:
  # the neck-hip limbs go, and the legs left alone (3 parts each) are dropped.
  short = postprocess.keypoints_from_maps(heatmaps, pafs, image_height=30)
  np.testing.assert_array_equal(short[:8], tall[:8])
  assert np.all(short[[8, 9, 10, 11, 12, 13]] == -1)


# ----------------------------------------------------------------------------
# Cross-check with a loop-by-loop implementation of shared/reference/pose.md section 1.4


def _py2_round(v):
  return int(math.floor(v)) + (1 if v - math.floor(v) >= 0.5 else 0)


def reference_keypoints(heatmaps, pafs, height):
  peaks = []
  counter = 0
  for part in range(18):
    raw = heatmaps[:, :, part]
    s = ndimage.gaussian_filter(raw, sigma=3)
    found = []
    for y in range(s.shape[0]):
      for x in range(s.shape[1]):
        around = [s[y - 1, x] if y > 0 else 0, s[y + 1, x] if y + 1 < s.shape[0] else 0,
                  s[y, x - 1] if x > 0 else 0, s[y, x + 1] if x + 1 < s.shape[1] else 0]
        if s[y, x] > 0.1 and all(s[y, x] >= v for v in around):
          found.append((x, y, raw[y, x], counter))
          counter += 1
    peaks.append(found)
  candidate = [p for part in peaks for p in part]
  connections = []
  for (a, b), (cx, cy) in zip(postprocess.LIMBS, postprocess.PAF_CHANNELS):
    if not peaks[a] or not peaks[b]:
      connections.append(None)
      continue
    scored = []
    for i, pa in enumerate(peaks[a]):
      for j, pb in enumerate(peaks[b]):
        dx, dy = pb[0] - pa[0], pb[1] - pa[1]
        norm = math.sqrt(dx * dx + dy * dy)
        if norm == 0:
          continue
        xs, ys = np.linspace(pa[0], pb[0], 10), np.linspace(pa[1], pb[1], 10)
        proj = [pafs[_py2_round(yy), _py2_round(xx), cx] * (dx / norm) + pafs[_py2_round(yy), _py2_round(xx), cy]
                * (dy / norm) for xx, yy in zip(xs, ys)]
        score = sum(proj) / len(proj) + min(0.5 * height / norm - 1, 0)
        if sum(p > 0.05 for p in proj) > 8 and score > 0:
          scored.append((i, j, score))
    scored.sort(key=lambda c: c[2], reverse=True)
    chosen = []
    for i, j, score in scored:
      if all(i != c[3] and j != c[4] for c in chosen):
        chosen.append((peaks[a][i][3], peaks[b][j][3], score, i, j))
        if len(chosen) >= min(len(peaks[a]), len(peaks[b])):
          break
    connections.append(chosen)
  rows = []
  for k, ((a, b), chosen) in enumerate(zip(postprocess.LIMBS, connections)):
    for id_a, id_b, score, _, _ in chosen or []:
      hits = [r for r in rows if r[a] == id_a or r[b] == id_b][:2]
      if len(hits) == 1:
        r = hits[0]
        if r[b] != id_b:
          r[b] = id_b
          r[19] += 1
          r[18] += candidate[id_b][2] + score
      elif len(hits) == 2:
        r1, r2 = hits
        if any(u >= 0 and v >= 0 for u, v in zip(r1[:18], r2[:18])):
          r1[b] = id_b
          r1[19] += 1
          r1[18] += candidate[id_b][2] + score
        else:
          for p in range(18):
            r1[p] += r2[p] + 1
          r1[18] += r2[18] + score
          r1[19] += r2[19]
          rows.remove(r2)
      elif k < 17:
        r = [-1] * 18 + [candidate[id_a][2] + candidate[id_b][2] + score, 2]
        r[a], r[b] = id_a, id_b
        rows.append(r)
  rows = [r for r in rows if r[19] >= 4 and r[18] / r[19] >= 0.4]
  if not rows:
    return np.full((18, 2), -1)
  best = max(range(len(rows)), key=lambda i: (rows[i][18], -i))
  return np.array([[candidate[p][1], candidate[p][0]] if p != -1 else [-1, -1] for p in rows[best][:18]])


@pytest.mark.parametrize("seed", [0, 1])
def test_vectorised_post_processing_agrees_with_a_loop_implementation_on_noisy_maps(seed):
  rng = np.random.default_rng(seed)
  heatmaps, pafs = render([person(20, 50), person(30, 150, missing=(4, 16))], height=130, width=190)
  ys, xs = np.mgrid[:130, :190]
  for part in range(18):  # distractor blobs: spurious candidates for every part
    for y, x, amplitude in zip(rng.integers(0, 130, 3), rng.integers(0, 190, 3), rng.uniform(0.3, 1.0, 3)):
      heatmaps[:, :, part] += amplitude * np.exp(-((ys - y) ** 2 + (xs - x) ** 2) / 8.0)
  pafs = pafs * 4 + rng.normal(0, 0.3, pafs.shape)  # summed over four scales, as the patn protocol does
  ours = postprocess.keypoints_from_maps(heatmaps, pafs)
  assert sum(len(p) for p in postprocess.find_peaks(heatmaps)) > 40  # the noise made spurious candidates
  np.testing.assert_array_equal(ours, reference_keypoints(heatmaps, pafs, 130))
  assert kp.is_present(ours).sum() >= 10


def test_bad_maps_are_refused_with_the_expected_shapes():
  with pytest.raises(ValueError, match=r"\(H, W, 19\) confidence maps"):
    postprocess.find_peaks(np.zeros((10, 10)))
  with pytest.raises(ValueError, match=r"\(H, W, 38\) part affinity fields"):
    postprocess.people_from_maps(np.zeros((10, 10, 19)), np.zeros((10, 10, 19)))
  with pytest.raises(ValueError, match="same height and width"):
    postprocess.people_from_maps(np.zeros((10, 10, 19)), np.zeros((10, 12, 38)))
