"""Procedural "mannequin people": the embedded default dataset.

No real pose-transfer dataset can be downloaded inside the library, so this
module renders stand-in people that carry everything DeepFashion carries: an RGB
image, 18 COCO/OpenPose keypoints in (y, x) pixels with -1 for a missing joint,
and a LIP human-parsing map that agrees with the pixels and with the sides.

A person is an `Identity` (skin, hair, clothes, shoes, background: what stays the
same across a person's photos) rendered in a `Pose` (view, limb angles, framing:
what changes). The body is a small 3-D stick skeleton in body units (1 = head top
to soles), turned about the vertical axis and projected orthographically; every
body part is a shape (tapered capsule, ellipse or rounded polygon) whose signed
distance is evaluated on the pixel grid of its bounding box, painted far to near.

Everything is deterministic: `generate_people(seed, ...)` draws identity k from
(seed, k) and its pose j from (seed, k, j) alone, so any person can be
regenerated without the others and a seed gives bit-identical images.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from typing import Callable, Iterator

import numpy as np

from jaxpose.data import keypoints as kp
from jaxpose.data.parsing import LIP

RGB = tuple[int, int, int]

TEXTURES = ("solid", "stripes", "checks", "dots")
SLEEVE_LENGTHS = ("short", "long")
UPPER_KINDS = ("shirt", "coat")
LOWER_KINDS = ("pants", "shorts", "skirt")
HAIR_STYLES = ("short", "bob", "long", "bun")
COMPONENTS = ("upper_clothes", "lower", "hair", "shoes", "skin", "background")

UPPER_CLOTHES_LABELS = (LIP["upper_clothes"], LIP["coat"])
"""LIP labels an upper garment of this renderer can carry (sleeves included)."""
LOWER_LABELS = (LIP["pants"], LIP["skirt"])
"""LIP labels a lower garment of this renderer can carry."""


@dataclasses.dataclass(frozen=True)
class Identity:
  """What stays the same across one person's photos. Colours are (r, g, b) in 0..255.

  Attributes:
    skin_color: face, neck, arms and visible legs.
    hair_color, hair_style: `HAIR_STYLES`; long hair hangs over the back.
    hat_color: a cap on the head (LIP "hat"), or None.
    upper_kind: "shirt" (LIP upper_clothes, hem at the hips) or "coat" (LIP coat, to mid-thigh).
    upper_color, upper_second_color: base colour and the colour of the pattern.
    upper_texture: one of `TEXTURES`, drawn on torso and sleeves alike.
    upper_pattern_period: period of the pattern in body-height units.
    sleeves: "short" (to mid upper arm) or "long" (to the wrist).
    lower_kind: "pants" (to the ankle), "shorts" or "skirt".
    lower_color: colour of the lower garment.
    lower_length: where shorts and skirts end, as a fraction of the hip-to-ankle length.
    shoes_color, background_color: the background is light and plain.
    build: widens shoulders and hips (1 = average); the body itself, so no component swaps it.
  """
  skin_color: RGB
  hair_color: RGB
  hair_style: str
  hat_color: RGB | None
  upper_kind: str
  upper_color: RGB
  upper_second_color: RGB
  upper_texture: str
  upper_pattern_period: float
  sleeves: str
  lower_kind: str
  lower_color: RGB
  lower_length: float
  shoes_color: RGB
  background_color: RGB
  build: float


_COMPONENT_FIELDS = {
    "upper_clothes": ("upper_kind", "upper_color", "upper_second_color", "upper_texture",
                      "upper_pattern_period", "sleeves"),
    "lower": ("lower_kind", "lower_color", "lower_length"),
    "hair": ("hair_color", "hair_style", "hat_color"),
    "shoes": ("shoes_color",),
    "skin": ("skin_color",),
    "background": ("background_color",),
}


@dataclasses.dataclass(frozen=True)
class ArmPose:
  """Arm angles in degrees.

  The upper arm leaves the shoulder at `shoulder_abduction` from hanging straight
  down, sideways away from the body (90 = horizontal, 180 = straight up), and
  `shoulder_flexion` forwards (negative swings it back). The forearm's angles are
  the upper arm's plus `elbow_abduction` and `elbow_flexion`.
  """
  shoulder_abduction: float
  shoulder_flexion: float
  elbow_abduction: float
  elbow_flexion: float


@dataclasses.dataclass(frozen=True)
class LegPose:
  """Leg angles in degrees: the thigh's sideways and forward swing; the knee bends the shin back."""
  hip_abduction: float
  hip_flexion: float
  knee_flexion: float


@dataclasses.dataclass(frozen=True)
class Pose:
  """What changes between photos of a person; independent of the image size.

  Attributes:
    yaw: body turn in degrees about the vertical: 0 faces the camera, 180 shows
      the back, +90 faces the image's right (so the person's right side shows).
    head_yaw: extra turn of the head relative to the body.
    head_tilt: roll of the head in the image plane, degrees.
    lean: roll of the upper body about the pelvis in the image plane, degrees.
    right_arm, left_arm, right_leg, left_leg: limb angles (the person's own sides).
    toe_out: how far the feet point outwards, degrees.
    body_height: head top to soles as a fraction of the image height (above 1 crops the legs).
    top: image row of the head top as a fraction of the image height.
    center_x: image column of the pelvis as a fraction of the image width.
    missed_joints: keypoint indices the "detector" misses although they are visible.
  """
  yaw: float
  head_yaw: float
  head_tilt: float
  lean: float
  right_arm: ArmPose
  left_arm: ArmPose
  right_leg: LegPose
  left_leg: LegPose
  toe_out: float
  body_height: float
  top: float
  center_x: float
  missed_joints: tuple[int, ...] = ()


# ----------------------------------------------------------------------------
# Sampling.

_SKIN_TONES = np.array([
    (255, 226, 204), (241, 198, 166), (226, 176, 134), (198, 137, 96),
    (163, 106, 70), (122, 78, 52), (86, 56, 40)], np.float64)
_HAIR_COLORS = np.array([
    (22, 19, 18), (52, 36, 26), (92, 60, 36), (140, 98, 60), (214, 178, 112),
    (136, 58, 32), (168, 166, 162)], np.float64)
_HAIR_COLOR_WEIGHTS = np.array([0.25, 0.22, 0.17, 0.1, 0.12, 0.08, 0.06])
_SHOE_COLORS = np.array([(28, 28, 30), (238, 236, 230), (96, 60, 38), (150, 28, 30), (40, 52, 96)],
                        np.float64)
