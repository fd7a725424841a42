"""Deformable GAN's ten body-part affine transforms and masks (host side, numpy).

Deformable GAN (Siarohin et al., CVPR 2018) warps the appearance encoder's
features part by part before each skip connection (shared/reference/peers.md
section 2.2; official `pose_transform.py`: `affine_transforms`, `pose_masks`,
`estimate_polygon`). For every training pair the host computes, from the
keypoints alone:

  * `affine_transforms(source_keypoints, target_keypoints)` -> (10, 8): one
    affine map per part from TARGET pixel coordinates to SOURCE pixel
    coordinates (the inverse-warp convention of `tf.contrib.image.transform`:
    the output pixel (x, y) reads the input at the mapped point);
  * `part_masks(target_keypoints, image_size)` -> (10, H, W): where in the
    target image each warped part may appear.

The ten parts, in the official order (`PART_NAMES`): the body (the four torso
joints), the head (the head joints visible in both images plus both
shoulders), then eight limb rectangles: right/left upper leg (hip -> knee),
right/left lower leg (knee -> ankle), right/left upper arm (shoulder ->
elbow), right/left forearm (elbow -> wrist).

Fidelity notes (each is what the official code does):
  * the fit is scikit-image's `estimate_transform('affine', src=target,
    dst=source)`: Hartley-normalised TOTAL least squares through an SVD,
    implemented here in numpy (`estimate_affine`); plain least squares differs
    for the over-determined body and head fits;
  * a part that cannot be estimated, and any fit that is not invertible,
    becomes the "no-point" transform [[1, 0, 1000], [0, 1, 1000]], which sends
    every read outside the image (so the warped part is all zeros);
  * a limb missing in the SOURCE borrows the mirrored (left <-> right) source
    limb; a limb missing in the TARGET is no-point;
  * limb rectangles grow along the limb by 10% at the start and by `inc_to`
    past the end (0.1 upper / 0.3 lower limbs for transforms, 0.1 / 0.5 for
    masks) and are 0.4 * torso size wide, the torso size being
    st = sqrt((|Rhip - Rsho|^2 + |Lhip - Lsho|^2) / 2);
  * the body mask is all ones (the official torso-box mask is commented out),
    the head mask a square of half-side int(0.4 st) around the truncated mean
    of the target's own head joints (so it can be non-zero while the head
    transform is no-point), a missing part's mask all zeros.

Where the official code is undefined we choose, and say so: a fit from
degenerate target points (all on a line, e.g. a limb whose two joints
coincide) is no-point (scikit-image returns an arbitrary or NaN matrix), and
so is a fit whose 2x2 linear part has |det| < 1e-9 (the official
`np.linalg.inv` test only catches exact zeros).

Polygon rasterisation (`polygon_masks`) reproduces scikit-image's
`grid_points_in_poly` of scikit-image >= 0.18 (O'Rourke's crossing test):
grid points ON the boundary (edges, and within 1e-12 of a vertex) count as
INSIDE. scikit-image 0.13.1, pinned by the official repository, used a
half-open rule there, so official masks can differ on exact boundary pixels,
which only occur for axis-aligned limbs at integer coordinates.

Cost per pair (`affine_transforms` + `part_masks` of a realistic pose, numpy
2.4, one core of this project's shared 2-core CPU host): 0.8-1.4 ms at
128x64 (Market; about 0.4-0.6 ms each) and 1.5-2.6 ms at 256x256
(DeepFashion, whose limb boxes are 4x larger), the range over runs on the
loaded host, the lower end when it was quiet
(tests/test_part_transforms.py::test_host_cost_per_pair prints it). The ten
fits share one batched SVD and the eight limb polygons one vectorised
crossing test.

Also here: `interpolate_keypoints`, the poses along which SDGAN's "stacked"
generator walks from the source to the target pose.

Keypoints are (18, 2) arrays of (y, x) pixel coordinates, -1 for a missing
joint, as everywhere in jaxpose (`jaxpose.data.keypoints`); points inside
this module are (x, y), like the official code's after
`give_name_to_keypoints`.
"""

from __future__ import annotations

import numpy as np

from jaxpose.data import keypoints as keypoints_lib

NUM_PARTS = 10

