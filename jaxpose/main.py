"""Entry point: `python -m jaxpose.main --config configs/<name>.py --workdir <dir>`.

Modes: `train` (the default; trains, then evaluates the test split into
<workdir>/metrics.json, or runs the config's `workflow`, e.g. anime_transfer:
see jaxpose/workflows/), `evaluate` (metrics of the latest checkpoint in
--workdir), `generate` (pose and component transfer from a checkpoint).
Config fields are overridden as `--config.batch_size=8`; unknown fields fail.
Runs from any directory: the package holding the --config file (`configs/`,
whose files import each other as `configs.*`) is put on the import path.

Exit status: 0 done, 1 a clear error (its message logged), 143 stopped on
SIGTERM after saving a checkpoint (re-run the same command to resume).
"""

from __future__ import annotations

import logging as python_logging
import os
import sys

# TensorFlow's C++ start-up banners say nothing a jaxpose user needs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from jaxpose import checkpoints
from jaxpose import divergence
from jaxpose import preemption
from jaxpose import run_lock

# Errors whose message says everything: logged without a traceback, exit status 1.
_CLEAR_ERRORS = (run_lock.RunDirectoryInUse, run_lock.RunDirectoryNotWritable, divergence.TrainingDiverged,
                 checkpoints.CheckpointCorrupt, checkpoints.WorkdirMismatch, checkpoints.NoIntactCheckpoint)

FLAGS = flags.FLAGS

config_flags.DEFINE_config_file(
    "config", None, "Experiment configuration file (configs/<name>.py[:variant]).", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and metrics.")
flags.DEFINE_enum("mode", "train", ["train", "evaluate", "generate"], "What to run.")
flags.DEFINE_bool("multihost", False,
                  "Call jax.distributed.initialize() (set by launch.sh for multi-host runs; under "
                  "SLURM or Open MPI the cluster is detected, elsewhere pass the three flags below).")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0, for --multihost without SLURM.")
flags.DEFINE_integer("num_processes", None, "Number of processes, for --multihost without SLURM.")
flags.DEFINE_integer("process_id", None, "This process's index, for --multihost without SLURM.")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(python_logging.Filter):
  """Drops INFO chatter of Orbax (dozens of lines per checkpoint) and Grain; keeps their warnings."""

  _NOISY = (os.sep + "orbax" + os.sep, os.sep + "grain" + os.sep)

  def filter(self, record: python_logging.LogRecord) -> bool:
    return record.levelno >= python_logging.WARNING or not any(p in record.pathname for p in self._NOISY)


def _hide_gpus_from_tensorflow() -> None:
  # TensorFlow is only here for TFDS building and TensorBoard summaries; it must
  # never reserve accelerator memory that JAX needs.
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except ImportError:  # Training and reading data do without it (an accelerator image may lack it).
    return
  tf.config.set_visible_devices([], "GPU")


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  # Before the backend starts (XLA reads its flags then; its threads share one malloc arena).
  from jaxpose import cpu_runtime  # pylint: disable=g-import-not-at-top
  for line in cpu_runtime.configure(FLAGS.config):
    logging.info("CPU runtime: %s", line)
  _hide_gpus_from_tensorflow()
  if FLAGS.multihost:
    jax.distributed.initialize(coordinator_address=FLAGS.coordinator_address,
                               num_processes=FLAGS.num_processes, process_id=FLAGS.process_id)
  logging.info("JAX process %d of %d; local devices: %s; all devices: %d (%s)",
               jax.process_index(), jax.process_count(), jax.local_devices(), jax.device_count(),
               jax.default_backend())

  from jaxpose import train  # pylint: disable=g-import-not-at-top
  workflow = FLAGS.config.get("workflow", "")
  try:
    if FLAGS.mode == "train" and workflow:
      from jaxpose import workflows  # pylint: disable=g-import-not-at-top
      workflows.get(workflow)(FLAGS.config, FLAGS.workdir)
    elif FLAGS.mode == "train":
      train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    elif FLAGS.mode == "evaluate":
      train.evaluate_checkpoint(FLAGS.config, FLAGS.workdir)
    else:
      from jaxpose import generate  # pylint: disable=g-import-not-at-top
      generate.run(FLAGS.config, FLAGS.workdir)
  except preemption.Terminated as e:
    logging.warning("%s", e)
    logging.flush()
    sys.exit(preemption.EXIT_STATUS)
  except _CLEAR_ERRORS as e:
    logging.error("%s: %s", type(e).__name__, e)
    logging.flush()
    sys.exit(1)


def config_package_root(argv: list[str]) -> str | None:
  """The directory above the package that holds the --config file (e.g. the repository root for
  /repo/configs/x.py), or None when the file is not inside a package."""
  value = None
  for i, arg in enumerate(argv):
    if arg.startswith("--config="):
      value = arg.split("=", 1)[1]
    elif arg == "--config" and i + 1 < len(argv):
      value = argv[i + 1]
  if not value:
    return None
  path = value.split(":", 1)[0]  # "configs/x.py:tiny" -> the file
  root = os.path.dirname(os.path.abspath(path))
  if not os.path.exists(os.path.join(root, "__init__.py")):
    return None
  while os.path.exists(os.path.join(root, "__init__.py")):
    root = os.path.dirname(root)
  return root


def run() -> None:
  # Config files import their siblings as `configs.*`: make that package importable
  # wherever the command runs from, resolving to the tree the --config file is in.
  root = config_package_root(sys.argv)
  if root and root not in sys.path:
    sys.path.insert(0, root)
  app.run(main)


if __name__ == "__main__":
  run()