_PANTS_PALETTE = np.array([(48, 72, 124), (72, 104, 156), (30, 30, 34), (190, 170, 128),
                           (110, 112, 118), (88, 52, 40)], np.float64)


def _color_distance(a, b) -> float:
  return float(np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64)))


def _hsv_color(rng: np.random.Generator, saturation: tuple[float, float],
               value: tuple[float, float]) -> np.ndarray:
  hue = rng.uniform(0.0, 1.0)
  rgb = colorsys.hsv_to_rgb(hue, rng.uniform(*saturation), rng.uniform(*value))
  return np.array(rgb) * 255.0


def _distinct_color(rng: np.random.Generator, draw: Callable[[], np.ndarray], avoid: list,
                    min_distance: float) -> RGB:
  """Redraws until the colour is far from every colour in `avoid` (the farthest draw if none is)."""
  best, best_distance = None, -1.0
  for _ in range(40):
    color = draw()
    distance = min((_color_distance(color, other) for other in avoid), default=1e9)
    if distance >= min_distance:
      best = color
      break
    if distance > best_distance:
      best, best_distance = color, distance
  return tuple(int(c) for c in np.clip(np.round(best), 0, 255))


def sample_identity(rng: np.random.Generator) -> Identity:
  """Draws a person's appearance, with colours kept apart so the parts are easy to tell apart."""
  background = _hsv_color(rng, (0.0, 0.14), (0.84, 0.97))
  background_color = tuple(int(c) for c in np.round(background))

  tone = rng.uniform(0.0, len(_SKIN_TONES) - 1.0)
  low = int(tone)
  high = min(low + 1, len(_SKIN_TONES) - 1)
  skin = _SKIN_TONES[low] + (tone - low) * (_SKIN_TONES[high] - _SKIN_TONES[low])
  skin_color = tuple(int(c) for c in np.round(skin))

  if rng.random() < 0.08:  # dyed hair
    hair_color = _distinct_color(rng, lambda: _hsv_color(rng, (0.5, 0.8), (0.35, 0.75)),
                                 [skin_color], 60.0)
  else:
    hair = _HAIR_COLORS[rng.choice(len(_HAIR_COLORS), p=_HAIR_COLOR_WEIGHTS)] + rng.normal(0, 6, 3)
    hair_color = tuple(int(c) for c in np.clip(np.round(hair), 0, 255))
  hair_style = str(rng.choice(HAIR_STYLES, p=[0.35, 0.2, 0.3, 0.15]))
  hat_color = None
  if rng.random() < 0.1:
    hat_color = _distinct_color(rng, lambda: _hsv_color(rng, (0.2, 0.9), (0.15, 0.9)),
                                [background_color, hair_color, skin_color], 60.0)

  upper_kind = UPPER_KINDS[1] if rng.random() < 0.15 else UPPER_KINDS[0]
  upper_color = _distinct_color(rng, lambda: _hsv_color(rng, (0.3, 0.95), (0.25, 0.95)),
                                [background_color, skin_color], 80.0)
  upper_texture = str(rng.choice(TEXTURES, p=[0.4, 0.2, 0.2, 0.2]))

  def second_color_draw():
    choice = rng.random()
    if choice < 0.3:
      return np.array([240.0, 240.0, 236.0]) + rng.normal(0, 5, 3)
    if choice < 0.5:
      return np.array([30.0, 30.0, 34.0]) + rng.normal(0, 5, 3)
    return _hsv_color(rng, (0.3, 0.95), (0.25, 0.95))
  upper_second_color = _distinct_color(rng, second_color_draw, [upper_color], 90.0)
  upper_pattern_period = float(rng.uniform(0.032, 0.05))
  sleeves = "long" if upper_kind == "coat" else str(rng.choice(SLEEVE_LENGTHS))

  lower_kind = str(rng.choice(LOWER_KINDS, p=[0.55, 0.15, 0.3]))

  def lower_draw():
    if rng.random() < 0.5:
      return _PANTS_PALETTE[rng.integers(len(_PANTS_PALETTE))] + rng.normal(0, 8, 3)
    return _hsv_color(rng, (0.2, 0.9), (0.15, 0.85))
  lower_color = _distinct_color(
      rng, lower_draw, [background_color, skin_color, upper_color, upper_second_color], 70.0)
  if lower_kind == "pants":
    lower_length = 1.0
  elif lower_kind == "shorts":
    lower_length = float(rng.uniform(0.28, 0.45))
  else:
    lower_length = float(rng.uniform(0.38, 0.75))

  def shoes_draw():
    if rng.random() < 0.7:
      return _SHOE_COLORS[rng.integers(len(_SHOE_COLORS))] + rng.normal(0, 5, 3)
    return _hsv_color(rng, (0.3, 0.9), (0.2, 0.9))
  shoes_color = _distinct_color(rng, shoes_draw, [background_color, lower_color, skin_color], 50.0)

  return Identity(
      skin_color=skin_color, hair_color=hair_color, hair_style=hair_style, hat_color=hat_color,
      upper_kind=upper_kind, upper_color=upper_color, upper_second_color=upper_second_color,
      upper_texture=upper_texture, upper_pattern_period=upper_pattern_period, sleeves=sleeves,
      lower_kind=lower_kind, lower_color=lower_color, lower_length=lower_length,
      shoes_color=shoes_color, background_color=background_color,
      build=float(rng.uniform(0.88, 1.12)))


def swap_component(identity: Identity, donor: Identity, component: str) -> Identity:
  """`identity` with one component (see `COMPONENTS`) taken from `donor`."""
  if component not in _COMPONENT_FIELDS:
    raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
  return dataclasses.replace(
      identity, **{name: getattr(donor, name) for name in _COMPONENT_FIELDS[component]})


def _sample_arm(rng: np.random.Generator, style: str, swing: float = 0.0) -> ArmPose:
  u = rng.uniform
  if style == "hanging":
    return ArmPose(u(4, 16), rng.normal(0, 8), u(-4, 8), u(0, 20))
  if style == "walking":
    return ArmPose(u(5, 14), swing, u(-4, 4), u(5, 30))
  if style == "hip":  # hand on the hip, elbow out
    return ArmPose(u(35, 55), u(-10, 10), -u(75, 100), u(0, 25))
  if style == "raised":
    return ArmPose(u(110, 165), u(-10, 20), u(-20, 20), u(0, 30))
  if style == "front":  # forearm across the belly
    return ArmPose(u(5, 20), u(10, 30), -u(20, 60), u(50, 85))
  if style == "out":
    return ArmPose(u(45, 85), u(-10, 20), u(-20, 30), u(0, 40))
  if style == "wave":  # elbow out, forearm up
    return ArmPose(u(30, 70), u(-5, 20), u(80, 120), u(0, 20))
  raise ValueError(style)


