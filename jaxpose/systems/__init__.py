"""The systems jaxpose trains, and the contract each one fulfils.

A *system* is one published method (ADGAN, PATN, ...) or one network jaxpose
trains for its own use (the learned pose detector): its networks, how a batch
feeds them, its losses and update order, what it outputs, how it is evaluated
and drawn, and how its official weights are read. Each lives in one file, `jaxpose/systems/<name>.py`,
as a subclass of `System` registered below by name; `config.model` picks it.
The training engine (`jaxpose/train.py`), evaluation, generation and the
converter know nothing of any one system: they only use this contract.

The contract (`jaxpose.systems.base.System`):

  Class attributes
    name                  the registry name (`config.model`).
    networks              the trained networks, e.g. ("generator",
                          "discriminator_pb", "discriminator_pp"); each has
                          its own optimizer state in `TrainState.opt`, and
                          `config.init_what` names a subset to load weights for.
    generation_networks   the networks `generate` needs (loaded alone for
                          --mode=generate and `jaxpose.load`).
    batches_per_step      1, or more for systems whose step draws several
                          independent batches (Deformable GAN's D step).
    official_files        {network: (checkpoint kind, file-name suffix)} of
                          the official release, for `init_from=<...>.pth`
                          and `python -m jaxpose.convert --kind <name>`.
    result_title          the pictures' title for what `generate` made
                          ("generated"; the pose detector: "detected").

  Class methods (config only; no networks built)
    batch_keys(config)            the model inputs a batch holds (device side).
    check(config, source)         config/dataset checks, before anything is built.
    transform(config, source)     the data pipeline's per-pair transform,
                                  including host-side extra inputs (warps).
    load_pretrained(config)       frozen feature networks, loaded by name
                                  through `jaxpose.pretrained`.
    is_official_file(path)        whether init_from / generate.checkpoint is an
                                  official file (default: `.pth`).
    checkpoint_kinds()            {kind: path -> (Flax module, variables)},
                                  the official-file importers.
    read_official(config, path)   an official generator file (and its sibling
                                  files) -> ({network: variables}, origin).
    from_variables(config, nets)  a system able to `generate` with these
                                  variables (architecture read off shapes).
    strip_frozen(nets), attach_frozen(config, nets, frozen)
                                  leave frozen pretrained parts held inside
                                  trained networks (ADGAN's style VGG) out of
                                  shipped weight files, and put them back
                                  (`jaxpose.weights`).

  Instance (built from a config and its pretrained networks)
    init(rng, example, frozen)    -> (nets, opt, aux, frozen) for `TrainState`,
                                  traced under `jax.eval_shape` and `jax.jit`.
    train_step(state, batch, rng) -> (state, metrics): pure; the engine adds
                                  the step count, the non-finite guard and the
                                  learning rate.
    generate(nets, batch)         -> the system's outputs, jitted: generators
                                  {'image': (B, H, W, 3) in [-1, 1], ...}; the
                                  pose detector {'heatmaps': (B, H, W, 18)}.
    result_pictures(batch, outputs)  host side: uint8 (B, H, W, 3) pictures of
                                  what `generate` made of each example, for the
                                  training samples, --mode=generate's PNGs and
                                  strips and `Pipeline.generate` (default: the
                                  generated images; the detector: its skeletons
                                  over the images).
    component_names()             the components of a style code, in slot
                                  order (ADGAN: the 8 parsing components); ()
                                  for systems without one.
    generate_components(nets, batch)  -> like `generate`, each component
                                  taken from its own picture (swaps; only
                                  where component_names() is not empty).
    evaluate(generate_fn, nets, source, transform, mesh, *, keys, ...)
                                  -> {metric: value} on the test split, for
                                  training's end and --mode=evaluate (default:
                                  `jaxpose.evaluation.evaluate`, generated vs
                                  target image metrics; the detector:
                                  `pckh_learned` on the test images).
    loss_panels()                 the panels of loss_curves.png.
    sample_columns(batch, outputs)  {title: uint8 pictures} in the sample grids
                                  (default: result_pictures as one column).
    generation_pictures(pipe, source, transform, out_dir)
                                  extra pictures of --mode=generate (ADGAN's
                                  component swap grid, the detector's
                                  detections.png), made through the
                                  `jaxpose.inference.Pipeline` users call.

Adding a system: its system file, its model file(s) in `jaxpose/models/`, its
configs, its tests, and one line in `_SYSTEMS`.
"""

from __future__ import annotations

import importlib

from jaxpose.systems.base import Pretrained
from jaxpose.systems.base import System
from jaxpose.systems.base import TrainState

# name -> module defining it (imported on first use).
_SYSTEMS = {
    "adgan": "jaxpose.systems.adgan",
    "patn": "jaxpose.systems.patn",
    "defgan": "jaxpose.systems.defgan",
    "sdgan": "jaxpose.systems.sdgan",
    "pose_detector": "jaxpose.systems.pose_detector",
    "spt": "jaxpose.systems.spt",
}


def names() -> tuple[str, ...]:
  """The registered system names."""
  return tuple(_SYSTEMS)


def get(name: str) -> type[System]:
  """The System class registered as `name` (config.model)."""
  if name not in _SYSTEMS:
    raise ValueError(f"config.model must be one of {names()}, got {name!r}")
  module = importlib.import_module(_SYSTEMS[name])
  return module.SYSTEM


def build(config, pretrained: Pretrained | None = None) -> System:
  """The config's system with its networks built (pretrained: from `load_pretrained`)."""
  cls = get(config.model)
  return cls(config, pretrained if pretrained is not None else cls.load_pretrained(config))


def official_generator_hint(path: str, *, besides: str) -> str:
  """For error messages: which other registered system's official generator file `path` is, if any.

  Tries each system's generator importer (`official_files['generator']`), so
  it reads the file once per system: for error paths only.
  """
  for name in names():
    if name == besides:
      continue
    cls = get(name)
    kind = cls.official_files.get("generator", (None, None))[0]
    reader = cls.checkpoint_kinds().get(kind) if kind else None
    if reader is None:
      continue
    try:
      reader(path)
    except Exception:  # pylint: disable=broad-except
      continue
    return f"; it is an official {name} generator file: use config.model={name!r} (configs for {name})"
  return ""


__all__ = ["Pretrained", "System", "TrainState", "build", "get", "names", "official_generator_hint"]
