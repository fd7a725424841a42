"""SPT's data side: the pseudo-label search, unpaired pairings, the face transform and pose masks.

The search is tested on constructed people: parsing maps painted from their
keypoints (head square = face, torso = upper clothes, each limb rectangle its
garment or skin), so that the same outfit in another pose is, part by part,
an affine image of the source: the search must find it, and must never return
the source's own pose.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose.data import keypoints as keypoints_lib
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import part_transforms as pt
from jaxpose.data import pseudo_labels
from jaxpose.data import sources
from jaxpose.data import unpaired

K = keypoints_lib.KEYPOINT_INDEX
L = parsing_lib.SPT10
SIZE = (64, 48)


def _pose(arm_raise=0.0, leg_spread=0.0, shift=(0, 0)):
  """A standing person (y, x) in a 64x48 frame; arms rotate up by arm_raise (radians), legs spread."""
  j = {"nose": (9, 24), "neck": (14, 24), "right_shoulder": (16, 17), "left_shoulder": (16, 31),
       "right_hip": (34, 19), "left_hip": (34, 29), "right_eye": (8, 22), "left_eye": (8, 26),
       "right_ear": (9, 20), "left_ear": (9, 28)}
  for side, sign in (("right", -1), ("left", 1)):
    sy, sx = j[f"{side}_shoulder"]
    angle = arm_raise
    elbow = (sy + 8 * np.cos(angle), sx + sign * 8 * np.sin(angle) + sign * 1)
    wrist = (elbow[0] + 8 * np.cos(angle), elbow[1] + sign * 8 * np.sin(angle))
    j[f"{side}_elbow"], j[f"{side}_wrist"] = elbow, wrist
    hy, hx = j[f"{side}_hip"]
    j[f"{side}_knee"] = (hy + 11, hx + sign * leg_spread)
    j[f"{side}_ankle"] = (hy + 22, hx + sign * 2 * leg_spread)
  kp = np.array([j[n] for n in keypoints_lib.KEYPOINT_NAMES], np.float64) + np.array(shift)
  return np.round(kp).astype(np.int32)


def _paint(keypoints, outfit):
  """A parsing map (spt10) of a pose: outfit = (torso, upper arm, forearm, upper leg, lower leg) labels."""
  torso, upper_arm, forearm, upper_leg, lower_leg = outfit
  masks = pt.part_masks(keypoints, SIZE)
  labels = np.zeros(SIZE, np.uint8)
  body = pt.polygon_masks(keypoints[[K["right_hip"], K["left_hip"], K["left_shoulder"], K["right_shoulder"]]][None],
                          SIZE)[0]
  labels[masks[1] > 0] = L["face"]
  for part, label in ((2, upper_leg), (3, upper_leg), (4, lower_leg), (5, lower_leg), (6, upper_arm),
                      (7, upper_arm), (8, forearm), (9, forearm)):
    labels[masks[part] > 0] = label
  labels[body] = torso
  return labels


SHORT_SLEEVES_PANTS = (L["upper_clothes"], L["upper_clothes"], L["left_arm"], L["pants"], L["pants"])
LONG_SLEEVES_SKIRT = (L["upper_clothes"], L["upper_clothes"], L["upper_clothes"], L["skirt"], L["left_leg"])
BARE = (L["upper_clothes"], L["left_arm"], L["left_arm"], L["left_leg"], L["left_leg"])


def _people():
  """0: source; 1: its outfit in another pose (the answer); 2: its exact pose and outfit (must be excluded);
  3-5: other outfits in other poses."""
  poses = [_pose(), _pose(arm_raise=1.2, leg_spread=3), _pose(), _pose(arm_raise=1.0, leg_spread=2),
           _pose(arm_raise=0.6, shift=(1, -2)), _pose(arm_raise=1.3, leg_spread=4)]
  outfits = [SHORT_SLEEVES_PANTS, SHORT_SLEEVES_PANTS, SHORT_SLEEVES_PANTS, LONG_SLEEVES_SKIRT, BARE,
             LONG_SLEEVES_SKIRT]
  return np.stack([_paint(p, o) for p, o in zip(poses, outfits)]), np.stack(poses)


def test_search_finds_the_same_outfit_in_another_pose_and_never_the_same_pose():
  labels, keypoints = _people()
  index, distance = pseudo_labels.search(labels, keypoints, pseudo_labels.SearchOptions(top_k=3, chunk=4))
  assert index[0, 0] == 1, (index[0], distance[0])
  assert 2 not in index[0] and 0 not in index[2]  # identical poses are excluded both ways
  assert np.all(index != np.arange(len(labels))[:, None])  # never itself
  np.testing.assert_array_equal(np.sort(distance, axis=1), distance)  # best first
  # Without the exclusion the identical person wins, at distance 0: the exclusion is what keeps it out.
  index0, distance0 = pseudo_labels.search(labels, keypoints, pseudo_labels.SearchOptions(
      top_k=1, min_pose_distance=0.0, chunk=4))
  assert index0[0, 0] == 2 and distance0[0, 0] == 0


def test_pair_distance_is_zero_for_an_affinely_moved_copy_and_counts_mismatches():
  """A copy shifted by whole pixels is warped back exactly; relabelling one part costs its pixels twice."""
  distance = jax.jit(pseudo_labels.pair_distance)
  kp = _pose()
  labels = _paint(kp, SHORT_SLEEVES_PANTS)
  moved_kp = kp + np.array([2, 3])
  moved = np.zeros_like(labels)
  moved[2:, 3:] = labels[:-2, :-3]
  packed = pseudo_labels.pack_maps(np.stack([labels, moved]), np.stack([kp, moved_kp]))
  d = distance(jnp.asarray(packed[0]), jnp.asarray(kp), jnp.asarray(packed[1]), jnp.asarray(moved_kp))
  # The only cost: the all-ones body mask where the shift reads outside the source (2 rows, 3 columns).
  h, w = SIZE
  assert float(d) == 2 * w + 3 * (h - 2)
  relabelled = moved.copy()
  relabelled[relabelled == L["pants"]] = L["skirt"]
  packed = pseudo_labels.pack_maps(np.stack([labels, relabelled]), np.stack([kp, moved_kp]))
  worse = distance(jnp.asarray(packed[0]), jnp.asarray(kp), jnp.asarray(packed[1]), jnp.asarray(moved_kp))
  # Each relabelled pixel costs 2 in every part mask covering it (the body's at least).
  assert float(worse) >= float(d) + 2 * np.sum(relabelled == L["skirt"])


def test_least_squares_fits_match_the_exact_part_transforms():
  """Limb rectangles are exact fits: OLS here equals scikit-image's TLS in part_transforms."""
  source, target = _pose(), _pose(arm_raise=1.1, leg_spread=3, shift=(2, 1))
  fit = jax.jit(lambda s, t: pseudo_labels.least_squares_affine(*pseudo_labels.fit_points(s, t)))
  matrices, ok = fit(jnp.asarray(source, jnp.float32), jnp.asarray(target, jnp.float32))
  expected = pt.affine_transforms(source, target)
  assert np.all(np.asarray(ok))
  np.testing.assert_allclose(np.asarray(matrices)[2:].reshape(8, 6), expected[2:, :6], rtol=1e-3, atol=1e-3)
  # The body fit (4 points, not exactly affine) is close to the TLS one.
  np.testing.assert_allclose(np.asarray(matrices)[0].reshape(6), expected[0, :6], atol=0.1)


