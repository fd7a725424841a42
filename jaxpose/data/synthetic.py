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

Two styles (`Identity.style`): "realistic" (the default: the DeepFashion stand-in,
painted with soft darkening rims) and "anime" (the stand-in for users' 3D-anime
characters: cel shading with flat colours, one hard shadow band and ink outlines,
a head a sixth of the height with large highlighted eyes, longer legs and slimmer
limbs, saturated hair in twin tails or ponytails, sailor or blazer uniforms, knee
socks). Both share the pose, the keypoint conventions and the LIP labels; the
anime style only adds its own proportions (`_Proportions`), painter and shader,
so the realistic style renders the same bytes as before it existed.

Everything is deterministic: `generate_people(seed, ...)` draws identity k from
(seed, k) and its pose j from (seed, k, j) alone, so any person can be
regenerated without the others and a seed gives bit-identical images.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
import re
from typing import Callable, Iterable, Iterator

import numpy as np

from jaxpose.data import keypoints as kp
from jaxpose.data.parsing import LIP

RGB = tuple[int, int, int]

STYLES = ("realistic", "anime")
TEXTURES = ("solid", "stripes", "checks", "dots")
SLEEVE_LENGTHS = ("short", "long")
UPPER_KINDS = ("shirt", "coat")
LOWER_KINDS = ("pants", "shorts", "skirt")
HAIR_STYLES = ("short", "bob", "long", "bun")
COMPONENTS = ("upper_clothes", "lower", "hair", "shoes", "skin", "background")
ANIME_HAIR_STYLES = ("twin_tails", "ponytail", "long", "bob", "short")
ANIME_UPPER_KINDS = ("sailor", "blazer", "shirt")
"""A sailor top (LIP upper_clothes: collar and ribbon included), a blazer (LIP coat) open over a
shirt and tie (upper_clothes), or a plain shirt; the anime lower kinds are `LOWER_KINDS`."""

UPPER_CLOTHES_LABELS = (LIP["upper_clothes"], LIP["coat"])
"""LIP labels an upper garment of this renderer can carry (sleeves included)."""
LOWER_LABELS = (LIP["pants"], LIP["skirt"])
"""LIP labels a lower garment of this renderer can carry."""


# The renderer's component behind each parsing label, by name in LIP and in ADGAN's 8 components
# (`jaxpose.data.parsing`): a hat goes with the hair, shoes with the legs in ADGAN's "leg".
_LABEL_COMPONENTS = {
    "background": ("background",), "hat": ("hair",), "hair": ("hair",),
    "upper_clothes": ("upper_clothes",), "dress": ("upper_clothes",), "coat": ("upper_clothes",),
    "pants": ("lower",), "skirt": ("lower",),
    "face": ("skin",), "arm": ("skin",), "left_arm": ("skin",), "right_arm": ("skin",),
    "leg": ("skin", "shoes"), "left_leg": ("skin",), "right_leg": ("skin",),
    "left_shoe": ("shoes",), "right_shoe": ("shoes",), "socks": ("shoes",),
}


def components_of_labels(labels: Iterable[str]) -> tuple[str, ...]:
  """The `COMPONENTS` that paint parsing labels `labels` (LIP or adgan8 names), in `COMPONENTS` order.

  E.g. ("pants", "skirt") -> ("lower",): swapping a person's pants and skirt for
  a donor's is, in the renderer, taking the donor's lower garment.
  """
  labels = list(labels)
  unknown = [name for name in labels if name not in _LABEL_COMPONENTS]
  if unknown:
    raise ValueError(f"parsing labels {unknown} have no renderer component; known: {sorted(_LABEL_COMPONENTS)}")
  wanted = {c for name in labels for c in _LABEL_COMPONENTS[name]}
  return tuple(c for c in COMPONENTS if c in wanted)


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
    style: one of `STYLES`: how the person is drawn and proportioned; like the build, no
      component swaps it.
    eye_color: the iris (anime; the realistic style draws dark dots).
    accent_color: the sailor collar's ribbon or the blazer's tie (anime), or None.
    socks_color, socks_length: socks (LIP socks) up the leg from the ankle, `socks_length`
      a fraction of the ankle-to-hip length (anime), or None and 0.
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
  style: str = "realistic"
  eye_color: RGB | None = None
  accent_color: RGB | None = None
  socks_color: RGB | None = None
  socks_length: float = 0.0


_COMPONENT_FIELDS = {
    "upper_clothes": ("upper_kind", "upper_color", "upper_second_color", "upper_texture",
                      "upper_pattern_period", "sleeves", "accent_color"),
    "lower": ("lower_kind", "lower_color", "lower_length"),
    "hair": ("hair_color", "hair_style", "hat_color"),
    "shoes": ("shoes_color", "socks_color", "socks_length"),
    "skin": ("skin_color", "eye_color"),
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


def sample_identity(rng: np.random.Generator, style: str = "realistic") -> Identity:
  """Draws a person's appearance, with colours kept apart so the parts are easy to tell apart."""
  if style == "anime":
    return _sample_anime_identity(rng)
  if style != "realistic":
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
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


# Anime palettes: saturated hair and eyes, pale skin, school-uniform cloth.
ANIME_HAIR_COLORS = {
    "pink": (246, 142, 184), "blue": (82, 136, 232), "silver": (208, 212, 228),
    "lavender": (170, 138, 226), "mint": (110, 210, 180), "blonde": (250, 212, 104),
    "red": (212, 56, 68), "black": (46, 44, 70), "orange": (246, 144, 60), "teal": (36, 156, 168),
}
"""Named hair colours of the anime style (the names let a character folder say who is who)."""
_ANIME_EYE_COLORS = np.array([(46, 108, 222), (36, 160, 92), (204, 42, 64), (136, 68, 204),
                              (222, 146, 30), (22, 150, 166)], np.float64)
_ANIME_SKIN_TONES = np.array([(255, 238, 228), (253, 228, 212), (248, 218, 196), (238, 200, 172)],
                             np.float64)
_UNIFORM_DARK = np.array([(36, 48, 100), (30, 32, 42), (40, 86, 70), (112, 36, 52)], np.float64)
_UNIFORM_WHITE = (248, 248, 250)
_RIBBON_COLORS = np.array([(214, 40, 56), (244, 118, 160), (246, 196, 48), (64, 150, 230),
                           (40, 160, 110)], np.float64)
_BLAZER_COLORS = np.array([(40, 50, 96), (96, 64, 44), (108, 110, 124), (120, 38, 52),
                           (200, 178, 140)], np.float64)
_SKIRT_COLORS = np.array([(40, 52, 100), (46, 88, 70), (118, 118, 138), (132, 40, 58),
                          (34, 34, 44), (188, 52, 64)], np.float64)
_SOCKS_COLORS = np.array([(32, 30, 40), (38, 46, 92), (246, 246, 248)], np.float64)
_ANIME_SHOE_COLORS = np.array([(104, 60, 40), (30, 28, 34), (246, 244, 240), (206, 52, 64)], np.float64)


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float = 4.0) -> RGB:
  color = palette[rng.integers(len(palette))] + rng.normal(0, jitter, 3)
  return tuple(int(c) for c in np.clip(np.round(color), 0, 255))