def _sample_leg(rng: np.random.Generator, style: str) -> LegPose:
  u = rng.uniform
  if style == "standing":
    return LegPose(u(2, 8), rng.normal(0, 4), u(0, 6))
  if style == "apart":
    return LegPose(u(9, 18), rng.normal(0, 4), u(0, 8))
  if style == "bent":  # relaxed leg of a contrapposto stance
    return LegPose(u(0, 10), u(5, 25), u(15, 45))
  if style == "forward":  # front leg of a stride
    return LegPose(u(2, 7), u(12, 30), u(0, 15))
  if style == "back":
    return LegPose(u(2, 7), -u(10, 22), u(5, 25))
  raise ValueError(style)


# Per-joint probability that the "detector" misses a visible joint; torso joints are rarely missed.
_MISS_PROBABILITY = np.array([0.015, 0.005, 0.005, 0.02, 0.025, 0.005, 0.02, 0.025, 0.005, 0.02,
                              0.025, 0.005, 0.02, 0.025, 0.015, 0.015, 0.03, 0.03])


def sample_pose(rng: np.random.Generator) -> Pose:
  """Draws a view, a body pose and a framing; independent of the image size."""
  view = rng.choice(["front", "three_quarter", "side", "back"], p=[0.45, 0.25, 0.12, 0.18])
  turn = 1.0 if rng.random() < 0.5 else -1.0
  if view == "front":
    yaw = rng.normal(0, 8)
  elif view == "three_quarter":
    yaw = turn * rng.uniform(25, 55)
  elif view == "side":
    yaw = turn * rng.uniform(65, 90)
  else:
    yaw = 180.0 + rng.normal(0, 10)
  head_yaw = float(np.clip(rng.normal(0, 12), -30, 30))
  if view == "side" and rng.random() < 0.5:  # looking back over the shoulder at the camera
    head_yaw = -turn * rng.uniform(10, 35)

  kind = rng.choice(["stand", "walk", "gesture", "arms_up", "akimbo"],
                    p=[0.38, 0.25, 0.2, 0.07, 0.1])
  leg_styles = {"stand": ["standing", "apart", "bent"], "walk": None,
                "gesture": ["standing", "apart", "bent"], "arms_up": ["standing", "apart"],
                "akimbo": ["standing", "apart", "bent"]}[kind]
  if kind == "walk":
    swing = rng.uniform(15, 35)
    legs = [_sample_leg(rng, "forward"), _sample_leg(rng, "back")]
    arms = [_sample_arm(rng, "walking", -swing), _sample_arm(rng, "walking", swing * 0.8)]
  else:
    stance = str(rng.choice(leg_styles))
    legs = [_sample_leg(rng, stance), _sample_leg(rng, "standing" if stance == "bent" else stance)]
    if kind == "stand":
      arms = [_sample_arm(rng, str(rng.choice(["hanging", "hanging", "hip", "front"])))
              for _ in range(2)]
    elif kind == "gesture":
      arms = [_sample_arm(rng, str(rng.choice(["raised", "out", "wave"]))),
              _sample_arm(rng, str(rng.choice(["hanging", "hip", "front"])))]
    elif kind == "arms_up":
      arms = [_sample_arm(rng, "raised"), _sample_arm(rng, "raised")]
    else:
      arms = [_sample_arm(rng, "hip"), _sample_arm(rng, "hip")]
  if rng.random() < 0.5:  # which side does what
    arms.reverse()
  if rng.random() < 0.5:
    legs.reverse()

  framing = rng.random()
  if framing < 0.68:  # full body, feet in frame
    body_height, top = rng.uniform(0.8, 0.95), rng.uniform(0.02, 0.06)
  elif framing < 0.82:  # placed low: feet cut off by the frame
    body_height, top = rng.uniform(0.88, 1.02), rng.uniform(0.08, 0.2)
  else:  # close-up: legs cut at the shins or thighs
    body_height, top = rng.uniform(1.15, 1.6), rng.uniform(0.0, 0.06)
  raised = max(arms[0].shoulder_abduction + arms[0].elbow_abduction,
               arms[1].shoulder_abduction + arms[1].elbow_abduction)
  if raised > 100:  # keep raised hands mostly in frame
    top += 0.12 * body_height

  missed = tuple(int(i) for i in np.flatnonzero(rng.random(kp.NUM_KEYPOINTS) < _MISS_PROBABILITY))
  return Pose(
      yaw=float(yaw), head_yaw=float(head_yaw), head_tilt=float(np.clip(rng.normal(0, 5), -12, 12)),
      lean=float(np.clip(rng.normal(0, 3), -8, 8)),
      right_arm=arms[0], left_arm=arms[1], right_leg=legs[0], left_leg=legs[1],
      toe_out=float(rng.uniform(5, 20)), body_height=float(body_height), top=float(top),
      center_x=float(np.clip(0.5 + rng.normal(0, 0.035), 0.38, 0.62)), missed_joints=missed)


# ----------------------------------------------------------------------------
# Skeleton. Body frame in body-height units: origin at the pelvis (between the
# hip joints), x towards the person's left, y down, z towards the person's front.
# The camera looks along -z at an unturned body, orthographically.

_HEAD_Y = -0.434
_HEAD_RX, _HEAD_RY = 0.05, 0.066
_SHOULDER_Y = -0.305
_SHOULDER_X = 0.102
_HIP_X = 0.055
_UPPER_ARM, _FOREARM = 0.162, 0.142
_THIGH, _SHIN = 0.228, 0.228
_NECK_RADIUS = 0.021

# (y, front half-width, side half-depth) of the upper garment's outline, shoulders down.
_SHIRT_LEVELS = ((-0.326, 0.078, 0.05), (-0.3, 0.104, 0.058), (-0.26, 0.104, 0.062),
                 (-0.19, 0.094, 0.066), (-0.1, 0.082, 0.062), (0.0, 0.094, 0.064),
                 (0.045, 0.097, 0.066))
_COAT_LEVELS = _SHIRT_LEVELS[:-1] + ((0.08, 0.104, 0.07), (0.2, 0.116, 0.074))