PART_NAMES = (
    "body", "head",
    "right_upper_leg", "left_upper_leg", "right_lower_leg", "left_lower_leg",
    "right_upper_arm", "left_upper_arm", "right_forearm", "left_forearm",
)

NO_POINT_TRANSFORM = np.array([1, 0, 1000, 0, 1, 1000, 0, 0], np.float32)
"""The official "no-point" transform, flattened: reads 1000 px right of and below the image."""

_K = keypoints_lib.KEYPOINT_INDEX

# Official order [Rhip, Lhip, Lsho, Rsho].
_BODY_JOINTS = np.array([_K["right_hip"], _K["left_hip"], _K["left_shoulder"], _K["right_shoulder"]])
# Official `{'Leye', 'Reye', 'Lear', 'Rear', 'nose'}` (a set: the order never matters).
_HEAD_JOINTS = np.array([_K["nose"], _K["right_eye"], _K["left_eye"], _K["right_ear"], _K["left_ear"]])
_SHOULDERS = np.array([_K["left_shoulder"], _K["right_shoulder"]])


def _limb_table():
  sides = {"right": "left", "left": "right"}
  rows = []  # (from, to, mirrored from, mirrored to, inc_to for transforms, inc_to for masks)
  for start, end, inc_transform, inc_mask in (("hip", "knee", 0.1, 0.1), ("knee", "ankle", 0.3, 0.5),
                                              ("shoulder", "elbow", 0.1, 0.1), ("elbow", "wrist", 0.3, 0.5)):
    for side in ("right", "left"):
      other = sides[side]
      rows.append((_K[f"{side}_{start}"], _K[f"{side}_{end}"], _K[f"{other}_{start}"], _K[f"{other}_{end}"],
                   inc_transform, inc_mask))
  return rows


_LIMBS = _limb_table()
_LIMB_FROM = np.array([r[0] for r in _LIMBS])
_LIMB_TO = np.array([r[1] for r in _LIMBS])
_LIMB_MIRROR_FROM = np.array([r[2] for r in _LIMBS])
_LIMB_MIRROR_TO = np.array([r[3] for r in _LIMBS])
_LIMB_INC_TRANSFORM = np.array([r[4] for r in _LIMBS])
_LIMB_INC_MASK = np.array([r[5] for r in _LIMBS])

# Official `estimate_polygon(fr, to, st, inc_to, inc_from=0.1, p_to=0.2, p_from=0.2)`.
_INC_FROM = 0.1
_HALF_WIDTH = 0.2
_HEAD_HALF_SIZE = 0.4

# Below this |det| of the normalised target points' scatter they count as collinear.
_DEGENERATE_SCATTER = 1e-10
# Below this |a0 b1 - a1 b0| a fit counts as not invertible.
_SINGULAR_DET = 1e-9
# scikit-image's vertex tolerance in `point_in_polygon`.
_VERTEX_EPS = 1e-12


def _as_keypoints(keypoints, what: str) -> tuple[np.ndarray, np.ndarray]:
  """Validates (18, 2) (y, x) keypoints; returns ((18, 2) float64 (x, y), (18,) bool present)."""
  arr = np.asarray(keypoints)
  if arr.shape != (keypoints_lib.NUM_KEYPOINTS, 2):
    raise ValueError(f"{what}: expected shape ({keypoints_lib.NUM_KEYPOINTS}, 2) as (y, x) pairs, got {arr.shape}")
  arr = arr.astype(np.float64)
  if not np.all(np.isfinite(arr)):
    raise ValueError(f"{what}: expected finite coordinates, got {arr.tolist()}")
  missing = arr == keypoints_lib.MISSING
  half = np.any(missing, axis=-1) & ~np.all(missing, axis=-1)
  if np.any(half):
    raise ValueError(f"{what}: joints {np.flatnonzero(half).tolist()} have only one coordinate -1")
  return arr[:, ::-1].copy(), ~missing[:, 0]


def _torso_size(points: np.ndarray, present: np.ndarray, what: str) -> float:
  """Official `compute_st_distance`; the torso joints must all be present."""
  if not np.all(present[_BODY_JOINTS]):
    absent = [keypoints_lib.KEYPOINT_NAMES[j] for j in _BODY_JOINTS if not present[j]]
    raise ValueError(f"{what}: the four torso joints must be present (the official pair filter), missing {absent}")
  right = np.sum((points[_K["right_hip"]] - points[_K["right_shoulder"]]) ** 2)
  left = np.sum((points[_K["left_hip"]] - points[_K["left_shoulder"]]) ** 2)
  return float(np.sqrt((right + left) / 2.0))


