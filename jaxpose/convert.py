"""Official checkpoints -> jaxpose: `import_checkpoint` and the converter command line.

  import_checkpoint(kind, path) -> (Flax module, variables)

reads one official file. The kinds come from the registered systems
(`System.checkpoint_kinds`: 'adgan_generator', 'adgan_discriminator_pb',
'adgan_discriminator_pp', 'patn_generator', 'patn_discriminator_pb',
'patn_discriminator_pp', 'resnet_discriminator', ...) and from the frozen
feature networks (`jaxpose.pretrained.CHECKPOINT_KINDS`: 'vgg19', 'vgg16',
'vgg_conv'); `kinds()` lists them. Each format is read next to the model it
feeds (e.g. `jaxpose.models.adgan.from_torch`) through the one mapping helper
`jaxpose.io.state_dict`: hyperparameters (widths, n_res, n_blocks, norm, ...)
are inferred from the tensor shapes and key names, so reduced-width files
import too, and any missing, unexpected or mis-shaped key raises ONE
`StateDictMismatchError` listing all of them.

Command line:

  python -m jaxpose.convert --kind adgan|patn --generator <epoch>_net_netG.pth \\
      [--discriminator_pb <epoch>_net_netD_PB.pth] [--discriminator_pp <epoch>_net_netD_PP.pth] \\
      --output <dir>

(`--kind` is a system with an official release; `--network NAME=PATH` names
any of its networks). On-disk layout of <dir> (start training from it with
--config.init_from=<dir>, or generate from it with --config.generate.checkpoint=<dir>):

  <dir>/state/                 Orbax PyTree checkpoint (StandardCheckpointer) of
                               {network name: Flax variables}, float32 arrays in
                               the layouts of jaxpose.models (ADGAN's generator
                               includes its 'frozen' style-encoder VGG up to
                               conv4_1; batch-norm networks hold 'batch_stats').
  <dir>/jaxpose_convert.json   {"format": 1, "kind": <system>, "networks": {name:
                                {"source": <.pth path>, "module": <class name>,
                                 "hyperparameters": {...constructor kwargs...},
                                 "parameter_counts": {collection: count}}}}

`jaxpose.checkpoints.read_weights(<dir>)` reads the networks back without a target.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Callable, Mapping, Sequence

from absl import logging

from jaxpose import pretrained
from jaxpose import systems
from jaxpose.io.state_dict import count_parameters


def kinds() -> dict[str, Callable[[str], tuple[Any, dict]]]:
  """{kind: path -> (module, variables)} over the feature networks and every registered system."""
  out = dict(pretrained.CHECKPOINT_KINDS)
  for name in systems.names():
    out.update(systems.get(name).checkpoint_kinds())
  return out


def import_checkpoint(kind: str, path: str) -> tuple[Any, dict]:
  """Reads an official checkpoint file -> (Flax module, variables of jax arrays).

  Generators apply as their systems call them (ADGAN: `model.apply(v,
  target_pose, source_image, source_parsing)`; PATN: `model.apply(v,
  source_image, source_pose, target_pose)`), discriminators as `model.apply(v,
  x, train=False)`, VGGs as `model.apply(v, x, layers)`.

  PATN's discriminators are ADGAN's `ResnetDiscriminator`; the Market ones use
  batch norm and come with their `batch_stats`. Market's `--no_lsgan`
  discriminators end in a Sigmoid, which has no weights and so cannot be read
  off a file: the model returned outputs logits, which jaxpose's BCE loss takes.
  """
  available = kinds()
  if kind not in available:
    raise ValueError(f"kind must be one of {sorted(available)}, got {kind!r}")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{kind} checkpoint not found: {path}")
  return available[kind](path)


def parameter_counts(variables: Mapping[str, Any]) -> dict[str, int]:
  """{collection: number of scalars}."""
  return {c: count_parameters(tree) for c, tree in variables.items()}


def _hparams_json(model) -> dict[str, Any]:
  out = {}
  for field in dataclasses.fields(model):
    if field.name in ("parent", "name", "dtype"):
      continue
    value = getattr(model, field.name)
    out[field.name] = list(value) if isinstance(value, tuple) else value
  return out


def official_systems() -> tuple[str, ...]:
  """The registered systems with an official checkpoint release."""
  return tuple(n for n in systems.names() if systems.get(n).official_files)


def convert_official(system: str, files: Mapping[str, str], output: str) -> dict[str, Any]:
  """Imports official files ({network name: .pth path}) and writes the Orbax directory of the module docstring.

  Returns the JSON summary it wrote.
  """
  if system not in official_systems():
    raise ValueError(f"--kind must be one of {official_systems()}, got {system!r}")
  system_cls = systems.get(system)
  unknown = [n for n in files if n not in system_cls.official_files]
  if unknown:
    raise ValueError(f"{system} has no network {unknown}; its official files are {list(system_cls.official_files)}")
  if "generator" not in files:
    raise ValueError("the generator file is required")
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  output = os.path.abspath(output)
  state_dir = os.path.join(output, "state")
  if os.path.exists(state_dir):
    raise FileExistsError(f"{state_dir} exists; choose a new --output directory")
  tree, networks = {}, {}
  for name, path in files.items():
    model, variables = import_checkpoint(system_cls.official_files[name][0], path)
    tree[name] = variables
    networks[name] = dict(source=os.path.abspath(path), module=type(model).__name__,
                          hyperparameters=_hparams_json(model), parameter_counts=parameter_counts(variables))
  os.makedirs(output, exist_ok=True)
  verbosity = logging.get_verbosity()
  logging.set_verbosity(min(verbosity, logging.WARNING))  # Orbax logs every step of a save at INFO.
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(state_dir, tree)
  finally:
    logging.set_verbosity(verbosity)
  summary = {"format": 1, "kind": system, "networks": networks}
  with open(os.path.join(output, "jaxpose_convert.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m jaxpose.convert",
      description="Convert official checkpoints (PyTorch .pth; Keras .h5 for Deformable GAN) into a "
                  "jaxpose Orbax directory "
                  "(train from it with --config.init_from=<output>).")
  parser.add_argument("--kind", required=True, choices=list(official_systems()), help="which official system")
  parser.add_argument("--generator", help="the generator file: <epoch>_net_netG.pth (ADGAN, PATN), "
                      "<epoch>_net_G.pth (SPT's H_A), the generator .h5 (Deformable GAN)")
  parser.add_argument("--discriminator_pb", help="<epoch>_net_netD_PB.pth (optional)")
  parser.add_argument("--discriminator_pp", help="<epoch>_net_netD_PP.pth (optional)")
  parser.add_argument("--network", action="append", default=[], metavar="NAME=PATH",
                      help="any network of the system by name (repeatable)")
  parser.add_argument("--output", required=True, help="new directory to write")
  args = parser.parse_args(argv)
  files = {name: getattr(args, name) for name in ("generator", "discriminator_pb", "discriminator_pp")
           if getattr(args, name)}
  for item in args.network:
    name, sep, path = item.partition("=")
    if not sep:
      parser.error(f"--network takes NAME=PATH, got {item!r}")
    files[name] = path
  logging.set_verbosity(logging.INFO)
  summary = convert_official(args.kind, files, args.output)
  print(f"Wrote {os.path.join(os.path.abspath(args.output), 'state')} (Orbax) and jaxpose_convert.json:")
  for name, info in summary["networks"].items():
    counts = ", ".join(f"{c} {n:,}" for c, n in sorted(info["parameter_counts"].items(),
                                                        key=lambda item: item[0] != "params"))
    print(f"  {name}: {info['module']} from {info['source']}: {counts}")
    print(f"    hyperparameters {info['hyperparameters']}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
