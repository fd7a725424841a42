"""Test-wide setup: two fake CPU devices, so sharded code runs as on 2 GPUs."""

import os


def _default_xla_flag(name: str, value) -> None:
  """Adds --name=value to XLA_FLAGS unless the environment already sets that flag."""
  if f"--{name}" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{name}={value}".strip()


# Must happen before JAX initialises its backends.
_default_xla_flag("xla_force_host_platform_device_count", 2)
# Tests are bound by XLA:CPU compilation, not by running: LLVM's optimisation level 0 halves
# compile times (36 s -> 17 s for the tiny ADGAN step). Results move only in float32 round-off;
# tests/data/reference_trajectories.json was recorded under this flag.
_default_xla_flag("xla_backend_optimization_level", 0)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402

# Tests build the same small engines many times: share compiled executables.
jax.config.update("jax_compilation_cache_dir", os.path.join(os.path.dirname(__file__), "..", ".jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
# Start XLA now, with its own convolution library (YNNPACK), under which the recorded
# trajectories were computed. The configs ask for Eigen's (config.cpu_convolutions), which
# would otherwise take effect in whichever test of a worker first starts XLA through `train`;
# test_cpu_runtime.py checks in fresh processes that Eigen follows the same trajectory.
jax.devices()

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


# Measured slowest first (seconds of one file's tests, 2 workers, fresh compilation cache):
# `--dist loadfile` hands out files in collection order, so the long files start early and the
# short ones fill in at the end instead of one worker finishing a long file alone.
SLOWEST_FILES = (
    "test_systems.py",                # ~310 s: every system trains, resumes, generates, evaluates
    "test_train_real_formats.py",     # ~225 s: official layouts at official image sizes
    "test_reliability.py",            # ~165 s
    "test_defgan_system.py",          # ~120 s
    "test_spt_system.py",             # ~90 s
    "test_train.py",                  # ~75 s
    "test_train_patn.py",             # ~70 s
    "test_compute_dtype.py",          # ~45 s
    "test_generate.py",               # ~40 s
    "test_demo.py",                   # ~40 s
    "test_anime_workflow.py",         # ~35 s
)


def pytest_collection_modifyitems(items):
  rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
  items.sort(key=lambda item: rank.get(item.path.name, len(SLOWEST_FILES)))  # stable: order within a file kept
