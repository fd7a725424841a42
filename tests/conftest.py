"""Test-wide setup: two fake CPU devices, so sharded code runs as on 2 GPUs."""

import os

# Must happen before JAX initialises its backends.
if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
# Tests are bound by XLA:CPU compilation, not by running: LLVM's optimisation level 0 halves
# compile times (36 s -> 17 s for the tiny ADGAN step). Results move only in float32 round-off;
# tests/data/reference_trajectories.json was recorded under this flag.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

# Tests build the same small engines many times: share compiled executables.
jax.config.update("jax_compilation_cache_dir", os.path.join(os.path.dirname(__file__), "..", ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

import pytest  # noqa: E402  (after the XLA_FLAGS set-up above)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory) -> str:
  """A TFDS data dir with synthetic_people/tiny built once for the whole session."""
  from jaxpose.data import pair_source  # pylint: disable=g-import-not-at-top
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  pair_source("synthetic_people/tiny", "train", data_dir=data_dir)
  return data_dir


def _tiny_run(tmp_path_factory, tiny_data_dir, config_module: str, name: str) -> str:
  import importlib  # pylint: disable=g-import-not-at-top
  from jaxpose import train  # pylint: disable=g-import-not-at-top
  config = importlib.import_module(config_module).get_config("tiny")
  config.data.data_dir = tiny_data_dir
  config.num_train_steps = 1
  config.checkpoint_every = 1
  workdir = str(tmp_path_factory.mktemp(name) / "run")
  train.train_and_evaluate(config, workdir)
  return workdir


@pytest.fixture(scope="session")
def tiny_adgan_run(tmp_path_factory, tiny_data_dir) -> str:
  """A one-step run of configs/synthetic_adgan.py:tiny (checkpoint and config.json), shared by the tests."""
  return _tiny_run(tmp_path_factory, tiny_data_dir, "configs.synthetic_adgan", "adgan_run")


@pytest.fixture(scope="session")
def tiny_patn_run(tmp_path_factory, tiny_data_dir) -> str:
  """A one-step run of configs/synthetic_patn.py:tiny, shared by the tests."""
  return _tiny_run(tmp_path_factory, tiny_data_dir, "configs.synthetic_patn", "patn_run")


@pytest.fixture(scope="session", autouse=True)
def share_engines_between_identical_runs():
  """Builds each distinct engine once per test process.

  The suite trains, resumes, generates and evaluates the same tiny configs again and again;
  `train.build` would load the same pretrained files and trace, lower and fetch the same
  executables from the compilation cache each time (a few seconds each). An engine is a pure
  function of the config, the mesh and the batch shapes, so a second identical request gets the
  first one's. Everything a run restores (checkpoints, data position, weights) still comes from
  its files.
  """
  import collections  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  from jaxpose import train  # pylint: disable=g-import-not-at-top
  build, engines = train.build, collections.OrderedDict()

  def shared_build(config, mesh, data):
    shapes = sorted((k, tuple(shape), str(dtype)) for k, (shape, dtype) in data.transform.example_shapes().items())
    key = (config.to_json(sort_keys=True), tuple(d.id for d in mesh.devices.flat), mesh.axis_names, repr(shapes))
    if key in engines:
      engines.move_to_end(key)
      for line in engines[key].system.pretrained.descriptions:  # what build logs, as a run's log shows it
        logging.info("Pretrained weights: %s", line)
    else:
      engines[key] = build(config, mesh, data)
      # The last few only: repeats come from the same test, and engines hold their executables.
      while len(engines) > 3:
        engines.popitem(last=False)
    return engines[key]

  train.build = shared_build
  yield
  train.build = build