def limb_rectangles(start: np.ndarray, end: np.ndarray, torso_size, inc_to) -> np.ndarray:
  """Official `estimate_polygon` for a batch of limbs: (n, 2), (n, 2) (x, y) -> (n, 4, 2).

  The limb start moves back by 10% of the limb, the end forward by `inc_to`
  times the (already extended) limb; the rectangle is 0.2 * torso_size wide on
  each side. A zero-length limb gives the official fallback [start + 1,
  start - 1, end - 1, end + 1] (a degenerate diagonal). Vertex order: start +
  normal, start - normal, end - normal, end + normal. torso_size and inc_to
  may be scalars or (n,) arrays.
  """
  start = np.asarray(start, np.float64)
  end = np.asarray(end, np.float64)
  inc_to = np.broadcast_to(np.asarray(inc_to, np.float64), start.shape[:1])[:, None]
  torso_size = np.broadcast_to(np.asarray(torso_size, np.float64), start.shape[:1])[:, None]
  start = start + (start - end) * _INC_FROM
  end = end + (end - start) * inc_to
  along = start - end
  normal = np.stack([-along[:, 1], along[:, 0]], axis=-1)
  length = np.linalg.norm(normal, axis=-1, keepdims=True)
  degenerate = length == 0
  normal = normal / np.where(degenerate, 1.0, length)
  # Same operation order as the official `st * p_from * norm_vec` (exact boundary pixels depend on it).
  offset = torso_size * _HALF_WIDTH * normal
  offset = np.where(degenerate, 1.0, offset)
  return np.stack([start + offset, start - offset, end - offset, end + offset], axis=1)


def _normalisation(points: np.ndarray, valid: np.ndarray, count: np.ndarray):
  """Hartley normalisation as scikit-image's 'rms' over the valid points.

  (n, N, 2), (n, N) bool, (n,) -> (centroid (n, 2), scale (n,), normalised
  points with invalid ones zeroed (n, N, 2)); scale is the root-mean-square
  centred coordinate, 0 if all points coincide.
  """
  weight = valid[..., None]
  centroid = np.sum(points * weight, axis=1) / count[:, None]
  centred = (points - centroid[:, None]) * weight
  scale = np.sqrt(np.sum(centred ** 2, axis=(1, 2)) / (2 * count))
  return centroid, scale, centred / np.where(scale == 0, 1.0, scale)[:, None, None]