def _sample_anime_identity(rng: np.random.Generator) -> Identity:
  """Draws an anime character: saturated hair, large coloured eyes, a school uniform or a shirt."""
  skin_color = _pick(rng, _ANIME_SKIN_TONES, 2.0)
  hair_name = str(rng.choice(list(ANIME_HAIR_COLORS)))
  hair_color = _pick(rng, np.array([ANIME_HAIR_COLORS[hair_name]], np.float64), 5.0)
  hair_style = str(rng.choice(ANIME_HAIR_STYLES, p=[0.24, 0.2, 0.24, 0.16, 0.16]))
  eye_color = _pick(rng, _ANIME_EYE_COLORS, 6.0)

  upper_kind = str(rng.choice(ANIME_UPPER_KINDS, p=[0.45, 0.3, 0.25]))
  upper_texture, upper_pattern_period = "solid", 0.04
  if upper_kind == "sailor":
    winter = rng.random() < 0.4
    collar = _pick(rng, _UNIFORM_DARK)
    upper_color = collar if winter else _UNIFORM_WHITE
    upper_second_color = collar
    accent_color = _pick(rng, _RIBBON_COLORS)
    sleeves = "long" if winter else "short"
  elif upper_kind == "blazer":
    upper_color = _pick(rng, _BLAZER_COLORS)
    upper_second_color = _UNIFORM_WHITE if rng.random() < 0.7 else (214, 228, 248)
    accent_color = _distinct_color(rng, lambda: _RIBBON_COLORS[rng.integers(len(_RIBBON_COLORS))],
                                   [upper_color], 80.0)
    sleeves = "long"
  else:
    upper_color = _distinct_color(rng, lambda: _hsv_color(rng, (0.45, 0.85), (0.6, 0.95)),
                                  [skin_color, hair_color], 70.0)
    upper_second_color = _UNIFORM_WHITE
    accent_color = None
    upper_texture = "stripes" if rng.random() < 0.35 else "solid"
    upper_pattern_period = float(rng.uniform(0.03, 0.045))
    sleeves = "short"

  lower_kind = str(rng.choice(LOWER_KINDS, p=[0.2, 0.15, 0.65]))
  if lower_kind == "skirt":
    lower_color = _distinct_color(rng, lambda: _SKIRT_COLORS[rng.integers(len(_SKIRT_COLORS))],
                                  [upper_color], 40.0)
    lower_length = float(rng.uniform(0.24, 0.42))
  elif lower_kind == "shorts":
    lower_color = _pick(rng, np.array([(62, 92, 150), (40, 42, 52), (196, 176, 132)], np.float64))
    lower_length = float(rng.uniform(0.2, 0.3))
  else:
    lower_color = _pick(rng, np.array([(34, 36, 48), (40, 52, 96), (180, 160, 120)], np.float64))
    lower_length = 1.0

  socks_color, socks_length = None, 0.0
  if lower_kind != "pants" and rng.random() < 0.75:
    socks_color = _pick(rng, _SOCKS_COLORS, 2.0)
    # Knee socks or thigh-highs, always ending a little below the hem.
    socks_length = float(rng.uniform(0.4, 0.48) if rng.random() < 0.6 else rng.uniform(0.6, 0.7))
    socks_length = min(socks_length, 0.9 - lower_length)
  shoes_color = _pick(rng, _ANIME_SHOE_COLORS, 3.0)

  background = _distinct_color(rng, lambda: _hsv_color(rng, (0.06, 0.22), (0.93, 1.0)),
                               [upper_color, hair_color, skin_color, lower_color], 45.0)
  return Identity(
      skin_color=skin_color, hair_color=hair_color, hair_style=hair_style, hat_color=None,
      upper_kind=upper_kind, upper_color=upper_color, upper_second_color=upper_second_color,
      upper_texture=upper_texture, upper_pattern_period=upper_pattern_period, sleeves=sleeves,
      lower_kind=lower_kind, lower_color=lower_color, lower_length=lower_length,
      shoes_color=shoes_color, background_color=background, build=float(rng.uniform(0.94, 1.06)),
      style="anime", eye_color=eye_color, accent_color=accent_color, socks_color=socks_color,
      socks_length=socks_length)


def anime_hair_name(identity: Identity) -> str:
  """The `ANIME_HAIR_COLORS` name nearest to the identity's hair colour."""
  return min(ANIME_HAIR_COLORS, key=lambda name: _color_distance(ANIME_HAIR_COLORS[name], identity.hair_color))


def swap_component(identity: Identity, donor: Identity, component: str) -> Identity:
  """`identity` with one component (see `COMPONENTS`) taken from `donor`, both of one style."""
  if component not in _COMPONENT_FIELDS:
    raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
  if identity.style != donor.style:
    # Each style has its own garments and hair styles: a sailor top has no realistic drawing.
    raise ValueError(f"components swap within a style; got {identity.style!r} and {donor.style!r}")
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


@dataclasses.dataclass(frozen=True)
class _Proportions:
  """A style's skeleton in body units (see the frame above); the painter adds the flesh."""
  head_y: float
  head_rx: float
  head_ry: float
  shoulder_y: float
  shoulder_x: float
  hip_x: float
  hip_y: float  # the hip joints' height: above 0 the legs are longer than half the body
  upper_arm: float
  forearm: float
  thigh: float
  shin: float
  hand: float  # wrist to hand centre
  foot: float  # scales the heel and toe offsets from the ankle
  face_points: dict  # as _FACE_POINTS


_REALISTIC_PROPORTIONS = _Proportions(
    head_y=_HEAD_Y, head_rx=_HEAD_RX, head_ry=_HEAD_RY, shoulder_y=_SHOULDER_Y, shoulder_x=_SHOULDER_X,
    hip_x=_HIP_X, hip_y=0.0, upper_arm=_UPPER_ARM, forearm=_FOREARM, thigh=_THIGH, shin=_SHIN, hand=0.026,
    foot=1.0, face_points=_FACE_POINTS)

# The anime body: a head about a sixth of the height (wider and rounder), a short neck and
# torso, hips above the middle so the legs are longer than half the body, narrow shoulders.
_ANIME_HEAD_RX, _ANIME_HEAD_RY = 0.074, 0.088
_ANIME_EYE_LONGITUDE, _ANIME_EYE_HEIGHT = 27.0, 0.2


def _head_surface(longitude: float, height: float, depth: float = 1.0) -> tuple[float, float, float]:
  """Body-unit offset from the anime head's centre of the point at `longitude` degrees (+ towards
  the person's left), `height` head half-heights below the centre and `depth` head radii out."""
  a = math.radians(longitude)
  r = depth * _ANIME_HEAD_RX
  return (r * math.sin(a), height * _ANIME_HEAD_RY, r * math.cos(a))


def _outward(longitude: float) -> tuple[float, float, float]:
  a = math.radians(longitude)
  return (math.sin(a), 0.0, math.cos(a))