# Face points on the head, (offset from the head centre, outward normal, facing threshold):
# a point is visible while its normal's facing (1 at the camera, -1 away) exceeds the threshold.
_FACE_POINTS = {
    "nose": ((0.0, 0.014, 0.054), (0.0, 0.0, 1.0), 0.0),
    "right_eye": ((-0.021, -0.004, 0.045), (-0.45, 0.0, 0.9), 0.12),
    "left_eye": ((0.021, -0.004, 0.045), (0.45, 0.0, 0.9), 0.12),
    # Ears stay detectable until the head turns about 25 degrees away from them.
    "right_ear": ((-0.045, 0.004, -0.004), (-1.0, 0.0, -0.1), -0.5),
    "left_ear": ((0.045, 0.004, -0.004), (1.0, 0.0, -0.1), -0.5),
}
_HAIRLINE = {"short": 0.42, "bob": 0.3, "long": 0.36, "bun": 0.5}
"""Height of the hairline above the head centre, in head half-heights."""

_EYE_INK = (36, 28, 28)
_SIDES = (("right", -1.0), ("left", 1.0))  # the person's side and its body-frame x sign


def _direction(abduction: float, flexion: float, side: float) -> np.ndarray:
  """Unit vector of a limb hanging down, swung `abduction` degrees sideways and `flexion` forwards."""
  a, f = math.radians(abduction), math.radians(flexion)
  return np.array([side * math.cos(f) * math.sin(a), math.cos(f) * math.cos(a), math.sin(f)])


def _rotate_2d(points: np.ndarray, angle: float, centre=(0.0, 0.0)) -> np.ndarray:
  """Rotates (..., 2) (x, y) points about `centre` by `angle` degrees (clockwise on screen, y down)."""
  c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
  centre = np.asarray(centre, np.float64)
  d = np.asarray(points, np.float64) - centre
  return np.stack([d[..., 0] * c - d[..., 1] * s, d[..., 0] * s + d[..., 1] * c], -1) + centre


class _Projector:
  """Turns body-frame points by a yaw and projects them: (..., 3) -> (..., 2) (x, y) and (...,) depth."""

  def __init__(self, yaw: float):
    self.cos, self.sin = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))

  def __call__(self, points) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(points, np.float64)
    x = p[..., 0] * self.cos + p[..., 2] * self.sin
    depth = -p[..., 0] * self.sin + p[..., 2] * self.cos  # larger is nearer the camera
    return np.stack([x, p[..., 1]], -1), depth

  def facing(self, normal) -> float:
    """How much a body-frame unit normal points at the camera (1 straight at it, -1 away)."""
    return float(-normal[0] * self.sin + normal[2] * self.cos)


@dataclasses.dataclass
class _Limb:
  """A projected limb in body units."""
  joints: np.ndarray  # (3, 2) (x, y): shoulder/elbow/wrist or hip/knee/ankle
  depth: float        # mean depth of the joints
  ends: np.ndarray    # (1, 2) hand centre, or (2, 2) heel and toe


@dataclasses.dataclass
class _Skeleton:
  """The projected body in body units (x, y), before scaling to pixels."""
  body: _Projector
  neck: np.ndarray                # (2,)
  arms: dict[str, _Limb]          # by side
  legs: dict[str, _Limb]
  head_centre: np.ndarray         # (2,)
  head_angle: float               # roll of the head in the image, degrees
  face_points: dict[str, tuple[np.ndarray, bool]]  # name -> ((2,), faces the camera)
  face_facing: float              # facing of the face's own normal, -1..1
  face_direction_x: float         # image-x component of the face's normal, -1..1


def _skeleton(identity: Identity, pose: Pose) -> _Skeleton:
  body = _Projector(pose.yaw)
  head = _Projector(pose.yaw + pose.head_yaw)

  def lean(points):  # the upper body rolls about the pelvis
    return _rotate_2d(points, pose.lean)

  arms = {}
  for side, sign in _SIDES:
    arm = getattr(pose, f"{side}_arm")
    shoulder = np.array([sign * _SHOULDER_X * identity.build, _SHOULDER_Y + 0.004, 0.0])
    upper_direction = _direction(arm.shoulder_abduction, arm.shoulder_flexion, sign)
    fore_direction = _direction(arm.shoulder_abduction + arm.elbow_abduction,
                                arm.shoulder_flexion + arm.elbow_flexion, sign)
    elbow = shoulder + _UPPER_ARM * upper_direction
    wrist = elbow + _FOREARM * fore_direction
    hand = wrist + 0.026 * fore_direction
    joints, depths = body(np.stack([shoulder, elbow, wrist]))
    arms[side] = _Limb(lean(joints), float(depths.mean()), lean(body(hand[None])[0]))

  legs = {}
  hip_x = _HIP_X * (0.5 + 0.5 * identity.build)
  toe_out = math.radians(pose.toe_out)
  for side, sign in _SIDES:
    leg = getattr(pose, f"{side}_leg")
    hip = np.array([sign * hip_x, 0.0, 0.0])
    knee = hip + _THIGH * _direction(leg.hip_abduction, leg.hip_flexion, sign)
    ankle = knee + _SHIN * _direction(leg.hip_abduction, leg.hip_flexion - leg.knee_flexion, sign)
    forward = np.array([sign * math.sin(toe_out), 0.0, math.cos(toe_out)])
    heel = ankle + np.array([0.0, 0.024, 0.0]) - 0.014 * forward
    toe = ankle + np.array([0.0, 0.03, 0.0]) + 0.055 * forward
    joints, depths = body(np.stack([hip, knee, ankle]))
    legs[side] = _Limb(joints, float(depths.mean()), body(np.stack([heel, toe]))[0])

  # The head tilts about the neck, then leans with the upper body; the face turns with the head.
  head_centre = lean(_rotate_2d(np.array([0.0, _HEAD_Y]), pose.head_tilt, (0.0, _SHOULDER_Y)))
  head_angle = pose.lean + pose.head_tilt
  face_points = {}
  for name, (offset, normal, threshold) in _FACE_POINTS.items():
    offset_xy, _ = head(np.array(offset))
    normal = np.array(normal) / np.linalg.norm(normal)
    face_points[name] = (head_centre + _rotate_2d(offset_xy, head_angle),
                         head.facing(normal) > threshold)
  return _Skeleton(
      body=body, neck=lean(body(np.array([0.0, _SHOULDER_Y, 0.0]))[0]), arms=arms, legs=legs,
      head_centre=head_centre, head_angle=head_angle, face_points=face_points,
      face_facing=head.facing(np.array([0.0, 0.0, 1.0])), face_direction_x=head.sin)


# ----------------------------------------------------------------------------
# Shapes: signed distances in pixels (negative inside) on a grid of pixel centres.
# Grids are `py` (h, 1) rows and `px` (1, w) columns; points are (x, y).