def test_pose_distance_is_invariant_to_translation_and_scale():
  a = _pose(arm_raise=0.5).astype(np.float32)
  shifted = a + np.array([3, -2], np.float32)
  scaled = (a - a[K["neck"]]) * 1.5 + a[K["neck"]]
  distance = jax.jit(pseudo_labels.pose_distance)
  assert float(distance(jnp.asarray(a), jnp.asarray(shifted))) < 1e-6
  assert float(distance(jnp.asarray(a), jnp.asarray(scaled))) < 1e-5
  assert float(distance(jnp.asarray(a), jnp.asarray(_pose(arm_raise=1.2).astype(np.float32)))) > 0.5


def test_search_rejects_bad_input():
  labels, keypoints = _people()
  keypoints = keypoints.copy()
  keypoints[3, K["left_hip"]] = -1
  with pytest.raises(ValueError, match="torso"):
    pseudo_labels.search(labels, keypoints)
  with pytest.raises(ValueError, match="num_candidates"):
    pseudo_labels.SearchOptions(top_k=5, num_candidates=2).validate()


# ----------------------------------------------------------------------------
# Face transform and pose mask


def test_face_transform_stretches_the_head_box_over_the_image():
  kp = _pose()
  torso = np.sqrt((np.sum((kp[K["right_hip"]] - kp[K["right_shoulder"]]) ** 2)
                   + np.sum((kp[K["left_hip"]] - kp[K["left_shoulder"]]) ** 2)) / 2)
  head = kp[[K["nose"], K["right_eye"], K["left_eye"], K["right_ear"], K["left_ear"]]]
  cy, cx = np.mean(head, axis=0).astype(int)
  r = int(0.4 * torso)
  t = pt.face_transform(kp, SIZE)
  assert t.shape == (1, 8)
  h, w = SIZE
  # (0, 0) -> box corner, (W, H) -> opposite corner.
  np.testing.assert_allclose(t[0, [2, 5]], [max(cx - r, 0), max(cy - r, 0)])
  np.testing.assert_allclose([t[0, 0] * w + t[0, 2], t[0, 4] * h + t[0, 5]], [cx + r, cy + r], rtol=1e-6)
  no_head = kp.copy()
  no_head[[K["nose"], K["right_eye"], K["left_eye"], K["right_ear"], K["left_ear"]]] = -1
  np.testing.assert_array_equal(pt.face_transform(no_head, SIZE)[0], pt.NO_POINT_TRANSFORM)