# Every point lies inside the painted head whatever the turn: the nose a little under the face's
# surface (so a profile keeps it on the face), the ears inside the hair.
_ANIME_FACE_POINTS = {
    "nose": (_head_surface(0.0, 0.45, 0.88), (0.0, 0.0, 1.0), 0.0),
    "right_eye": (_head_surface(-_ANIME_EYE_LONGITUDE, _ANIME_EYE_HEIGHT), _outward(-_ANIME_EYE_LONGITUDE), 0.2),
    "left_eye": (_head_surface(_ANIME_EYE_LONGITUDE, _ANIME_EYE_HEIGHT), _outward(_ANIME_EYE_LONGITUDE), 0.2),
    "right_ear": ((-0.86 * _ANIME_HEAD_RX, 0.12 * _ANIME_HEAD_RY, -0.1 * _ANIME_HEAD_RX), (-1.0, 0.0, -0.1), -0.5),
    "left_ear": ((0.86 * _ANIME_HEAD_RX, 0.12 * _ANIME_HEAD_RY, -0.1 * _ANIME_HEAD_RX), (1.0, 0.0, -0.1), -0.5),
}

_ANIME_PROPORTIONS = _Proportions(
    head_y=-0.5 + _ANIME_HEAD_RY * 0.98, head_rx=_ANIME_HEAD_RX, head_ry=_ANIME_HEAD_RY, shoulder_y=-0.292,
    shoulder_x=0.08, hip_x=0.05, hip_y=-0.045, upper_arm=0.152, forearm=0.138, thigh=0.245, shin=0.245,
    hand=0.018, foot=0.8, face_points=_ANIME_FACE_POINTS)

_PROPORTIONS = {"realistic": _REALISTIC_PROPORTIONS, "anime": _ANIME_PROPORTIONS}

# (y, front half-width, side half-depth) of the anime tops: a sailor top or shirt ends at the
# waist over the skirt's waistband; a blazer reaches below the hips.
_ANIME_TOP_LEVELS = ((-0.31, 0.05, 0.04), (-0.288, 0.082, 0.048), (-0.25, 0.082, 0.054),
                     (-0.2, 0.067, 0.05), (-0.15, 0.06, 0.046), (-0.1, 0.066, 0.048))
_ANIME_BLAZER_LEVELS = _ANIME_TOP_LEVELS[:-1] + ((-0.1, 0.07, 0.05), (-0.02, 0.082, 0.056),
                                                 (0.02, 0.085, 0.058))
_ANIME_WAIST_Y = -0.135
_ANIME_FACE_OUTLINE = ((-85, -0.4), (-84, 0.1), (-77, 0.38), (-63, 0.6), (-44, 0.8), (-23, 0.94), (0, 1.0),
                       (23, 0.94), (44, 0.8), (63, 0.6), (77, 0.38), (84, 0.1), (85, -0.4), (58, -0.7),
                       (0, -0.75), (-58, -0.7))
"""(longitude in degrees, height in head half-heights) around the face: cheeks and a narrow chin."""
_SHORT_HAIR_SPIKES = ((150, 185, 140, 1.22), (175, 210, 172, 1.3), (200, 235, 205, 1.36),
                      (228, 262, 240, 1.4), (255, 290, 278, 1.38), (282, 318, 312, 1.33),
                      (310, 345, 348, 1.26), (338, 370, 378, 1.18), (0, 32, 40, 1.12))