def _capsule_sdf(py, px, a, b, radius_a: float, radius_b: float) -> np.ndarray:
  """Tapered capsule from a to b; the radius interpolates along the segment."""
  dx, dy = b[0] - a[0], b[1] - a[1]
  length2 = dx * dx + dy * dy + 1e-9
  rx, ry = px - a[0], py - a[1]
  t = np.clip((rx * dx + ry * dy) / length2, 0.0, 1.0)
  return np.hypot(rx - t * dx, ry - t * dy) - (radius_a + (radius_b - radius_a) * t)


def _ellipse_sdf(py, px, centre, radius_x: float, radius_y: float, angle: float) -> np.ndarray:
  """Ellipse rotated by `angle` degrees; approximate distance, exact sign, good near the edge."""
  c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
  qx, qy = px - centre[0], py - centre[1]
  u = qx * c + qy * s
  v = -qx * s + qy * c
  k0 = np.hypot(u / radius_x, v / radius_y)
  k1 = np.hypot(u / (radius_x * radius_x), v / (radius_y * radius_y))
  return k0 * (k0 - 1.0) / np.maximum(k1, 1e-9)


def _polygon_sdf(py, px, vertices: np.ndarray, rounding: float = 0.0) -> np.ndarray:
  """Any simple polygon ((n, 2) (x, y) vertices), its edges offset outwards by `rounding`."""
  distance2 = None
  inside = np.zeros(np.broadcast_shapes(py.shape, px.shape), bool)
  for i in range(len(vertices)):
    ax, ay = vertices[i - 1]
    bx, by = vertices[i]
    dx, dy = bx - ax, by - ay
    rx, ry = px - ax, py - ay
    t = np.clip((rx * dx + ry * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
    d2 = (rx - t * dx) ** 2 + (ry - t * dy) ** 2
    distance2 = d2 if distance2 is None else np.minimum(distance2, d2)
    if ay != by:  # even-odd rule on a ray towards +x
      crosses = (ay > py) != (by > py)
      inside ^= crosses & (px < ax + (py - ay) * dx / dy)
  distance = np.sqrt(distance2)
  return np.where(inside, -distance, distance) - rounding


@dataclasses.dataclass
class _Part:
  """One painted shape, in pixels. `color` is an RGB (3,) array or `fn(py, px) -> (h, w, 3)`."""
  sdf: Callable[[np.ndarray, np.ndarray], np.ndarray]
  bounds: tuple[float, float, float, float]  # x0, y0, x1, y1
  color: np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]
  label: int  # LIP label
  owner: int  # body chain, see _OWNER_*
  outline: bool = True


# Which body chain painted a pixel; a joint covered by another chain is hidden from the detector.
_OWNER_BACKGROUND, _OWNER_TORSO, _OWNER_HEAD, _OWNER_PELVIS, _OWNER_SKIRT = 0, 1, 2, 3, 4
_OWNER_ARM = {"right": 5, "left": 6}
_OWNER_LEG = {"right": 7, "left": 8}

_JOINT_OWNERS = {
    "nose": {_OWNER_HEAD}, "right_eye": {_OWNER_HEAD}, "left_eye": {_OWNER_HEAD},
    "right_ear": {_OWNER_HEAD}, "left_ear": {_OWNER_HEAD},
    "right_elbow": {_OWNER_ARM["right"]}, "right_wrist": {_OWNER_ARM["right"]},
    "left_elbow": {_OWNER_ARM["left"]}, "left_wrist": {_OWNER_ARM["left"]},
    # A skirt or a coat over a knee does not stop a detector from finding it.
    "right_knee": {_OWNER_LEG["right"], _OWNER_SKIRT, _OWNER_TORSO},
    "left_knee": {_OWNER_LEG["left"], _OWNER_SKIRT, _OWNER_TORSO},
    "right_ankle": {_OWNER_LEG["right"], _OWNER_SKIRT},
    "left_ankle": {_OWNER_LEG["left"], _OWNER_SKIRT},
}
"""Chains that may paint over a joint without hiding it; the neck and torso joints are never hidden."""


def _capsules(segments, color, label: int, owner: int, outline: bool = True) -> _Part:
  """Union of tapered capsules [(a, b, radius_a, radius_b), ...]: one limb with one outline."""
  def sdf(py, px):
    distance = None
    for a, b, ra, rb in segments:
      d = _capsule_sdf(py, px, a, b, ra, rb)
      distance = d if distance is None else np.minimum(distance, d)
    return distance
  ends = np.array([p for a, b, _, _ in segments for p in (a, b)])
  r = max(max(ra, rb) for _, _, ra, rb in segments)
  low, high = ends.min(0) - r, ends.max(0) + r
  return _Part(sdf, (low[0], low[1], high[0], high[1]), color, label, owner, outline)


def _ellipse(centre, rx: float, ry: float, angle: float, color, label: int, owner: int,
             outline: bool = True) -> _Part:
  r = max(rx, ry)
  return _Part(lambda py, px: _ellipse_sdf(py, px, centre, rx, ry, angle),
               (centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r),
               color, label, owner, outline)


def _polygon(vertices, rounding: float, color, label: int, owner: int, outline: bool = True) -> _Part:
  vertices = np.asarray(vertices, np.float64)
  low, high = vertices.min(0) - rounding, vertices.max(0) + rounding
  return _Part(lambda py, px: _polygon_sdf(py, px, vertices, rounding),
               (low[0], low[1], high[0], high[1]), color, label, owner, outline)


def _clipped(part: _Part, clip: _Part) -> _Part:
  """`part` restricted to the inside of `clip`."""
  x0, y0, x1, y1 = part.bounds
  cx0, cy0, cx1, cy1 = clip.bounds
  return dataclasses.replace(
      part, sdf=lambda py, px: np.maximum(part.sdf(py, px), clip.sdf(py, px)),
      bounds=(max(x0, cx0), max(y0, cy0), min(x1, cx1), min(y1, cy1)))


def _garment_color(identity: Identity, origin: np.ndarray, scale: float):
  """Colour of the upper garment: RGB, or a pattern anchored at the neck that scales with the body."""
  base = np.array(identity.upper_color, np.float32)
  second = np.array(identity.upper_second_color, np.float32)
  if identity.upper_texture == "solid":
    return base
  period = identity.upper_pattern_period * scale
  texture = identity.upper_texture

  def color(py, px):
    v = (py - origin[1]) / period
    u = (px - origin[0]) / period
    if texture == "stripes":
      mask = np.broadcast_to((v % 1.0) < 0.4, np.broadcast_shapes(py.shape, px.shape))
    elif texture == "checks":
      mask = (np.floor(u) + np.floor(v)) % 2.0 == 0.0
    else:  # dots on a staggered grid
      shifted = (u + 0.5 * (np.floor(v) % 2.0)) % 1.0 - 0.5
      fv = v % 1.0 - 0.5
      mask = shifted * shifted + fv * fv < 0.27 ** 2
    return np.where(mask[..., None], second, base)
  return color


# ----------------------------------------------------------------------------
# The parts of one person, in pixels.

def _x_at_y(chain: np.ndarray, y: float) -> float:
  """x where the polyline ((n, 2) (x, y)) first reaches height y (its lowest point's x if never)."""
  for a, b in zip(chain[:-1], chain[1:]):
    if (a[1] - y) * (b[1] - y) <= 0 and a[1] != b[1]:
      return float(a[0] + (y - a[1]) * (b[0] - a[0]) / (b[1] - a[1]))
  return float(chain[np.argmax(chain[:, 1]), 0])


def _point_along(chain: np.ndarray, fraction: float) -> tuple[np.ndarray, int]:
  """Point at `fraction` of the polyline's length, and the index of the segment it lies on."""
  lengths = np.linalg.norm(np.diff(chain, axis=0), axis=1)
  target = fraction * lengths.sum()
  for i, length in enumerate(lengths):
    if target <= length or i == len(lengths) - 1:
      return chain[i] + min(target / max(length, 1e-9), 1.0) * (chain[i + 1] - chain[i]), i
    target -= length
  raise AssertionError("unreachable")


class _Painter:
  """Builds the shapes of one person: layers of parts, each layer with a depth (nearer is larger)."""

  def __init__(self, identity: Identity, pose: Pose, skeleton: _Skeleton, height: int, width: int):
    self.identity, self.pose, self.skeleton = identity, pose, skeleton
    self.scale = pose.body_height * height  # pixels per body-height unit
    self.origin = np.array([pose.center_x * width, pose.top * height + 0.5 * self.scale])
    self.skin = np.array(identity.skin_color, np.float32)
    self.neck = self.px(skeleton.neck)
    self.upper_color = _garment_color(identity, self.neck, self.scale)
    self.upper_label = LIP["coat"] if identity.upper_kind == "coat" else LIP["upper_clothes"]
    self.lower_color = np.array(identity.lower_color, np.float32)
    self.layers: list[tuple[float, list[_Part]]] = []

  def px(self, points) -> np.ndarray:
    """Body units (x, y) -> pixels (x, y)."""
    return self.origin + np.asarray(points) * self.scale

  def parts(self) -> list[_Part]:
    """All parts, far to near; layers of equal depth keep the order they were added in."""
    self._torso()
    self._legs()
    self._lower_garment()
    self._arms()
    self._head()
    order = sorted(range(len(self.layers)), key=lambda i: self.layers[i][0])
    return [part for i in order for part in self.layers[i][1]]

  def _torso(self):
    # The outline is the ellipse silhouette of each level at this yaw; levels above the
    # hips lean with the upper body.
    body, s = self.skeleton.body, self.scale
    lean = math.radians(self.pose.lean)
    across = np.array([math.cos(lean), math.sin(lean)])
    rounding = 0.022
    levels = _COAT_LEVELS if self.identity.upper_kind == "coat" else _SHIRT_LEVELS
    left_side, right_side = [], []
    for i, (y, half_width, half_depth) in enumerate(levels):
      if y < 0.0:
        half_width *= self.identity.build
      if i == 0:
        y += rounding
      elif i == len(levels) - 1:
        y -= rounding
      centre = _rotate_2d(np.array([0.0, y]), self.pose.lean) if y < 0.05 else np.array([0.0, y])
      apparent = math.hypot(half_width * body.cos, half_depth * body.sin) - rounding
      left_side.append(centre + apparent * across)
      right_side.append(centre - apparent * across)
    outline = self.px(np.array(left_side + right_side[::-1]))
    self.layers.append((0.0, [_polygon(outline, rounding * s, self.upper_color, self.upper_label,
                                       _OWNER_TORSO)]))

  def _legs(self):
    # Legs go under the torso whatever the view, so the shirt hem always covers the waistband;
    # between themselves the nearer leg is painted last.
    identity, s = self.identity, self.scale
    shoes = np.array(identity.shoes_color, np.float32)
    for side, _ in _SIDES:
      leg = self.skeleton.legs[side]
      chain = self.px(leg.joints)
      owner = _OWNER_LEG[side]
      parts = []
      if identity.lower_kind != "pants":
        parts.append(_capsules([(chain[0], chain[1], 0.047 * s, 0.034 * s),
                                (chain[1], chain[2], 0.033 * s, 0.024 * s)],
                               self.skin, LIP[f"{side}_leg"], owner))
      heel, toe = self.px(leg.ends)
      parts.append(_capsules([(heel, toe, 0.027 * s, 0.024 * s)], shoes, LIP[f"{side}_shoe"], owner))
      if identity.lower_kind != "skirt":
        # Pant legs run from the hip down to the hem, tapering as the leg does.
        hem, last = _point_along(chain, identity.lower_length)
        radii = ((0.053, 0.042), (0.04, 0.033))
        segments = []
        for i in range(last + 1):
          end = hem if i == last else chain[i + 1]
          t = min(1.0, np.linalg.norm(end - chain[i]) / max(np.linalg.norm(chain[i + 1] - chain[i]), 1e-9))
          ra, rb = radii[i]
          segments.append((chain[i], end, ra * s, (ra + t * (rb - ra)) * s))
        parts.append(_capsules(segments, self.lower_color, LIP["pants"], owner))
      self.layers.append((-1.0 + leg.depth, parts))

  def _lower_garment(self):
    # Silhouette half-widths of the waist and the hips at this yaw, inside the shirt's.
    body = self.skeleton.body
    waist = math.hypot(0.074 * body.cos, 0.052 * body.sin)
    hips = math.hypot(0.088 * body.cos, 0.056 * body.sin)
    rounding = 0.01 * self.scale
    if self.identity.lower_kind == "skirt":
      # The hem spans both legs at its height plus a flare, so a stride widens the skirt.
      hem_y = self.identity.lower_length * (_THIGH + _SHIN)
      leg_xs = [_x_at_y(self.skeleton.legs[side].joints, hem_y) for side, _ in _SIDES]
      flare = 0.03 + 0.06 * self.identity.lower_length
      hem_right = max(max(leg_xs) + 0.045 + flare, hips + 0.015)  # image right
      hem_left = min(min(leg_xs) - 0.045 - flare, -hips - 0.015)
      outline = [(-waist, -0.075), (waist, -0.075), (hips + 0.01, 0.03), (hem_right, hem_y),
                 (hem_left, hem_y), (-hips - 0.01, 0.03)]
      self.layers.append((-0.5, [_polygon(self.px(np.array(outline)), rounding, self.lower_color,
                                          LIP["skirt"], _OWNER_SKIRT)]))
    else:
      # The seat of the pants, drawn without an outline so it merges with the pant legs.
      outline = [(-waist, -0.075), (waist, -0.075), (hips, 0.035), (0.35 * hips, 0.085),
                 (-0.35 * hips, 0.085), (-hips, 0.035)]
      self.layers.append((-0.6, [_polygon(self.px(np.array(outline)), rounding, self.lower_color,
                                          LIP["pants"], _OWNER_PELVIS, outline=False)]))

  def _arms(self):
    # Skin, hand, then the sleeve over them. The small depth bias puts arms hanging beside
    # the body in front of the torso's edge.
    s = self.scale
    for side, _ in _SIDES:
      arm = self.skeleton.arms[side]
      chain = self.px(arm.joints)
      label, owner = LIP[f"{side}_arm"], _OWNER_ARM[side]
      parts = [
          _capsules([(chain[0], chain[1], 0.027 * s, 0.022 * s),
                     (chain[1], chain[2], 0.022 * s, 0.017 * s)], self.skin, label, owner),
          _ellipse(self.px(arm.ends[0]), 0.02 * s, 0.02 * s, 0.0, self.skin, label, owner),
      ]
      if self.identity.sleeves == "long":
        sleeve = [(chain[0], chain[1], 0.031 * s, 0.028 * s), (chain[1], chain[2], 0.028 * s, 0.024 * s)]
      else:
        sleeve = [(chain[0], chain[0] + 0.45 * (chain[1] - chain[0]), 0.031 * s, 0.03 * s)]
      parts.append(_capsules(sleeve, self.upper_color, self.upper_label, owner))
      self.layers.append((0.012 + arm.depth, parts))

  def _head(self):
    # Neck, hair volume, the head in hair colour, the face's skin clipped to the head, eyes, hat.
    identity, skeleton = self.identity, self.skeleton
    hair = np.array(identity.hair_color, np.float32)
    centre = self.px(skeleton.head_centre)
    angle = skeleton.head_angle
    rx, ry = _HEAD_RX * self.scale, _HEAD_RY * self.scale

    def at(u, v):  # head-local offset in pixels -> image point
      return centre + _rotate_2d(np.array([u, v]), angle)

    toward = skeleton.face_direction_x  # the face looks this way along image x
    behind = -toward  # hair mass sits behind the face
    chin = at(0.0, 0.55 * ry)
    collar = self.neck + (chin - self.neck) * 0.2  # only a little skin shows at the neckline
    parts = [_capsules([(chin, collar, _NECK_RADIUS * self.scale, _NECK_RADIUS * self.scale * 1.1)],
                       self.skin, LIP["face"], _OWNER_HEAD)]
    style = identity.hair_style
    if style == "short":
      volume = [(0.12 * behind, -0.1, 1.08, 1.0)]
    elif style in ("bob", "long"):
      volume = [(0.15 * behind, 0.12, 1.28, 1.14)]
    else:  # bun
      volume = [(0.1 * behind, -0.08, 1.07, 1.0), (0.55 * behind, -0.95, 0.5, 0.42)]
    for u, v, scale_x, scale_y in volume:
      parts.append(_ellipse(at(u * rx, v * ry), scale_x * rx, scale_y * ry, angle, hair, LIP["hair"],
                            _OWNER_HEAD))
    head = _ellipse(centre, rx, ry, angle, hair, LIP["hair"], _OWNER_HEAD)
    parts.append(head)
    facing = skeleton.face_facing
    if facing > -0.2:
      # The face narrows and slides towards the side it looks to as the head turns away.
      visibility = min(1.0, (facing + 0.2) / 1.2)
      face_rx = rx * (0.5 + 0.42 * visibility)
      hairline = _HAIRLINE[style]
      face = _ellipse(at((rx - face_rx) * toward, 0.5 * (1.05 - hairline) * ry), face_rx,
                      0.5 * (1.05 + hairline) * ry, angle, self.skin, LIP["face"], _OWNER_HEAD)
      parts.append(_clipped(face, head))
    if facing > 0.3 and ry >= 3.0:  # eyes: only where they are more than a smudge
      eye_radius = max(0.45, 0.0075 * self.scale)
      ink = np.array(_EYE_INK, np.float32)
      for name in ("right_eye", "left_eye"):
        point, faces_camera = skeleton.face_points[name]
        if faces_camera:
          parts.append(_ellipse(self.px(point), eye_radius, eye_radius * 1.2, angle, ink, LIP["face"],
                                _OWNER_HEAD, outline=False))
    if identity.hat_color is not None:
      hat = np.array(identity.hat_color, np.float32)
      dome = _ellipse(at(0.0, -0.42 * ry), 1.12 * rx, 0.7 * ry, angle, hat, LIP["hat"], _OWNER_HEAD)
      above_brim = _polygon(np.array([at(-2 * rx, -2 * ry), at(2 * rx, -2 * ry), at(2 * rx, -0.3 * ry),
                                      at(-2 * rx, -0.3 * ry)]), 0.0, hat, LIP["hat"], _OWNER_HEAD)
      parts.append(_clipped(dome, above_brim))
      brim_shift = 0.45 * rx * toward  # the peak points where the face looks
      parts.append(_ellipse(at(brim_shift, -0.32 * ry), 1.2 * rx + abs(brim_shift) * 0.6, 0.14 * ry,
                            angle, hat, LIP["hat"], _OWNER_HEAD))
    self.layers.append((0.006, parts))

    if style == "long":
      # Hair down the back: behind the torso seen from the front, over it seen from behind.
      u = 0.35 * rx * behind
      drape = np.array([at(u - 0.75 * rx, -0.2 * ry), at(u + 0.75 * rx, -0.2 * ry),
                        at(u + 0.95 * rx, 2.3 * ry), at(u - 0.95 * rx, 2.3 * ry)])
      depth = -0.05 * facing
      self.layers.append((depth + (0.01 if depth > 0 else 0.0),
                          [_polygon(drape, 0.45 * rx, hair, LIP["hair"], _OWNER_HEAD)]))

  def keypoints(self) -> tuple[np.ndarray, np.ndarray]:
    """(18, 2) float (x, y) pixel positions and (18,) bool: the joint faces the camera."""
    points = np.zeros((kp.NUM_KEYPOINTS, 2))
    facing = np.ones(kp.NUM_KEYPOINTS, bool)
    index = kp.KEYPOINT_INDEX
    points[index["neck"]] = self.neck
    for side, _ in _SIDES:
      for joint, point in zip(("shoulder", "elbow", "wrist"), self.px(self.skeleton.arms[side].joints)):
        points[index[f"{side}_{joint}"]] = point
      for joint, point in zip(("hip", "knee", "ankle"), self.px(self.skeleton.legs[side].joints)):
        points[index[f"{side}_{joint}"]] = point
    for name, (point, faces_camera) in self.skeleton.face_points.items():
      points[index[name]] = self.px(point)
      facing[index[name]] = faces_camera
    return points, facing


def _paint(parts: list[_Part], background: np.ndarray, height: int, width: int,
           outline_width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Paints parts in order with anti-aliased edges.

  Returns:
    image: (H, W, 3) float32 in 0..255.
    labels: (H, W) uint8, the LIP label of the part contributing most to each pixel's colour.
    owners: (H, W) uint8, the body chain of that part.
  """
  image = np.empty((height, width, 3), np.float32)
  image[...] = background
  labels = np.zeros((height, width), np.uint8)
  owners = np.zeros((height, width), np.uint8)
  # Share of the labelled part in each pixel's colour: every later part scales it by
  # (1 - alpha), and a part takes the label where its own alpha beats what is left.
  label_weight = np.ones((height, width), np.float32)
  for part in parts:
    x0, y0, x1, y1 = part.bounds
    x0, y0 = max(0, int(math.floor(x0)) - 1), max(0, int(math.floor(y0)) - 1)
    x1, y1 = min(width, int(math.ceil(x1)) + 2), min(height, int(math.ceil(y1)) + 2)
    if x0 >= x1 or y0 >= y1:
      continue
    py = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    px = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    distance = part.sdf(py, px)
    alpha = np.clip(0.5 - distance, 0.0, 1.0).astype(np.float32)
    if not alpha.any():
      continue
    color = part.color(py, px) if callable(part.color) else part.color
    if part.outline:
      # A darker rim lets same-coloured parts (a sleeve over the shirt) read as separate.
      shade = (1.0 - 0.28 * np.clip(1.0 + distance / outline_width, 0.0, 1.0)).astype(np.float32)
      color = np.asarray(color, np.float32) * shade[..., None]
    region = image[y0:y1, x0:x1]
    region += (color - region) * alpha[..., None]
    remaining = label_weight[y0:y1, x0:x1] * (1.0 - alpha)
    take = alpha > remaining
    remaining[take] = alpha[take]
    label_weight[y0:y1, x0:x1] = remaining
    labels[y0:y1, x0:x1][take] = part.label
    owners[y0:y1, x0:x1][take] = part.owner
  return image, labels, owners


def render(identity: Identity, pose: Pose, height: int, width: int) -> dict:
  """Renders one person; the pose's proportions scale with the image height.

  Returns:
    {'image': (H, W, 3) uint8 RGB,
     'parsing': (H, W) uint8 LIP labels (`parsing.LIP_LABELS`),
     'keypoints': (18, 2) int32 (y, x) pixels in COCO-18/OpenPose order; (-1, -1) where a
       joint is out of frame, faces away from the camera, is covered by another body part,
       or is in `pose.missed_joints`}.
  """
  if height < 8 or width < 8:
    raise ValueError(f"image size must be at least 8x8, got {height}x{width}")
  painter = _Painter(identity, pose, _skeleton(identity, pose), height, width)
  image, labels, owners = _paint(painter.parts(), np.array(identity.background_color, np.float32),
                                 height, width, outline_width=max(0.8, 0.008 * painter.scale))

  points, present = painter.keypoints()
  keypoints = np.floor(points[:, ::-1]).astype(np.int32)  # (x, y) -> (y, x) pixel indices
  present &= ((keypoints[:, 0] >= 0) & (keypoints[:, 0] < height) &
              (keypoints[:, 1] >= 0) & (keypoints[:, 1] < width))
  for name, allowed in _JOINT_OWNERS.items():
    i = kp.KEYPOINT_INDEX[name]
    if present[i]:
      owner = owners[keypoints[i, 0], keypoints[i, 1]]
      present[i] = owner == _OWNER_BACKGROUND or owner in allowed
  present[list(pose.missed_joints)] = False
  keypoints[~present] = kp.MISSING
  return {
      "image": np.clip(np.round(image), 0, 255).astype(np.uint8),
      "parsing": labels,
      "keypoints": keypoints,
  }


# Stream tags keep identity and pose seeds apart: numpy's SeedSequence treats trailing
# zero words as absent, so (seed, k) and (seed, k, 0) would give the same generator.
_IDENTITY_STREAM = 0x1D
_POSE_STREAM = 0x905E


def identity_rng(seed: int, identity: int) -> np.random.Generator:
  """The generator that draws identity `identity`'s appearance for dataset seed `seed`."""
  return np.random.default_rng((_IDENTITY_STREAM, seed, identity))


def pose_rng(seed: int, identity: int, pose_index: int) -> np.random.Generator:
  """The generator that draws pose `pose_index` of identity `identity`."""
  return np.random.default_rng((_POSE_STREAM, seed, identity, pose_index))


def generate_people(seed: int, num_identities: int, poses_per_identity: int, height: int, width: int,
                    first_identity: int = 0) -> Iterator[dict]:
  """Renders identities first_identity .. first_identity + num_identities - 1, each in several poses.

  Identity k depends only on (seed, k) and its pose j only on (seed, k, j), so any
  identity can be regenerated alone and a seed always gives the same images.

  Yields:
    Identity by identity, pose by pose: `render`'s dict plus 'identity' (int k),
    'pose_index' (int j) and 'name' (e.g. 'synth_id00042_pose03').
  """
  if seed < 0 or first_identity < 0:
    raise ValueError(f"seed and first_identity must be non-negative, got {seed} and {first_identity}")
  for k in range(first_identity, first_identity + num_identities):
    identity = sample_identity(identity_rng(seed, k))
    for j in range(poses_per_identity):
      person = render(identity, sample_pose(pose_rng(seed, k, j)), height, width)
      person.update(identity=k, pose_index=j, name=f"synth_id{k:05d}_pose{j:02d}")
      yield person
