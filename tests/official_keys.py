"""The official checkpoints' key/shape lists (tests/data/official_state_dicts/*.tsv).

Copied from the official repositories' state_dicts (one line per tensor: key,
shape, and `param` or `buffer`), so that the importers are checked against the
real key layout without the multi-hundred-megabyte checkpoint files.
"""

import os

import numpy as np

DATA_DIR = os.path.join(os.path.dirname(__file__), "data", "official_state_dicts")


def read(name: str) -> dict[str, tuple[tuple[int, ...], str]]:
  """{key: (shape, 'param' | 'buffer')} from `name` (e.g. 'adgan_G_state_dict.tsv')."""
  out = {}
  with open(os.path.join(DATA_DIR, name)) as f:
    for line in f:
      if line.startswith("#") or not line.strip():
        continue
      fields = line.rstrip("\n").split("\t")
      shape = tuple(int(v) for v in fields[1].strip().strip("()").split(",") if v.strip())
      out[fields[0]] = (shape, fields[2] if len(fields) > 2 else "param")
  return out


def zero_state_dict(name: str, prefix: str = "") -> dict[str, np.ndarray]:
  """Zero arrays with the listed keys and shapes (zero-stride views: nothing is allocated)."""
  return {prefix + key: np.broadcast_to(np.float32(0), shape) for key, (shape, _) in read(name).items()}