"""(base start, base end, tip direction in degrees from the head's +x, clockwise; tip radius in
cranium radii) of the short style's locks."""


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
  p = _PROPORTIONS[identity.style]
  body = _Projector(pose.yaw)
  head = _Projector(pose.yaw + pose.head_yaw)

  def lean(points):  # the upper body rolls about the pelvis
    return _rotate_2d(points, pose.lean)

  arms = {}
  for side, sign in _SIDES:
    arm = getattr(pose, f"{side}_arm")
    shoulder = np.array([sign * p.shoulder_x * identity.build, p.shoulder_y + 0.004, 0.0])
    upper_direction = _direction(arm.shoulder_abduction, arm.shoulder_flexion, sign)
    fore_direction = _direction(arm.shoulder_abduction + arm.elbow_abduction,
                                arm.shoulder_flexion + arm.elbow_flexion, sign)
    elbow = shoulder + p.upper_arm * upper_direction
    wrist = elbow + p.forearm * fore_direction
    hand = wrist + p.hand * fore_direction
    joints, depths = body(np.stack([shoulder, elbow, wrist]))
    arms[side] = _Limb(lean(joints), float(depths.mean()), lean(body(hand[None])[0]))

  legs = {}
  hip_x = p.hip_x * (0.5 + 0.5 * identity.build)
  toe_out = math.radians(pose.toe_out)
  for side, sign in _SIDES:
    leg = getattr(pose, f"{side}_leg")
    hip = np.array([sign * hip_x, p.hip_y, 0.0])
    knee = hip + p.thigh * _direction(leg.hip_abduction, leg.hip_flexion, sign)
    ankle = knee + p.shin * _direction(leg.hip_abduction, leg.hip_flexion - leg.knee_flexion, sign)
    forward = np.array([sign * math.sin(toe_out), 0.0, math.cos(toe_out)])
    heel = ankle + np.array([0.0, 0.024 * p.foot, 0.0]) - 0.014 * p.foot * forward
    toe = ankle + np.array([0.0, 0.03 * p.foot, 0.0]) + 0.055 * p.foot * forward
    joints, depths = body(np.stack([hip, knee, ankle]))
    legs[side] = _Limb(joints, float(depths.mean()), body(np.stack([heel, toe]))[0])

  # The head tilts about the neck, then leans with the upper body; the face turns with the head.
  head_centre = lean(_rotate_2d(np.array([0.0, p.head_y]), pose.head_tilt, (0.0, p.shoulder_y)))
  head_angle = pose.lean + pose.head_tilt
  face_points = {}
  for name, (offset, normal, threshold) in p.face_points.items():
    offset_xy, _ = head(np.array(offset))
    normal = np.array(normal) / np.linalg.norm(normal)
    face_points[name] = (head_centre + _rotate_2d(offset_xy, head_angle),
                         head.facing(normal) > threshold)
  return _Skeleton(
      body=body, neck=lean(body(np.array([0.0, p.shoulder_y, 0.0]))[0]), arms=arms, legs=legs,
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


_POLYGON_VECTORISED = 32768
"""Up to this many pixels x edges `_polygon_sdf` takes all edges at once: small shapes with many
edges (anime hair, faces) are faster so, large ones edge by edge (the same numbers either way)."""


def _polygon_sdf(py, px, vertices: np.ndarray, rounding: float = 0.0) -> np.ndarray:
  """Any simple polygon ((n, 2) (x, y) vertices), its edges offset outwards by `rounding`."""
  shape = np.broadcast_shapes(py.shape, px.shape)
  if shape[0] * shape[1] * len(vertices) <= _POLYGON_VECTORISED:
    vertices = np.asarray(vertices, np.float64)
    (ax, ay), (bx, by) = np.roll(vertices, 1, axis=0).T, vertices.T  # edge i: vertex i - 1 to i
    dx, dy = bx - ax, by - ay
    rx, ry = px[..., None] - ax, py[..., None] - ay
    t = np.clip((rx * dx + ry * dy) / (dx * dx + dy * dy + 1e-12), 0.0, 1.0)
    distance2 = ((rx - t * dx) ** 2 + (ry - t * dy) ** 2).min(axis=-1)
    slanted = ay != by  # even-odd rule on a ray towards +x; horizontal edges cross no ray
    crosses = (((ay > py[..., None]) != (by > py[..., None])) & slanted &
               (px[..., None] < ax + (py[..., None] - ay) * dx / np.where(slanted, dy, 1.0)))
    inside = np.count_nonzero(crosses, axis=-1) % 2 == 1
  else:
    distance2 = None
    inside = np.zeros(shape, bool)
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
  shade: float = 0.0  # anime: depth of the hard shadow band on the side away from the light, pixels


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


def _capsules(segments, color, label: int, owner: int, outline: bool = True, shade: float = 0.0) -> _Part:
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
  return _Part(sdf, (low[0], low[1], high[0], high[1]), color, label, owner, outline, shade)


def _ellipse(centre, rx: float, ry: float, angle: float, color, label: int, owner: int,
             outline: bool = True, shade: float = 0.0) -> _Part:
  r = max(rx, ry)
  return _Part(lambda py, px: _ellipse_sdf(py, px, centre, rx, ry, angle),
               (centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r),
               color, label, owner, outline, shade)


def _polygon(vertices, rounding: float, color, label: int, owner: int, outline: bool = True,
             shade: float = 0.0) -> _Part:
  vertices = np.asarray(vertices, np.float64)
  low, high = vertices.min(0) - rounding, vertices.max(0) + rounding
  return _Part(lambda py, px: _polygon_sdf(py, px, vertices, rounding),
               (low[0], low[1], high[0], high[1]), color, label, owner, outline, shade)


def _clipped(part: _Part, clip: _Part) -> _Part:
  """`part` restricted to the inside of `clip`."""
  x0, y0, x1, y1 = part.bounds
  cx0, cy0, cx1, cy1 = clip.bounds
  return dataclasses.replace(
      part, sdf=lambda py, px: np.maximum(part.sdf(py, px), clip.sdf(py, px)),
      bounds=(max(x0, cx0), max(y0, cy0), min(x1, cx1), min(y1, cy1)))


def _union(first: _Part, *others: _Part) -> _Part:
  """One shape covering all the parts, painted as `first` (so one outline runs around them all)."""
  parts = (first, *others)

  def sdf(py, px):
    distance = first.sdf(py, px)
    for part in others:
      distance = np.minimum(distance, part.sdf(py, px))
    return distance
  bounds = np.array([part.bounds for part in parts])
  return dataclasses.replace(first, sdf=sdf, bounds=(bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(),
                                                     bounds[:, 3].max()))


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
    levels = _COAT_LEVELS if self.identity.upper_kind == "coat" else _SHIRT_LEVELS
    rounding = 0.022
    outline = self._garment_outline(levels, rounding)
    self.layers.append((0.0, [_polygon(outline, rounding * self.scale, self.upper_color, self.upper_label,
                                       _OWNER_TORSO)]))

  def _garment_outline(self, levels, rounding: float) -> np.ndarray:
    """Pixel outline of an upper garment, `levels` (y, front half-width, side half-depth) down the body.

    The outline is the ellipse silhouette of each level at this yaw, shrunk by `rounding`
    (body units) for the polygon's rounded edge; levels above the hips lean with the upper body.
    """
    body = self.skeleton.body
    lean = math.radians(self.pose.lean)
    across = np.array([math.cos(lean), math.sin(lean)])
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
    return self.px(np.array(left_side + right_side[::-1]))

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


# A shader colours one part on its bounding-box grid: (part, py, px, signed distance) -> colour,
# RGB (3,) or (h, w, 3) float32.
Shader = Callable[["_Part", np.ndarray, np.ndarray, np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------
# The anime style: the skeleton conventions above with `_ANIME_PROPORTIONS`, painted in
# cel shading (`_cel_shader`): flat colours, one hard shadow band on the side away from a
# light at the upper left, ink outlines; hair shine, skirt pleats and irises add a third tone.

_SHADOW_TINT = np.array([0.8, 0.73, 0.86], np.float32)
"""Shadows multiply the colour: cool and slightly violet, as cel-shaded renders do."""
_AWAY_FROM_LIGHT = (0.55, 0.835)
"""Unit (x, y) in the image: the light is at the upper left, shadows fall to the lower right."""
_ANIME_INK = (44, 28, 40)
_EYE_WHITE = (252, 252, 255)
_MOUTH = (168, 66, 80)
_BLUSH = (255, 120, 140)


def _mix(a, b, t: float) -> np.ndarray:
  """(1 - t) a + t b, as float32 RGB."""
  return np.asarray(a, np.float32) * (1.0 - t) + np.asarray(b, np.float32) * t


def _cel_shader(outline_width: float) -> Shader:
  """The anime look: flat colour, a hard shadow band `part.shade` pixels deep, a dark ink rim.

  A pixel is in shadow where stepping `part.shade` pixels away from the light leaves the
  part: a crescent on the lower right of round parts, a band along the lower right edge of
  long ones. The 1-pixel transitions are anti-aliasing, not gradients.
  """
  away_x, away_y = _AWAY_FROM_LIGHT

  def shade(part, py, px, distance):
    color = np.asarray(part.color(py, px) if callable(part.color) else part.color, np.float32)
    if part.shade > 0.0:
      shifted = part.sdf(py + part.shade * away_y, px + part.shade * away_x)
      in_shadow = np.clip(0.5 + shifted, 0.0, 1.0)[..., None]
      color = color * (1.0 - (1.0 - _SHADOW_TINT) * in_shadow)
    if part.outline:
      ink = color * 0.32 + np.asarray(_ANIME_INK, np.float32) * 0.2
      on_line = np.clip(distance + outline_width + 0.5, 0.0, 1.0)[..., None]
      color = color + (ink - color) * on_line
    return color
  return shade


def _bands_along(centre, angle: float, half_length: float, edges: tuple[float, ...], colors):
  """Colour by position along the head's downward axis through `centre`: t in [-1, 1] over
  `half_length` pixels; band i lies between edges[i - 1] and edges[i] and has colors[i]."""
  c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
  colors = np.asarray(colors, np.float32)

  def color(py, px):
    t = ((px - centre[0]) * -s + (py - centre[1]) * c) / half_length
    t = np.broadcast_to(t, np.broadcast_shapes(py.shape, px.shape))
    return colors[np.searchsorted(np.asarray(edges, np.float32), t)]
  return color


class _AnimePainter(_Painter):
  """Builds the shapes of one anime character; every shape carries its shadow band depth."""

  def __init__(self, identity: Identity, pose: Pose, skeleton: _Skeleton, height: int, width: int):
    super().__init__(identity, pose, skeleton, height, width)
    self.upper_label = LIP["coat"] if identity.upper_kind in ("blazer", "coat") else LIP["upper_clothes"]
    self.front = skeleton.body.cos  # 1 shows the chest, -1 the back

  def _on_torso(self, points) -> np.ndarray:
    """Body-frame (x, y, z) points on the upper body -> pixels, turned and leaning with it."""
    xy, _ = self.skeleton.body(np.asarray(points, np.float64))
    return self.px(_rotate_2d(xy, self.pose.lean))

  # Torso and its uniform details ---------------------------------------------------------

  def _torso(self):
    kind, s = self.identity.upper_kind, self.scale
    levels = _ANIME_BLAZER_LEVELS if kind in ("blazer", "coat") else _ANIME_TOP_LEVELS
    rounding = 0.014
    outline = self._garment_outline(levels, rounding)
    parts = [_polygon(outline, rounding * s, self.upper_color, self.upper_label, _OWNER_TORSO,
                      shade=0.03 * s)]
    if kind == "sailor":
      parts += self._sailor_collar()
    elif kind in ("blazer", "coat") and self.front > 0.2:
      parts += self._blazer_front()
    self.layers.append((0.0, parts))

  def _sailor_collar(self) -> list[_Part]:
    s, label = self.scale, LIP["upper_clothes"]
    collar = np.array(self.identity.upper_second_color, np.float32)
    stripe = np.array(_UNIFORM_WHITE if collar.mean() < 128 else (36, 48, 100), np.float32)
    stripe_radius = 0.0032 * s
    parts = []
    if self.front > 0.3:
      # A chevron over the shoulders meeting in a V on the chest, a ribbon at its tip.
      chevron = self._on_torso([(-0.08, -0.288, 0.02), (0.0, -0.2, 0.054), (0.08, -0.288, 0.02),
                                (0.036, -0.31, 0.038), (0.0, -0.245, 0.052), (-0.036, -0.31, 0.038)])
      parts.append(_polygon(chevron, 0.004 * s, collar, label, _OWNER_TORSO, shade=0.012 * s))
      line = self._on_torso([(-0.068, -0.284, 0.028), (0.0, -0.212, 0.055), (0.068, -0.284, 0.028)])
      if stripe_radius >= 0.45:
        parts.append(_capsules([(line[0], line[1], stripe_radius, stripe_radius),
                                (line[1], line[2], stripe_radius, stripe_radius)],
                               stripe, label, _OWNER_TORSO, outline=False))
      parts += self._bow(np.array(self.identity.accent_color, np.float32), -0.208)
    elif self.front < -0.3:
      # Seen from behind: the square flap over the back.
      flap = self._on_torso([(-0.074, -0.302, -0.05), (0.074, -0.302, -0.05), (0.07, -0.2, -0.054),
                             (-0.07, -0.2, -0.054)])
      parts.append(_polygon(flap, 0.004 * s, collar, label, _OWNER_TORSO, shade=0.012 * s))
      inner = self._on_torso([(-0.062, -0.3, -0.05), (-0.058, -0.212, -0.054), (0.058, -0.212, -0.054),
                              (0.062, -0.3, -0.05)])
      if stripe_radius >= 0.45:
        parts.append(_capsules([(a, b, stripe_radius, stripe_radius) for a, b in zip(inner[:-1], inner[1:])],
                               stripe, label, _OWNER_TORSO, outline=False))
    return parts

  def _bow(self, color: np.ndarray, y: float) -> list[_Part]:
    """A ribbon bow on the chest at height y: two loops, a knot and two tails (LIP upper_clothes)."""
    s, label = self.scale, LIP["upper_clothes"]
    z = 0.058
    loops = [self._on_torso([(0.0, y, z), (sign * 0.034, y - 0.016, z - 0.006), (sign * 0.03, y + 0.016, z - 0.006)])
             for sign in (-1.0, 1.0)]
    tails = self._on_torso([(-0.004, y, z), (-0.016, y + 0.05, z), (-0.004, y + 0.044, z), (0.0, y + 0.04, z),
                            (0.004, y + 0.044, z), (0.016, y + 0.05, z), (0.004, y, z)])
    knot = self._on_torso([(0.0, y, z)])[0]
    return ([_polygon(tails, 0.002 * s, color, label, _OWNER_TORSO, shade=0.006 * s)] +
            [_polygon(loop, 0.003 * s, color, label, _OWNER_TORSO, shade=0.006 * s) for loop in loops] +
            [_ellipse(knot, 0.008 * s, 0.008 * s, 0.0, color, label, _OWNER_TORSO)])

  def _blazer_front(self) -> list[_Part]:
    """The open V of the blazer: the shirt (LIP upper_clothes) and a tie; two buttons on the blazer."""
    s = self.scale
    shirt = np.array(self.identity.upper_second_color, np.float32)
    tie = np.array(self.identity.accent_color or (200, 40, 56), np.float32)
    opening = self._on_torso([(-0.034, -0.31, 0.04), (0.034, -0.31, 0.04), (0.0, -0.16, 0.056)])
    tie_outline = self._on_torso([(-0.006, -0.3, 0.052), (0.006, -0.3, 0.052), (0.011, -0.205, 0.056),
                                  (0.0, -0.188, 0.056), (-0.011, -0.205, 0.056)])
    buttons = self._on_torso([(0.014, -0.13, 0.05), (0.014, -0.07, 0.052)])
    dark = np.array(self.identity.upper_color, np.float32) * 0.5
    return ([_polygon(opening, 0.003 * s, shirt, LIP["upper_clothes"], _OWNER_TORSO, shade=0.01 * s),
             _polygon(tie_outline, 0.002 * s, tie, LIP["upper_clothes"], _OWNER_TORSO, shade=0.006 * s)] +
            [_ellipse(b, 0.0055 * s, 0.0055 * s, 0.0, dark, self.upper_label, _OWNER_TORSO, outline=False)
             for b in buttons])

  # Limbs and lower garment ----------------------------------------------------------------

  def _arms(self):
    s, identity = self.scale, self.identity
    cuff = np.array(identity.upper_second_color, np.float32)
    for side, _ in _SIDES:
      arm = self.skeleton.arms[side]
      shoulder, elbow, wrist = self.px(arm.joints)
      label, owner = LIP[f"{side}_arm"], _OWNER_ARM[side]
      parts = [
          _capsules([(shoulder, elbow, 0.019 * s, 0.015 * s), (elbow, wrist, 0.015 * s, 0.011 * s)],
                    self.skin, label, owner, shade=0.008 * s),
          _ellipse(self.px(arm.ends[0]), 0.014 * s, 0.015 * s, 0.0, self.skin, label, owner, shade=0.006 * s),
      ]
      if identity.sleeves == "long":
        parts.append(_capsules([(shoulder, elbow, 0.024 * s, 0.021 * s), (elbow, wrist, 0.021 * s, 0.018 * s)],
                               self.upper_color, self.upper_label, owner, shade=0.01 * s))
        if identity.upper_kind == "sailor":  # cuffs in the collar's colour
          parts.append(_capsules([(elbow + 0.8 * (wrist - elbow), wrist, 0.0185 * s, 0.018 * s)], cuff,
                                 self.upper_label, owner, shade=0.008 * s))
      else:  # a short puffed sleeve
        parts.append(_capsules([(shoulder, shoulder + 0.42 * (elbow - shoulder), 0.027 * s, 0.025 * s)],
                               self.upper_color, self.upper_label, owner, shade=0.012 * s))
      self.layers.append((0.012 + arm.depth, parts))

  def _legs(self):
    identity, s = self.identity, self.scale
    shoes = np.array(identity.shoes_color, np.float32)
    for side, _ in _SIDES:
      leg = self.skeleton.legs[side]
      chain = self.px(leg.joints)
      owner = _OWNER_LEG[side]
      parts = []
      if identity.lower_kind != "pants":
        parts.append(_capsules([(chain[0], chain[1], 0.036 * s, 0.026 * s),
                                (chain[1], chain[2], 0.026 * s, 0.016 * s)],
                               self.skin, LIP[f"{side}_leg"], owner, shade=0.012 * s))
        if identity.socks_color is not None:
          up = chain[::-1]  # ankle, knee, hip
          parts.append(_capsules(self._tapered(up, identity.socks_length, ((0.0175, 0.0275), (0.0275, 0.038))),
                                 np.array(identity.socks_color, np.float32), LIP["socks"], owner,
                                 shade=0.012 * s))
      heel, toe = self.px(leg.ends)
      parts.append(_capsules([(heel, toe, 0.02 * s, 0.017 * s)], shoes, LIP[f"{side}_shoe"], owner,
                             shade=0.008 * s))
      if identity.lower_kind != "skirt":
        parts.append(_capsules(self._tapered(chain, identity.lower_length, ((0.042, 0.032), (0.032, 0.025))),
                               self.lower_color, LIP["pants"], owner, shade=0.014 * s))
      self.layers.append((-1.0 + leg.depth, parts))

  def _tapered(self, chain: np.ndarray, fraction: float, radii) -> list:
    """Capsule segments along the first `fraction` of the chain, radii (start, end) per segment."""
    end_point, last = _point_along(chain, fraction)
    segments = []
    for i in range(last + 1):
      end = end_point if i == last else chain[i + 1]
      full = max(np.linalg.norm(chain[i + 1] - chain[i]), 1e-9)
      t = min(1.0, np.linalg.norm(end - chain[i]) / full)
      ra, rb = radii[i]
      segments.append((chain[i], end, ra * self.scale, (ra + t * (rb - ra)) * self.scale))
    return segments

  def _lower_garment(self):
    body, s = self.skeleton.body, self.scale
    p = _ANIME_PROPORTIONS
    waist = math.hypot(0.062 * body.cos, 0.046 * body.sin)
    if self.identity.lower_kind == "skirt":
      hips = math.hypot(0.08 * body.cos, 0.052 * body.sin)
      # A pleated skirt: the hem spans both legs plus a flare, so a stride widens it.
      hem_y = p.hip_y + self.identity.lower_length * (p.thigh + p.shin)
      leg_xs = [_x_at_y(self.skeleton.legs[side].joints, hem_y) for side, _ in _SIDES]
      flare = 0.035 + 0.05 * self.identity.lower_length
      hem_right = max(max(leg_xs) + 0.04 + flare, hips + 0.02)
      hem_left = min(min(leg_xs) - 0.04 - flare, -hips - 0.02)
      outline = [(-waist, _ANIME_WAIST_Y), (waist, _ANIME_WAIST_Y), (hips + 0.008, p.hip_y + 0.005),
                 (hem_right, hem_y), (hem_left, hem_y), (-hips - 0.008, p.hip_y + 0.005)]
      apex = self.px(np.array([0.5 * (hem_left + hem_right), _ANIME_WAIST_Y - 0.3]))
      spread = math.atan2(0.5 * (hem_right - hem_left), hem_y - _ANIME_WAIST_Y + 0.3)
      self.layers.append((-0.5, [_polygon(self.px(np.array(outline)), 0.008 * s,
                                          self._pleats(apex, spread / 5.0), LIP["skirt"], _OWNER_SKIRT,
                                          shade=0.03 * s)]))
    else:
      # The seat of the pants, without an outline so that it merges with the pant legs.
      hips = math.hypot(0.07 * body.cos, 0.05 * body.sin)
      outline = [(-waist, _ANIME_WAIST_Y), (waist, _ANIME_WAIST_Y), (hips, p.hip_y + 0.01),
                 (0.35 * hips, p.hip_y + 0.06), (-0.35 * hips, p.hip_y + 0.06), (-hips, p.hip_y + 0.01)]
      self.layers.append((-0.6, [_polygon(self.px(np.array(outline)), 0.008 * s, self.lower_color, LIP["pants"],
                                          _OWNER_PELVIS, outline=False, shade=0.03 * s)]))

  def _pleats(self, apex: np.ndarray, pleat_angle: float):
    """Skirt colour: pleats fanning out from `apex`, every pleat's far third a darker tone."""
    base = self.lower_color
    fold = base * 0.82

    def color(py, px):
      turns = np.arctan2(px - apex[0], py - apex[1]) / pleat_angle
      return np.where((turns % 1.0 < 0.3)[..., None], fold, base)
    return color

  # Head ------------------------------------------------------------------------------------

  def _head(self):
    # Neck, hair behind the head, the cranium in hair colour, the face (cheeks and a narrow chin),
    # its details and eyes, the fringe and side locks over them; then what hangs down the back.
    # Face features sit on a sphere turned by the head's yaw, like the face keypoints.
    identity, skeleton, s = self.identity, self.skeleton, self.scale
    hair = np.array(identity.hair_color, np.float32)
    centre = self.px(skeleton.head_centre)
    angle = skeleton.head_angle
    rx, ry = _ANIME_HEAD_RX * s, _ANIME_HEAD_RY * s
    yaw = math.degrees(math.atan2(skeleton.face_direction_x, skeleton.face_facing))
    facing = skeleton.face_facing
    style = identity.hair_style
    head, hair_label = _OWNER_HEAD, LIP["hair"]

    def at(u, v):  # head-local pixel offsets (arrays allowed) -> image points
      return centre + _rotate_2d(np.stack(np.broadcast_arrays(np.asarray(u, np.float64),
                                                              np.asarray(v, np.float64)), -1), angle)

    def surface(longitude, v, depth=1.0):  # head surface, longitude in degrees, v in half-heights
      turned = np.radians(np.clip(np.asarray(longitude, np.float64) + yaw, -90.0, 90.0))
      return at(depth * rx * np.sin(turned), np.asarray(v, np.float64) * ry)

    def foreshortening(longitude):
      return max(0.3, math.cos(math.radians(float(np.clip(longitude + yaw, -90.0, 90.0)))))

    cranium_centre = at(0.0, -0.08 * ry)
    cranium_rx, cranium_ry = 1.04 * rx, 0.98 * ry
    chin = at(0.0, 0.6 * ry)
    collar = self.neck + (chin - self.neck) * 0.25
    # The neck lies in the chin's shadow.
    parts = [_capsules([(chin, collar, 0.016 * s, 0.018 * s)], self.skin * _SHADOW_TINT, LIP["face"], head)]
    behind = -skeleton.face_direction_x
    if style in ("bob", "long"):  # the hair mass behind the head, down to the chin
      parts.append(_ellipse(at(0.14 * behind * rx, 0.12 * ry), 1.2 * rx, 1.1 * ry, angle, hair, hair_label,
                            head, shade=0.05 * s))
    cranium = _ellipse(cranium_centre, cranium_rx, cranium_ry, angle,
                       self._hair_shine(cranium_centre, angle, cranium_rx, cranium_ry), hair_label, head,
                       shade=0.03 * s)
    if style == "short":  # locks sticking out all over, swept to the image right
      spikes = []
      for start, end, tip, length in _SHORT_HAIR_SPIKES:
        a = np.radians([start, tip, end])
        r = np.array([0.9, length, 0.9])
        spikes.append(at(r * cranium_rx * np.cos(a), -0.08 * ry + r * cranium_ry * np.sin(a)))
      cranium = _union(cranium, *[_polygon(spike, 0.003 * s, hair, hair_label, head) for spike in spikes])
    parts.append(cranium)

    if facing > -0.25:
      longitude, height = np.array(_ANIME_FACE_OUTLINE, np.float64).T
      parts.append(_polygon(surface(longitude, height, 0.96), 0.003 * s, self.skin, LIP["face"], head,
                            shade=0.012 * s))
      if facing > 0.15:
        parts += self._face_details(surface, foreshortening, angle, rx, ry)
      for name, sign in (("right_eye", -1.0), ("left_eye", 1.0)):
        point, faces_camera = skeleton.face_points[name]
        if faces_camera:
          parts += self._eye(self.px(point), sign, foreshortening(sign * _ANIME_EYE_LONGITUDE), angle, rx, ry)
      parts.append(self._bangs(surface, at, ry, cranium_rx, cranium_ry))
      if style != "short":  # locks framing the face
        reach = 1.25 if style == "long" else 0.95
        for sign in (-1.0, 1.0):
          top, bottom = surface(sign * 84.0, -0.1), surface(sign * 88.0, reach)
          parts.append(_capsules([(top, bottom, 0.17 * rx, 0.07 * rx)], hair, hair_label, head, shade=0.02 * s))
    self.layers.append((0.006, parts))
    self._back_hair(at, yaw, rx, ry, hair)

  def _hair_shine(self, centre, angle: float, rx: float, ry: float):
    """Hair colour with the anime 'angel ring': a jagged light arc on the upper left of the head."""
    base = np.array(self.identity.hair_color, np.float32)
    shine = _mix(base, (255, 255, 255), 0.45)
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))

    def color(py, px):
      dx, dy = px - centre[0], py - centre[1]
      u, v = (dx * c + dy * s) / rx, (-dx * s + dy * c) / ry
      radius, direction = np.hypot(u, v), np.arctan2(v, u)
      jag = 0.035 * np.cos(direction * 26.0)
      ring = (radius > 0.6 + jag) & (radius < 0.72) & (direction > -2.75) & (direction < -1.35)
      return np.where(ring[..., None], shine, base)
    return color

  def _face_details(self, surface, foreshortening, angle: float, rx: float, ry: float) -> list[_Part]:
    """Blush, a small nose and mouth (LIP face)."""
    face, head = LIP["face"], _OWNER_HEAD
    blush = _mix(self.skin, _BLUSH, 0.35)
    parts = [_ellipse(surface(sign * 42.0, 0.52), 0.17 * rx * foreshortening(sign * 42.0), 0.065 * ry, angle,
                      blush, face, head, outline=False) for sign in (-1.0, 1.0)]
    nose = self.px(self.skeleton.face_points["nose"][0])
    parts.append(_ellipse(nose, 0.045 * rx, 0.04 * ry, angle, self.skin * 0.78, face, head, outline=False))
    width = 0.1 * rx * foreshortening(0.0)
    mouth = surface(np.array([-1.0, 1.0]) * math.degrees(math.asin(min(1.0, width / rx))), 0.72)
    parts.append(_capsules([(mouth[0], mouth[1], 0.028 * ry, 0.028 * ry)], np.array(_MOUTH, np.float32),
                           face, head, outline=False))
    return parts

  def _eye(self, centre: np.ndarray, sign: float, foreshortening: float, angle: float, rx: float,
           ry: float) -> list[_Part]:
    """A large anime eye at its keypoint: white, a three-tone iris, pupil, two highlights, lashes.

    `sign` is -1 for the person's right eye (the image left when facing the camera).
    """
    face, head = LIP["face"], _OWNER_HEAD
    iris_color = np.array(self.identity.eye_color or _EYE_INK, np.float32)
    ew, eh = 0.23 * rx * foreshortening, 0.27 * ry

    def at(du, dv):
      return centre + _rotate_2d(np.array([du, dv]), angle)

    iris_centre = at(0.0, 0.06 * eh)
    iris = _bands_along(iris_centre, angle, 0.88 * eh, (-0.3, 0.45),
                        [iris_color * 0.5, iris_color, _mix(iris_color, (255, 255, 255), 0.4)])
    lash = np.array(_ANIME_INK, np.float32)
    lash_radius = max(0.5, 0.14 * eh)
    inner, top, outer = at(-sign * ew, -0.45 * eh), at(-sign * 0.1 * ew, -eh), at(sign * 1.2 * ew, -0.7 * eh)
    return [
        _ellipse(centre, ew, eh, angle, np.array(_EYE_WHITE, np.float32), face, head, outline=False),
        _ellipse(iris_centre, 0.8 * ew, 0.88 * eh, angle, iris, face, head, outline=False),
        _ellipse(at(0.0, 0.12 * eh), 0.38 * ew, 0.42 * eh, angle, iris_color * 0.25, face, head, outline=False),
        _ellipse(at(-0.3 * ew, -0.32 * eh), 0.3 * ew, 0.24 * eh, angle, np.array(_EYE_WHITE, np.float32),
                 face, head, outline=False),
        _ellipse(at(0.32 * ew, 0.45 * eh), 0.14 * ew, 0.11 * eh, angle, np.array(_EYE_WHITE, np.float32),
                 face, head, outline=False),
        _capsules([(inner, top, 0.7 * lash_radius, lash_radius), (top, outer, lash_radius, 0.8 * lash_radius)],
                  lash, face, head, outline=False),
    ]

  def _bangs(self, surface, at, ry: float, cranium_rx: float, cranium_ry: float) -> _Part:
    """The fringe: the head above a jagged line of locks ending just above the eyes (LIP hair)."""
    lower = [(-90, 0.32), (-76, -0.22), (-62, 0.06), (-47, -0.3), (-31, -0.02), (-15, -0.36), (-1, 0.0),
             (13, -0.32), (29, -0.03), (44, -0.3), (59, 0.05), (74, -0.22), (90, 0.32)]
    longitude, height = np.array(lower, np.float64).T
    edge = surface(longitude, height, 1.02)
    # The upper edge follows the cranium's outline, so no line runs across the top of the head.
    t = np.radians(np.linspace(0.0, 180.0, 13))
    top = at(cranium_rx * np.cos(t), -0.08 * ry - cranium_ry * np.sin(t))
    shine = self._hair_shine(at(0.0, -0.08 * ry), self.skeleton.head_angle, cranium_rx, cranium_ry)
    return _polygon(np.concatenate([edge, top]), 0.006 * self.scale, shine, LIP["hair"], _OWNER_HEAD,
                    shade=0.03 * self.scale)

  def _back_hair(self, at, yaw: float, rx: float, ry: float, hair: np.ndarray):
    """Long hair, twin tails or a ponytail hanging behind (or, seen from behind, over) the back."""
    style, s = self.identity.hair_style, self.scale
    cos, sin = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))

    def turned(x, v, z):  # head-frame (x, v, z) in rx / ry units -> image point, and its depth
      return at((x * cos + z * sin) * rx, v * ry), -x * sin + z * cos

    tie = hair * 0.55
    if style == "long":
      shift = -0.3 * sin
      drape = np.array([at((shift - 0.9) * rx, -0.3 * ry), at((shift + 0.9) * rx, -0.3 * ry),
                        at((shift + 1.1) * rx, 3.0 * ry), at((shift - 1.1) * rx, 3.0 * ry)])
      # Behind the torso seen from the front; seen from behind over it but under the head, so
      # the drape's top stays hidden in the hair of the head.
      depth = -0.05 if self.skeleton.face_facing > 0.0 else 0.003
      self.layers.append((depth, [_polygon(drape, 0.4 * rx, hair, LIP["hair"], _OWNER_HEAD, shade=0.05 * s)]))
    elif style == "twin_tails":
      for sign in (-1.0, 1.0):
        root, depth = turned(sign * 1.0, -0.45, -0.15)
        chain = [root] + [turned(sign * x, v, -0.15)[0] for x, v in ((1.45, 0.3), (1.55, 1.6), (1.35, 3.3))]
        radii = (0.3, 0.42, 0.36, 0.1)
        tail = _capsules([(chain[i], chain[i + 1], radii[i] * rx, radii[i + 1] * rx) for i in range(3)], hair,
                         LIP["hair"], _OWNER_HEAD, shade=0.03 * s)
        knot = _ellipse(root, 0.17 * rx, 0.2 * rx, 0.0, tie, LIP["hair"], _OWNER_HEAD)
        self.layers.append((0.03 * depth, [tail, knot]))
    elif style == "ponytail":
      # Tied high at the back, swinging out to the person's left, so it shows beside the neck.
      root, depth = turned(0.0, -0.55, -0.95)
      chain = [root] + [turned(x, v, z)[0] for x, v, z in ((0.3, -0.2, -1.3), (0.9, 1.2, -1.3), (1.2, 2.6, -1.0))]
      radii = (0.3, 0.46, 0.42, 0.12)
      tail = _capsules([(chain[i], chain[i + 1], radii[i] * rx, radii[i + 1] * rx) for i in range(3)], hair,
                       LIP["hair"], _OWNER_HEAD, shade=0.03 * s)
      knot = _ellipse(root, 0.16 * rx, 0.16 * rx, 0.0, tie, LIP["hair"], _OWNER_HEAD)
      self.layers.append((0.03 * depth, [tail, knot]))


