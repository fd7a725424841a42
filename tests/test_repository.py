"""The repository's promises: README Quick start, CI script, configs that load and say how to run."""

import glob
import importlib
import os
import re

import pytest

from jaxpose import systems

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _quick_start_commands() -> list[str]:
  with open(os.path.join(ROOT, "README.md")) as f:
    readme = f.read()
  section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
  return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, re.S)]


def test_quick_start_is_two_commands_and_ci_runs_the_test_one():
  commands = _quick_start_commands()
  assert len(commands) == 2 and all("\n" not in c for c in commands), commands
  main_command, test_command = commands
  assert "python -m jaxpose.main --config configs/anime_transfer.py" in main_command
  assert "pytest" in test_command
  with open(os.path.join(ROOT, ".ci", "run")) as f:
    ci = f.read()
  assert test_command in ci, ".ci/run must run the README's test command verbatim"


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))))
def test_every_config_loads_locks_and_states_its_command(path):
  name = os.path.splitext(os.path.basename(path))[0]
  if name in ("__init__", "common"):  # the package and the shared sections are no experiments
    return
  module = importlib.import_module(f"configs.{name}")
  doc = (module.__doc__ or "").strip().splitlines()
  commands = [line.strip() for line in doc if line.strip().startswith("python -m jaxpose.main")]
  assert commands and f"configs/{name}.py" in commands[0], f"{name}: docstring must give the command"
  config = module.get_config()
  config.lock()
  with pytest.raises(AttributeError):
    config.no_such_field = 1  # the same locking main.py asks for: typos fail
  assert config.model in systems.names()
  assert len(tuple(config.data.image_size)) == 2