def estimate_affine(src: np.ndarray, dst: np.ndarray, valid: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray]:
  """Total-least-squares affine fits mapping src -> dst, as scikit-image's `AffineTransform.estimate`.

  Both point sets are centred and scaled (root-mean-square coordinate 1);
  the fit is the right singular vector of the smallest singular value of the
  (2N, 7) system [x_s, y_s, 1, 0, 0, 0, x_d; 0, 0, 0, x_s, y_s, 1, y_d], then
  de-normalised. Exact data (e.g. two rectangles) are fitted exactly. Fits
  with different numbers of points share one batched SVD: an invalid point
  contributes an all-zero row pair, which leaves the right singular vectors
  unchanged.

  Args:
    src: (n, N, 2) or (N, 2) float (x, y) points.
    dst: the corresponding points, same shape.
    valid: optional (n, N) (or (N,)) bool, the points that take part; all by
      default. A fit needs 3 or more.

  Returns:
    (matrices (n, 3, 3) float64, ok (n,) bool); a batch axis is added for
    (N, 2) input. ok is False where the fit is undefined or unusable: fewer
    than 3 points, src or dst all in one point, src on a line (degenerate
    system), the solution at infinity (scikit-image's failure), a non-finite
    result, or a linear part with |det| < 1e-9 (not invertible). Failed rows
    hold NaN.
  """
  src = np.asarray(src, np.float64)
  dst = np.asarray(dst, np.float64)
  if src.ndim == 2:
    src, dst = src[None], dst[None]
    valid = None if valid is None else np.asarray(valid)[None]
  if src.shape != dst.shape or src.ndim != 3 or src.shape[-1] != 2:
    raise ValueError(f"estimate_affine: expected two (n, N, 2) point arrays, got {src.shape} and {dst.shape}")
  n, num_points, _ = src.shape
  valid = np.ones((n, num_points), bool) if valid is None else np.asarray(valid, bool)
  if valid.shape != (n, num_points):
    raise ValueError(f"estimate_affine: valid must have shape {(n, num_points)}, got {valid.shape}")
  count = valid.sum(axis=1)
  ok = count >= 3
  count = np.maximum(count, 1)
  src_centroid, src_scale, src_n = _normalisation(src, valid, count)
  dst_centroid, dst_scale, dst_n = _normalisation(dst, valid, count)
  ok &= (src_scale > 0) & (dst_scale > 0)
  # Collinear target points leave the fit undetermined along a whole direction.
  scatter = np.einsum("nki,nkj->nij", src_n, src_n) / count[:, None, None]
  ok &= scatter[:, 0, 0] * scatter[:, 1, 1] - scatter[:, 0, 1] * scatter[:, 1, 0] > _DEGENERATE_SCATTER
  system = np.zeros((n, 2 * num_points, 7))
  system[:, :num_points, 0:2] = src_n
  system[:, :num_points, 2] = valid
  system[:, :num_points, 6] = dst_n[..., 0]
  system[:, num_points:, 3:5] = src_n
  system[:, num_points:, 5] = valid
  system[:, num_points:, 6] = dst_n[..., 1]
  null = np.linalg.svd(system)[2][:, -1]
  ok &= np.abs(null[:, 6]) > 1e-8  # scikit-image: np.isclose(V[-1, -1], 0) fails the fit
  params = (-null[:, :6] / np.where(ok, null[:, 6], 1.0)[:, None]).reshape(n, 2, 3)
  # H = inv(T_dst) @ H_normalised @ T_src with T = [[1/s, 0, -cx/s], [0, 1/s, -cy/s], [0, 0, 1]].
  src_scale = np.where(src_scale == 0, 1.0, src_scale)
  linear = params[:, :, :2] * (dst_scale / src_scale)[:, None, None]
  shift = params[:, :, 2] * dst_scale[:, None] - np.einsum("nij,nj->ni", linear, src_centroid) + dst_centroid
  matrices = np.zeros((n, 3, 3))
  matrices[:, :2, :2] = linear
  matrices[:, :2, 2] = shift
  matrices[:, 2, 2] = 1
  det = linear[:, 0, 0] * linear[:, 1, 1] - linear[:, 0, 1] * linear[:, 1, 0]
  ok &= np.all(np.isfinite(matrices), axis=(1, 2)) & (np.abs(det) >= _SINGULAR_DET)
  matrices[~ok] = np.nan
  return matrices, ok


