"""Workflows: whole jobs built from the engine's pieces, picked by `config.workflow`.

The training engine (`jaxpose.train`) runs one training and evaluates it; a
workflow is what a study does around trainings: write and build its data,
measure a starting model, fine-tune it, measure again, draw the figures.
`python -m jaxpose.main --config <a config with config.workflow set>` runs it.

  anime_transfer   the users' central workflow: fine-tune an ADGAN trained on
                   (synthetic) real people on 14 anime pictures, then transfer pose
                   and clothes between real and anime people (configs/anime_transfer.py)
"""

from __future__ import annotations

import importlib
from typing import Callable

_WORKFLOWS = {
    "anime_transfer": "jaxpose.workflows.anime_transfer",
}


def names() -> tuple[str, ...]:
  return tuple(_WORKFLOWS)


def get(name: str) -> Callable:
  """The workflow's `run(config, workdir) -> dict`."""
  if name not in _WORKFLOWS:
    raise ValueError(f"config.workflow must be one of {names()}, got {name!r}")
  return importlib.import_module(_WORKFLOWS[name]).run