def test_pose_mask_covers_the_body_and_not_the_background():
  kp = _pose()
  mask = pt.pose_mask(kp, SIZE)
  assert mask.dtype == np.uint8 and mask.shape == SIZE
  for joint in ("neck", "right_elbow", "left_knee", "right_ankle", "nose"):
    y, x = kp[K[joint]]
    assert mask[y, x] == 1, joint
  assert mask[:, :5].sum() == 0 and mask[:, -5:].sum() == 0
  painted = _paint(kp, SHORT_SLEEVES_PANTS) > 0
  assert np.mean(mask[painted]) > 0.95


# ----------------------------------------------------------------------------
# Pairings


def test_random_partner_pairs():
  images = np.array([3, 5, 7, 9, 11])
  pairs = unpaired.random_partner_pairs(images, 2, seed=1)
  assert pairs.shape == (10, 2) and np.all(pairs[:, 0] != pairs[:, 1])
  assert set(pairs[:, 0]) == set(images) and set(pairs[:, 1]) <= set(images)
  for image in images:
    partners = pairs[pairs[:, 0] == image, 1]
    assert len(set(partners)) == 2
  np.testing.assert_array_equal(pairs, unpaired.random_partner_pairs(images, 2, seed=1))
  with pytest.raises(ValueError):
    unpaired.with_pairing(None, "paired")


def test_pairings_of_a_dataset(tiny_data_dir):
  source = sources.pair_source("synthetic_people/tiny", "train", tiny_data_dir)
  identity = lambda image: source.images[int(image)]["identity"]
  random = unpaired.with_pairing(source, "unpaired", per_image=3, seed=0)
  assert random.pairing == "unpaired" and len(random) == 3 * len(unpaired.paired_images(source))
  assert any(identity(s) != identity(t) for s, t in random.pairs[:20])  # any person, not the same one
  example = random[0]
  assert example["source_name"] != example["target_name"]

  options = pseudo_labels.SearchOptions(top_k=2, num_candidates=8, chunk=8)
  labelled = unpaired.with_pairing(source, "pseudo_labels", search=options)
  images = unpaired.paired_images(source)
  path = pseudo_labels.cache_path(source, options, len(images))
  assert os.path.exists(path) and os.path.dirname(path) == source.directory
  assert len(labelled) == 2 * len(images) and np.all(labelled.pairs[:, 0] != labelled.pairs[:, 1])
  # The partner's pose is really different from the source's.
  kp = {int(i): np.asarray(source.images[int(i)]["keypoints"], np.float32) for i in images}
  distances = jax.jit(pseudo_labels.pose_distance)(jnp.asarray(np.stack([kp[s] for s, _ in labelled.pairs])),
                                                  jnp.asarray(np.stack([kp[t] for _, t in labelled.pairs])))
  assert np.all(np.asarray(distances) >= options.min_pose_distance)
  # A second call reads the cache.
  mtime = os.path.getmtime(path)
  again = unpaired.with_pairing(source, "pseudo_labels", search=options)
  np.testing.assert_array_equal(again.pairs, labelled.pairs)
  assert os.path.getmtime(path) == mtime