def affine_transforms(source_keypoints, target_keypoints) -> np.ndarray:
  """The ten part transforms of a pair (official `affine_transforms(kp_source, kp_target)`).

  Args:
    source_keypoints: (18, 2) (y, x) pixels of the source (appearance) image,
      -1 for missing joints; integer or float.
    target_keypoints: (18, 2) (y, x) of the target pose.

  Returns:
    (10, 8) float32, one row per part of `PART_NAMES`: [a0, a1, a2, b0, b1,
    b2, c0, c1] (the 3x3 matrix row-major without its last entry; c0 = c1 = 0)
    mapping target pixel (x, y) to source pixel (a0 x + a1 y + a2, b0 x + b1 y
    + b2); `NO_POINT_TRANSFORM` for parts that cannot be estimated.

  Raises:
    ValueError: on malformed keypoints, or when either pose lacks one of the
      four torso joints (the official code needs them for the torso size and
      the body fit; its pair lists only hold such pairs).
  """
  source, source_present = _as_keypoints(source_keypoints, "source_keypoints")
  target, target_present = _as_keypoints(target_keypoints, "target_keypoints")
  source_torso = _torso_size(source, source_present, "source_keypoints")
  target_torso = _torso_size(target, target_present, "target_keypoints")

  # All ten fits in one batch of up to 7 points: body (4), head (common head joints + 2 shoulders), limbs (4).
  src = np.zeros((NUM_PARTS, 7, 2))
  dst = np.zeros((NUM_PARTS, 7, 2))
  valid = np.zeros((NUM_PARTS, 7), bool)
  src[0, :4], dst[0, :4], valid[0, :4] = target[_BODY_JOINTS], source[_BODY_JOINTS], True

  head_joints = _HEAD_JOINTS[source_present[_HEAD_JOINTS] & target_present[_HEAD_JOINTS]]
  if head_joints.size:  # otherwise no-point (no valid points)
    joints = np.concatenate([head_joints, _SHOULDERS])
    src[1, :joints.size], dst[1, :joints.size], valid[1, :joints.size] = target[joints], source[joints], True

  # Limbs: the source's own limb, else its mirror image, else none; the target's limb or none.
  own = source_present[_LIMB_FROM] & source_present[_LIMB_TO]
  mirrored = source_present[_LIMB_MIRROR_FROM] & source_present[_LIMB_MIRROR_TO]
  source_from = np.where(own, _LIMB_FROM, _LIMB_MIRROR_FROM)
  source_to = np.where(own, _LIMB_TO, _LIMB_MIRROR_TO)
  src[2:, :4] = limb_rectangles(target[_LIMB_FROM], target[_LIMB_TO], target_torso, _LIMB_INC_TRANSFORM)
  dst[2:, :4] = limb_rectangles(source[source_from], source[source_to], source_torso, _LIMB_INC_TRANSFORM)
  valid[2:, :4] = (target_present[_LIMB_FROM] & target_present[_LIMB_TO] & (own | mirrored))[:, None]

  matrices, ok = estimate_affine(src, dst, valid)
  flat = matrices.reshape(NUM_PARTS, 9)[:, :8].astype(np.float32)
  return np.where(ok[:, None], flat, NO_POINT_TRANSFORM)


