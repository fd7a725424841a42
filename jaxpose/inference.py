"""Results, not runs: `jaxpose.load` and the `Pipeline` it returns.

  import jaxpose
  pipe = jaxpose.load("synthetic-adgan")    # shipped weights; or a run directory, a
                                            # `jaxpose.convert` output, an official *_net_netG.pth
  out = pipe.transfer(source_image, source_parsing, target_keypoints)
  out = pipe.swap(person_image, person_parsing, target_keypoints,
                  {"upper_clothes": (donor_image, donor_parsing), "hair": (other_image, other_parsing)})

Inputs are a person's picture as uint8 (H, W, 3) of any size, its parsing as an
(H, W) label map (LIP's 20 labels by default, `labels="adgan8"` for ADGAN's 8),
and keypoints (18, 2) as (y, x) in that picture's pixels, -1 for a missing
joint. Pictures are letterboxed to the model's size (aspect kept, padded, as the
dataset builders and `--mode=generate` do) and the keypoints follow them; the
result is uint8 (H, W, 3) at the model's size. Component names are those of the
system's style code (ADGAN: upper_clothes, pants, skirt, hair, face, arm, leg,
background).

Each kind of call is one jitted function of the pipeline, compiled on its first
call and reused (single-person calls always have the same shapes):
`generate(batch)` (`transfer`, the evaluation, --mode=generate) and
`generate_components(batch)` (`swap` and ADGAN's swap grid).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from typing import Any, Mapping

from absl import logging
import jax
import ml_collections
import numpy as np

from jaxpose import checkpoints
from jaxpose import systems
from jaxpose import visualize
from jaxpose import weights as weights_lib
from jaxpose.data import heatmaps
from jaxpose.data import keypoints as kp
from jaxpose.data import letterbox
from jaxpose.data import parsing as parsing_lib
from jaxpose.io import torch_checkpoint

# ----------------------------------------------------------------------------
# Loading


def _official_model(path: str) -> str:
  """Which system an official generator file belongs to, from its keys (ADGAN's have a style encoder)."""
  keys = torch_checkpoint.load_state_dict(path).keys()
  return "adgan" if any(k.removeprefix("module.").startswith("enc_style.") for k in keys) else "patn"


def run_config(path: str) -> ml_collections.ConfigDict | None:
  """The config a run wrote (<run>/config.json), found from the run, its checkpoints/ or a step dir."""
  path = os.path.abspath(path)
  for folder in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
    candidate = os.path.join(folder, checkpoints.CONFIG_FILE)
    if os.path.isfile(candidate):
      with open(candidate) as f:
        return ml_collections.ConfigDict(json.load(f))
  return None


def _default_official_config(model: str) -> ml_collections.ConfigDict:
  """The official DeepFashion settings of `model` (configs/<model>_deepfashion.py), from a checkout."""
  try:
    return importlib.import_module(f"configs.{model}_deepfashion").get_config()
  except ModuleNotFoundError as e:
    raise ValueError(f"an official {model} file needs its config: pass config= (e.g. "
                     f"configs.{model}_deepfashion.get_config() from the jaxpose repository)") from e


def generation_networks(config, path: str) -> tuple[systems.System, dict, str]:
  """(a system able to generate, its generation networks' variables, where they came from).

  `path`: shipped weights (name or directory), one of our run or step
  directories, a `jaxpose.convert` output or an official generator `.pth`.
  The generator's architecture is read off the weights (`System.from_variables`),
  so reduced-width files work too.
  """
  system_cls = systems.get(config.model)
  wanted = system_cls.generation_networks
  if system_cls.is_official_file(path):
    nets, origin = system_cls.read_official(config, path, wanted)
    origin = f"official checkpoint {origin}"
  elif weights_lib.resolve(path) is not None:
    nets, record = weights_lib.read(path, config)
    origin = f"weights {weights_lib.resolve(path)} ({record.get('steps', '?')} steps)"
  else:
    nets, step_dir = checkpoints.read_weights(path)
    origin = f"checkpoint {step_dir}"
  missing = [n for n in wanted if n not in nets]
  if missing:
    raise ValueError(f"{path} holds no {missing} weights (it holds {sorted(nets)}); {config.model} generates "
                     f"with {list(wanted)}")
  nets = {n: nets[n] for n in wanted}
  return system_cls.from_variables(config, nets), nets, origin


def load(source: str, *, config: ml_collections.ConfigDict | None = None) -> "Pipeline":
  """A ready-to-call `Pipeline` from shipped weights, a run, a convert output or an official file.

  Args:
    source: a shipped name ('synthetic-adgan', see `jaxpose.weights`), a
      weights directory, one of our run/step directories, a `python -m
      jaxpose.convert` output, or an official `<epoch>_net_netG.pth`.
    config: the config the weights belong to (image size, heatmaps, parsing
      merge). Default: the one recorded with shipped weights or written by the
      run (<run>/config.json); for official files the official DeepFashion
      settings (from the repository's configs/). A convert output needs it.
  """
  source = os.fspath(source)
  if config is None:
    if weights_lib.resolve(source) is not None:
      config = weights_lib.config_of(weights_lib.read_record(source))
    elif source.endswith(".pth"):
      if not os.path.isfile(source):
        raise FileNotFoundError(f"{source} does not exist")
      config = _default_official_config(_official_model(source))
    elif os.path.exists(source):
      config = run_config(source)
      if config is None:
        raise ValueError(f"{source} holds no {checkpoints.CONFIG_FILE} (a convert output, or a run from before runs wrote "
                         "one): pass config= the config the weights belong to")
    else:
      raise FileNotFoundError(f"{source} is neither shipped weights ({sorted(weights_lib.SHIPPED)}) nor an "
                              "existing file or directory")
  system, nets, origin = generation_networks(config, source)
  logging.info("Loaded %s's %s from %s", config.model, ", ".join(nets), origin)
  return Pipeline(system, nets, origin)


# ----------------------------------------------------------------------------
# Inputs


@dataclasses.dataclass(frozen=True)
class Person:
  """A picture made ready for the model.

  Attributes:
    image: float32 (H, W, 3) in [-1, 1] at the model's size.
    parsing: float32 (H, W, K) one-hot of the model's label set (zeros when the
      model reads none and none was given).
    box: how the original picture was letterboxed (keypoints follow it).
  """
  image: np.ndarray
  parsing: np.ndarray
  box: letterbox.Letterbox


def _check_image(name: str, image: Any) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
    raise ValueError(f"{name}: expected a uint8 RGB picture (H, W, 3), got {image.dtype} {image.shape}")
  if min(image.shape[:2]) < 1:
    raise ValueError(f"{name}: empty picture {image.shape}")
  return image


def _check_parsing(name: str, parsing: Any, shape: tuple[int, int], labels: str) -> np.ndarray:
  parsing = np.asarray(parsing)
  if parsing.ndim == 3 and parsing.shape[-1] == 1:
    parsing = parsing[..., 0]
  if parsing.shape != shape:
    raise ValueError(f"{name}: expected an (H, W) label map the size of its picture {shape}, got {parsing.shape}")
  if parsing.dtype.kind not in "iu":
    raise ValueError(f"{name}: expected integer labels, got {parsing.dtype}")
  n = parsing_lib.num_classes(labels)
  if parsing.size and (parsing.min() < 0 or parsing.max() >= n):
    raise ValueError(f"{name}: labels span [{parsing.min()}, {parsing.max()}], but labels={labels!r} has {n} "
                     f"classes (0..{n - 1}); pass labels='adgan8' for ADGAN's 8-class maps or 'lip' for LIP's 20")
  return parsing


def _check_keypoints(name: str, keypoints: Any) -> np.ndarray:
  keypoints = np.asarray(keypoints)
  if keypoints.shape != (kp.NUM_KEYPOINTS, 2) or keypoints.dtype.kind not in "iuf":
    raise ValueError(f"{name}: expected ({kp.NUM_KEYPOINTS}, 2) (y, x) joints, -1 for missing, got "
                     f"{keypoints.dtype} {keypoints.shape}")
  if keypoints.dtype.kind == "f" and not np.all(np.isfinite(keypoints)):
    raise ValueError(f"{name}: keypoints must be finite (-1 marks a missing joint)")
  return np.round(keypoints).astype(np.int32)


class Pipeline:
  """One system's generation with one set of weights: see the module docstring.

  Attributes:
    system: the system (`generate`, `generate_components`, its config).
    config: the config the weights belong to.
    nets: {network: variables} on the default device.
    origin: where the weights came from.
    image_size: (H, W) of the model's pictures.
    components: names of the style code's components (() if it has none).
  """

  def __init__(self, system: systems.System, nets: Mapping[str, Any], origin: str = ""):
    self.system = system
    self.config = system.config
    self.nets = jax.device_put(dict(nets))
    self.origin = origin
    self.image_size = tuple(int(v) for v in self.config.data.image_size)
    self.components = tuple(system.component_names())
    self.keys = tuple(system.batch_keys(self.config))
    self._generate = jax.jit(system.generate)
    self._generate_components = jax.jit(system.generate_components) if self.components else None

  def __repr__(self) -> str:
    return f"Pipeline({self.system.name}, image_size={self.image_size}, from {self.origin})"

  # ---------------------------------------------------------------- batched cores

  def device_batch(self, batch: Mapping[str, Any]) -> dict:
    """The system's model inputs of a host batch, on the device (what `system.generate` reads)."""
    missing = [k for k in self.keys if k not in batch]
    if missing:
      raise ValueError(f"{self.system.name} generates from {list(self.keys)}; the batch lacks {missing}")
    return jax.device_put({k: np.asarray(batch[k]) for k in self.keys})

  def outputs(self, batch: Mapping[str, Any]) -> dict:
    """Model inputs (the system's batch keys, batch B) -> `system.generate`'s dict, on the host."""
    return jax.device_get(self._generate(self.nets, self.device_batch(batch)))

  def generate(self, batch: Mapping[str, Any]) -> np.ndarray:
    """Model inputs (batch B) -> uint8 (B, H, W, 3) pictures of the results (`System.result_pictures`:
    the generated images; the pose detector's skeletons)."""
    return self.system.result_pictures(batch, self.outputs(batch))

  def generate_components(self, batch: Mapping[str, Any]) -> np.ndarray:
    """'component_images' (B,K,H,W,3), 'component_masks' (B,K,H,W), 'target_pose' -> uint8 (B, H, W, 3)."""
    if self._generate_components is None:
      raise ValueError(f"{self.system.name} has no per-component style code, so nothing to swap; component "
                       "swaps need a system such as ADGAN")
    inputs = {k: np.asarray(batch[k]) for k in ("component_images", "component_masks", "target_pose")}
    return visualize.to_uint8(jax.device_get(self._generate_components(self.nets, inputs)["image"]))

  # ---------------------------------------------------------------- inputs

  def person(self, image: Any, parsing: Any = None, *, labels: str = "lip", name: str = "image") -> Person:
    """A picture (uint8 (h, w, 3)) and its (h, w) parsing in `labels` -> `Person` at the model's size."""
    image = _check_image(name, image)
    box = letterbox.Letterbox.fit(image.shape[:2], self.image_size)
    merge = self.config.data.parsing_merge
    num = parsing_lib.num_classes(merge)
    if parsing is None:
      if "source_parsing" in self.keys:
        raise ValueError(f"{self.system.name} needs the person's parsing map ({name})")
      one_hot = np.zeros(self.image_size + (num,), np.float32)
    else:
      labels_map = _check_parsing(f"{name} parsing", parsing, image.shape[:2], labels)
      one_hot = parsing_lib.one_hot(parsing_lib.merge(box.labels(labels_map), labels, merge), num)
    return Person(image=box.image(image).astype(np.float32) / 127.5 - 1.0, parsing=one_hot, box=box)

  def keypoints(self, keypoints: Any, box: letterbox.Letterbox, name: str = "keypoints") -> np.ndarray:
    """(18, 2) (y, x) in a picture's pixels -> int32 (18, 2) in the model's frame (letterboxed like it)."""
    return box.keypoints(_check_keypoints(name, keypoints))

  def target_keypoints(self, keypoints: Any, box: letterbox.Letterbox, name: str = "target_keypoints") -> np.ndarray:
    """`keypoints` for a target pose, which needs at least one joint inside the picture."""
    placed = self.keypoints(keypoints, box, name)
    if not kp.is_present(placed).any():
      height, width = box.source_size
      raise ValueError(f"{name}: no joint lies inside the {height}x{width} picture (every joint is -1 or outside "
                       "it), so there is no pose to generate; give (y, x) in the source picture's pixels")
    return placed

  def heatmaps(self, keypoints: np.ndarray) -> np.ndarray:
    """(18, 2) (y, x) in the model's frame -> (H, W, 18) pose heatmaps as the model was trained with."""
    return heatmaps.keypoints_to_heatmaps(np.asarray(keypoints), *self.image_size,
                                          sigma=self.config.data.heatmap_sigma, mode=self.config.data.heatmap_mode)

  def inputs(self, person: Person, target_pose: np.ndarray, source_pose: np.ndarray | None = None) -> dict:
    """A batch of one for `generate`: the person and (H, W, 18) target (and source) pose heatmaps."""
    if source_pose is None:
      source_pose = np.zeros_like(target_pose)  # a user's picture may come without its own joints
    return {"source_image": person.image[None], "source_parsing": person.parsing[None],
            "target_pose": target_pose[None], "source_pose": source_pose[None],
            # Read only by training (the loss targets); generation never looks at them.
            "target_image": person.image[None], "target_parsing": person.parsing[None]}

  # ---------------------------------------------------------------- calls

  def transfer(self, source_image: Any, source_parsing: Any, target_keypoints: Any, *, labels: str = "lip",
               source_keypoints: Any = None) -> np.ndarray:
    """The person of `source_image` in the pose `target_keypoints` -> uint8 (H, W, 3) at the model's size.

    Args:
      source_image: uint8 (h, w, 3), any size.
      source_parsing: (h, w) labels of `labels` ('lip' or 'adgan8'); None for
        systems that read no parsing (PATN).
      target_keypoints: (18, 2) (y, x) in source_image's pixels, -1 missing.
      source_keypoints: the person's own joints, for systems that read the
        source pose (PATN); without them it sees an empty source pose.
    """
    person = self.person(source_image, source_parsing, labels=labels, name="source_image")
    target_pose = self.heatmaps(self.target_keypoints(target_keypoints, person.box))
    source_pose = (None if source_keypoints is None
                   else self.heatmaps(self.keypoints(source_keypoints, person.box, "source_keypoints")))
    return self.generate(self.inputs(person, target_pose, source_pose))[0]

  def swap(self, person_image: Any, person_parsing: Any, target_keypoints: Any,
           components: Mapping[str, tuple[Any, Any]], *, labels: str = "lip") -> np.ndarray:
    """The person in the target pose, with some components taken from other pictures.

    Args:
      person_image, person_parsing, target_keypoints: as `transfer`.
      components: {component name: (donor image, donor parsing)}, names among
        `self.components`; each donor picture may have its own size.
      labels: the label set of every parsing map given.

    Returns:
      uint8 (H, W, 3) at the model's size.
    """
    if self._generate_components is None:
      raise ValueError(f"{self.system.name} has no per-component style code, so nothing to swap; component "
                       "swaps need a system such as ADGAN")
    unknown = [c for c in components if c not in self.components]
    if unknown:
      raise ValueError(f"unknown components {unknown}; {self.system.name}'s are {list(self.components)}")
    person = self.person(person_image, person_parsing, labels=labels, name="person_image")
    target_pose = self.heatmaps(self.target_keypoints(target_keypoints, person.box))
    images = np.repeat(person.image[None], len(self.components), axis=0)
    masks = np.moveaxis(person.parsing, -1, 0).copy()
    for name, donor in components.items():
      if not (isinstance(donor, (tuple, list)) and len(donor) == 2):
        raise ValueError(f"components[{name!r}]: expected (donor image, donor parsing)")
      other = self.person(donor[0], donor[1], labels=labels, name=f"components[{name!r}]")
      k = self.components.index(name)
      images[k], masks[k] = other.image, other.parsing[..., k]
    return self.generate_components({"component_images": images[None], "component_masks": masks[None],
                                     "target_pose": target_pose[None]})[0]