def _rim_shader(outline_width: float) -> Shader:
  """The realistic look: the part's colour, darkening smoothly towards its edge."""
  def shade(part, py, px, distance):
    color = part.color(py, px) if callable(part.color) else part.color
    if part.outline:
      # A darker rim lets same-coloured parts (a sleeve over the shirt) read as separate.
      rim = (1.0 - 0.28 * np.clip(1.0 + distance / outline_width, 0.0, 1.0)).astype(np.float32)
      color = np.asarray(color, np.float32) * rim[..., None]
    return color
  return shade


def _paint(parts: list[_Part], background: np.ndarray, height: int, width: int,
           shader: Shader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Paints parts in order with anti-aliased edges, each coloured by `shader`.

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
    color = shader(part, py, px, distance)
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
  if identity.style == "anime":
    painter = _AnimePainter(identity, pose, _skeleton(identity, pose), height, width)
    shader = _cel_shader(max(0.7, 0.0055 * painter.scale))
  else:
    painter = _Painter(identity, pose, _skeleton(identity, pose), height, width)
    shader = _rim_shader(max(0.8, 0.008 * painter.scale))
  image, labels, owners = _paint(painter.parts(), np.array(identity.background_color, np.float32),
                                 height, width, shader)

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
_ANIME_IDENTITY_STREAM = 0xA21E
_POSE_STREAM = 0x905E


def identity_rng(seed: int, identity: int, style: str = "realistic") -> np.random.Generator:
  """The generator that draws identity `identity`'s appearance for dataset seed `seed`.

  Each style has its own stream, so anime character k is no re-coloured realistic person k.
  """
  if style not in STYLES:
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")
  stream = _ANIME_IDENTITY_STREAM if style == "anime" else _IDENTITY_STREAM
  return np.random.default_rng((stream, seed, identity))


def pose_rng(seed: int, identity: int, pose_index: int) -> np.random.Generator:
  """The generator that draws pose `pose_index` of identity `identity`."""
  return np.random.default_rng((_POSE_STREAM, seed, identity, pose_index))


_NAME = re.compile(r"^(synth|anime)_id(\d+)_pose(\d+)$")


def picture_name(style: str, identity: int, pose_index: int) -> str:
  """('realistic', 42, 3) -> 'synth_id00042_pose03': the name `generate_people` gives, `parse_name`'s inverse."""
  return f"{'anime' if style == 'anime' else 'synth'}_id{identity:05d}_pose{pose_index:02d}"


def parse_name(name: str) -> tuple[str, int, int]:
  """'synth_id00042_pose03' -> ('realistic', 42, 3): a `generate_people` picture's style, identity, pose."""
  match = _NAME.match(name)
  if not match:
    raise ValueError(f"{name!r} is not a synthetic picture's name; expected e.g. 'synth_id00042_pose03' "
                     "or 'anime_id00007_pose01'")
  prefix, identity, pose_index = match.groups()
  return ("anime" if prefix == "anime" else "realistic"), int(identity), int(pose_index)


def render_named(seed: int, person: str, pose: str, height: int, width: int,
                 swaps: Iterable[tuple[str, str]] = ()) -> dict:
  """Person `person` in picture `pose`'s pose, with components taken from donors: the exact
  answer to a pose transfer or a component swap of `generate_people(seed, ...)` pictures.

  Args:
    person, pose: picture names (`parse_name`): whose appearance, whose pose.
    swaps: (component, donor picture name) pairs, `COMPONENTS` names, applied in order.

  Returns: `render`'s dict.
  """
  style, identity_index, _ = parse_name(person)
  _, pose_identity, pose_index = parse_name(pose)
  identity = sample_identity(identity_rng(seed, identity_index, style), style)
  for component, donor in swaps:
    donor_style, donor_index, _ = parse_name(donor)
    identity = swap_component(identity, sample_identity(identity_rng(seed, donor_index, donor_style), donor_style),
                              component)
  return render(identity, sample_pose(pose_rng(seed, pose_identity, pose_index)), height, width)


def generate_people(seed: int, num_identities: int, poses_per_identity: int, height: int, width: int,
                    first_identity: int = 0, style: str = "realistic") -> Iterator[dict]:
  """Renders identities first_identity .. first_identity + num_identities - 1, each in several poses.

  Identity k depends only on (seed, k) and its pose j only on (seed, k, j), so any
  identity can be regenerated alone and a seed always gives the same images.

  Args:
    style: one of `STYLES`; an anime identity k is drawn from its own stream
      (`identity_rng`), its poses from the same streams as a realistic person's.

  Yields:
    Identity by identity, pose by pose: `render`'s dict plus 'identity' (int k),
    'pose_index' (int j) and 'name' (e.g. 'synth_id00042_pose03', 'anime_id00042_pose03').
  """
  if seed < 0 or first_identity < 0:
    raise ValueError(f"seed and first_identity must be non-negative, got {seed} and {first_identity}")
  for k in range(first_identity, first_identity + num_identities):
    identity = sample_identity(identity_rng(seed, k, style), style)
    for j in range(poses_per_identity):
      person = render(identity, sample_pose(pose_rng(seed, k, j)), height, width)
      person.update(identity=k, pose_index=j, name=picture_name(style, k, j))
      yield person