def polygon_masks(vertices: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
  """Grid points inside polygons, as scikit-image's `grid_points_in_poly(image_size, vertices[i])`.

  Args:
    vertices: (n, V, 2) float (row, col) vertices, in order around each polygon.
    image_size: (H, W) of the grid; grid point (r, c) is pixel [r, c].

  Returns:
    (n, H, W) bool. Boundary convention of scikit-image >= 0.18 (O'Rourke's
    crossing test with left and right crossings): points on an edge, or
    within 1e-12 of a vertex, are inside; the same floating-point expressions
    decide, so exact boundary hits agree with scikit-image. Only a box the
    size of the largest polygon's bounding box is tested per polygon (all
    polygons at once).
  """
  height, width = (int(s) for s in image_size)
  vertices = np.asarray(vertices, np.float64)
  n = vertices.shape[0]
  masks = np.zeros((n, height, width), bool)
  if n == 0:
    return masks
  lo = np.maximum(np.floor(vertices.min(axis=1) - 1e-9), 0).astype(np.int64)  # (n, 2)
  hi = np.minimum(np.ceil(vertices.max(axis=1) + 1e-9) + 1, (height, width)).astype(np.int64)
  size = np.maximum(hi - lo, 0)
  box_h, box_w = int(size[:, 0].max()), int(size[:, 1].max())
  if box_h == 0 or box_w == 0:
    return masks
  rows = (lo[:, 0, None] + np.arange(box_h)).astype(np.float64)[:, None, :, None]  # (n, 1, h, 1)
  cols = (lo[:, 1, None] + np.arange(box_w)).astype(np.float64)[:, None, None, :]  # (n, 1, 1, w)
  # Edge i runs from vertex i - 1 to vertex i; scikit-image's (x, y) are (row, col) here. Its test
  # `(x0 * y1 - x1 * y0) / (y1 - y0) > 0` is evaluated as `(x0 * y1 - x1 * y0) * sign(y1 - y0) > 0`: the
  # same sign, without the division (where y1 == y0 neither straddle test holds, so the value is unused).
  previous = np.roll(vertices, 1, axis=1)
  x0 = vertices[:, :, 0, None, None] - rows  # (n, V, h, 1)
  x1 = previous[:, :, 0, None, None] - rows
  y0 = vertices[:, :, 1, None, None] - cols  # (n, V, 1, w)
  y1 = previous[:, :, 1, None, None] - cols
  crossing = (x0 * y1 - x1 * y0) * np.sign(y1 - y0)
  right = np.sum(((y0 > 0) != (y1 > 0)) & (crossing > 0), axis=1)
  left = np.sum(((y0 < 0) != (y1 < 0)) & (crossing < 0), axis=1)
  inside = ((right & 1) != (left & 1)) | (right & 1).astype(bool)
  # Grid points within 1e-12 of a vertex (only where a vertex sits on the grid).
  nearest = np.rint(vertices)
  on_grid = np.all(np.abs(vertices - nearest) < _VERTEX_EPS, axis=-1)
  for i, v in zip(*np.nonzero(on_grid)):
    r, c = (nearest[i, v] - lo[i]).astype(np.int64)
    if 0 <= r < box_h and 0 <= c < box_w:
      inside[i, r, c] = True
  for i in range(n):
    h, w = size[i]
    masks[i, lo[i, 0]:lo[i, 0] + h, lo[i, 1]:lo[i, 1] + w] = inside[i, :h, :w]
  return masks


def part_masks(target_keypoints, image_size: tuple[int, int]) -> np.ndarray:
  """The ten part masks of the target pose (official `pose_masks(kp_target, img_size)`).

  Args:
    target_keypoints: (18, 2) (y, x) pixels of the target pose, -1 missing.
    image_size: (H, W) of the full-resolution image.

  Returns:
    (10, H, W) uint8 in {0, 1}, in `PART_NAMES` order: body all ones; head
    the square [cy - r, cy + r) x [cx - r, cx + r) clipped to the image, with
    (cx, cy) the mean of the present head joints truncated to integers and r =
    int(0.4 * torso size) (zeros without head joints); limbs the rectangles
    of `limb_rectangles` with inc_to 0.1 (upper) / 0.5 (lower), rasterised by
    `polygon_masks` (boundary inside), zeros where a joint is missing (and,
    as with scikit-image, only the two end pixels of a zero-length limb's
    degenerate diagonal).

  Raises:
    ValueError: malformed keypoints or image size, or a torso joint missing.
  """
  if len(image_size) != 2 or min(image_size) <= 0:
    raise ValueError(f"image_size must be (H, W) with positive sides, got {image_size}")
  height, width = (int(s) for s in image_size)
  target, present = _as_keypoints(target_keypoints, "target_keypoints")
  torso = _torso_size(target, present, "target_keypoints")
  masks = np.zeros((NUM_PARTS, height, width), np.uint8)
  masks[0] = 1

  head = _HEAD_JOINTS[present[_HEAD_JOINTS]]
  if head.size:
    centre = np.mean(target[head], axis=0).astype(int)  # truncation, as the official `.astype(int)`
    half = int(_HEAD_HALF_SIZE * torso)
    x_lo, y_lo = np.maximum(centre - half, 0)
    x_hi, y_hi = np.minimum(centre + half, (width, height))
    masks[1, y_lo:y_hi, x_lo:x_hi] = 1

  limbs = np.flatnonzero(present[_LIMB_FROM] & present[_LIMB_TO])
  rects = limb_rectangles(target[_LIMB_FROM[limbs]], target[_LIMB_TO[limbs]], torso, _LIMB_INC_MASK[limbs])
  masks[2 + limbs] = polygon_masks(rects[:, :, ::-1], (height, width))
  return masks


def interpolate_keypoints(source_keypoints, target_keypoints, num_stages: int,
                          snap_to_pixels: bool = False) -> np.ndarray:
  """Poses from the source towards the target, one per stage (SDGAN's `compute_interpol_pose`).

  Stage s = 1 .. num_stages holds source + (target - source) * s / num_stages
  for joints present in both poses; the last stage is the target. A joint
  present on one side only is, in stages s <= num_stages // 2, where it is in
  the source (missing if the source lacks it) and afterwards where it is in
  the target (missing if the target lacks it): joints appear or disappear at
  the half-way stage. Joints missing in both stay missing.

  Args:
    source_keypoints: (18, 2) (y, x), -1 missing.
    target_keypoints: (18, 2) (y, x), -1 missing.
    num_stages: number of poses (>= 1).
    snap_to_pixels: round coordinates to the pixel grid as the official data
      pipeline does implicitly (it renders each pose as heatmaps and reads the
      joints back with an argmax, which picks the nearest pixel and, at an
      exact .5, the lower one). False keeps the exact interpolation.

  Returns:
    (num_stages, 18, 2) float32 (y, x), -1 for missing joints.
  """
  if int(num_stages) != num_stages or num_stages < 1:
    raise ValueError(f"num_stages must be a positive integer, got {num_stages}")
  num_stages = int(num_stages)
  source, source_present = _as_keypoints(source_keypoints, "source_keypoints")
  target, target_present = _as_keypoints(target_keypoints, "target_keypoints")
  source, target = source[:, ::-1], target[:, ::-1]  # back to (y, x)
  stage = np.arange(1, num_stages + 1, dtype=np.float64)[:, None, None]
  poses = source + (target - source) * stage / num_stages
  early = stage <= num_stages // 2
  only_source = (source_present & ~target_present)[None, :, None]
  only_target = (target_present & ~source_present)[None, :, None]
  neither = (~source_present & ~target_present)[None, :, None]
  missing = keypoints_lib.MISSING
  poses = np.where(only_source, np.where(early, source, missing), poses)
  poses = np.where(only_target, np.where(early, missing, target), poses)
  poses = np.where(neither, missing, poses)
  if snap_to_pixels:
    poses = np.where(poses == missing, missing, np.ceil(poses - 0.5))
  return poses.astype(np.float32)


# ----------------------------------------------------------------------------
# SPT's extras: the face crop's transform and a body silhouette from keypoints.


def face_transform(keypoints, image_size: tuple[int, int]) -> np.ndarray:
  """SPT's `estimate_face_transform`: the one affine map that stretches the head box over the image.

  The head box is the square [c - r, c + r] around the truncated mean c of the
  present head joints (nose, eyes, ears), r = int(0.4 * torso size), clipped
  to the image; the transform maps the full image's corners (0, 0) .. (W, H)
  onto the box's corners (an exact fit, so plain arithmetic), i.e. output
  pixel (x, y) reads (x0 + x (x1 - x0) / W, y0 + y (y1 - y0) / H). The
  release wrote the image corner as (H, W) in (x, y) order, the same thing for
  its square images; we use (W, H).

  Args:
    keypoints: (18, 2) (y, x), -1 missing; the four torso joints must be present.
    image_size: (H, W).

  Returns:
    (1, 8) float32 [a0, a1, a2, b0, b1, b2, 0, 0], or the no-point transform
    without head joints or for an empty box.
  """
  height, width = (int(s) for s in image_size)
  points, present = _as_keypoints(keypoints, "keypoints")
  torso = _torso_size(points, present, "keypoints")
  head = _HEAD_JOINTS[present[_HEAD_JOINTS]]
  if not head.size:
    return NO_POINT_TRANSFORM[None].copy()
  centre = np.mean(points[head], axis=0).astype(int)
  half = int(_HEAD_HALF_SIZE * torso)
  x0, y0 = np.maximum(centre - half, 0)
  x1, y1 = np.minimum(centre + half, (width, height))
  if x1 <= x0 or y1 <= y0:
    return NO_POINT_TRANSFORM[None].copy()
  return np.array([[(x1 - x0) / width, 0, x0, 0, (y1 - y0) / height, y0, 0, 0]], np.float32)


def pose_mask(keypoints, image_size: tuple[int, int]) -> np.ndarray:
  """Where the body of a pose is: the union of the part masks but the all-ones body, and the torso.

  SPT's H_S takes "pose masks" of both poses and weights its cross-entropy by
  (1 + target pose mask); the paper gives no construction, this is ours: the
  head square and the eight limb rectangles of `part_masks` plus the torso
  quadrilateral [Rhip, Lhip, Lsho, Rsho] grown by 10% about its centre.

  Returns (H, W) uint8 in {0, 1}. Raises like `part_masks`.
  """
  masks = part_masks(keypoints, image_size)
  points, _ = _as_keypoints(keypoints, "keypoints")
  torso = points[_BODY_JOINTS]
  torso = torso + (torso - torso.mean(axis=0)) * 0.1
  body = polygon_masks(torso[None, :, ::-1], image_size)[0]
  return (np.any(masks[1:], axis=0) | body).astype(np.uint8)
