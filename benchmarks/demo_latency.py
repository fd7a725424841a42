"""Per-request latency of the web demo's calls (what the page reports), on this machine.

  python benchmarks/demo_latency.py --config configs/synthetic_adgan_base.py
  python benchmarks/demo_latency.py --config configs/adgan_deepfashion.py --requests 5
  python benchmarks/demo_latency.py --model runs/synthetic_adgan      # a run, weights dir or shipped name

Times `jaxpose.demo.backend.Backend.generate` (the page's request minus HTTP:
letterboxing, heatmaps, the jitted call, the copy back) after the warm-up the
demo does at start-up, for a pose transfer and for a swap of two components;
with --http also the whole round trip of the page's /generate call through
gradio_client to the app served on a local port (queue, PNG encoding, download).
With --config the generator has that config's architecture and random weights
(speed does not depend on the values; drawn with numpy from the abstract shapes,
so the random initialisers are never compiled). Not a test.
"""

from __future__ import annotations

import argparse
import importlib
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxpose
from jaxpose import inference
from jaxpose import systems
from jaxpose.data import keypoints as kp
from jaxpose.data import parsing as parsing_lib
from jaxpose.demo import backend as backend_lib


def random_pipeline(config_path: str) -> inference.Pipeline:
  """A Pipeline with the generator architecture of `config_path` ("configs/x.py[:variant]") and random weights."""
  module, _, variant = config_path.removesuffix(".py").replace("/", ".").partition(":")
  config = importlib.import_module(module).get_config(*([variant] if variant else []))
  system_cls = systems.get(config.model)
  h, w = config.data.image_size
  channels = {"source_image": 3, "target_image": 3, "source_pose": kp.NUM_KEYPOINTS,
              "target_pose": kp.NUM_KEYPOINTS, "source_parsing": parsing_lib.num_classes(config.data.parsing_merge)}
  example = {k: jnp.zeros((1, h, w, channels[k]), jnp.float32) for k in system_cls.batch_keys(config)}
  system = system_cls(config, system_cls.load_pretrained(config))
  abstract = jax.eval_shape(system.init, jax.random.key(0), example, system.pretrained.variables)[0]
  rng = np.random.default_rng(0)
  nets = {name: jax.tree.map(lambda a: np.asarray(rng.normal(0, 0.02, a.shape), np.float32), abstract[name])
          for name in system_cls.generation_networks}
  system = system_cls.from_variables(config, nets)
  return inference.Pipeline(system, nets, f"random weights, {config_path}")


def person(size: tuple[int, int], seed: int = 0) -> backend_lib.Person:
  """A picture-sized random person with a standing pose (speed does not depend on the content)."""
  rng = np.random.default_rng(seed)
  h, w = size
  joints = np.array([[0.1, 0.5], [0.2, 0.5], [0.2, 0.35], [0.35, 0.3], [0.5, 0.3], [0.2, 0.65], [0.35, 0.7],
                     [0.5, 0.7], [0.5, 0.4], [0.7, 0.4], [0.9, 0.4], [0.5, 0.6], [0.7, 0.6], [0.9, 0.6],
                     [0.08, 0.45], [0.08, 0.55], [0.1, 0.4], [0.1, 0.6]]) * [h - 1, w - 1]
  return backend_lib.Person(f"random {seed}", rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
                            rng.integers(0, 20, (h, w), dtype=np.uint8), "lip", np.round(joints).astype(np.int32))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", help="configs/<name>.py[:variant]: that architecture, random weights")
  parser.add_argument("--model", help="or: a run, weights directory or shipped name (jaxpose.load)")
  parser.add_argument("--requests", type=int, default=20)
  parser.add_argument("--http", action="store_true", help="also time /generate over HTTP on a local port")
  args = parser.parse_args()
  if bool(args.config) == bool(args.model):
    parser.error("pass exactly one of --config and --model")
  pipeline = random_pipeline(args.config) if args.config else jaxpose.load(args.model)
  backend = backend_lib.Backend(pipeline)
  size = backend.size
  a, b, c = person(size, 0), person(size, 1), person(size, 2)
  backend.people = [a, b, c]
  print(f"{pipeline}; {jax.devices()[0].platform}, {jax.local_device_count()} device(s)")
  print(f"warm-up (compiles transfer{' and swap' if backend.components else ''}): {backend.warm_up():.2f} s")
  calls = {"transfer": {}}
  if len(backend.components) >= 2:
    calls["swap of 2 components"] = {backend.components[0]: b, backend.components[1]: c}
  for label, donors in calls.items():
    report(f"{label} at {size[0]}x{size[1]}", lambda donors=donors: backend.generate(a, b.keypoints, donors),
           args.requests)
  if args.http:
    http_round_trips(backend, calls, args.requests)


def report(label: str, call, requests: int) -> None:
  seconds = []
  for _ in range(requests):
    start = time.perf_counter()
    call()
    seconds.append(time.perf_counter() - start)
  ms = np.array(seconds) * 1000
  print(f"{label}: median {np.median(ms):.1f} ms, min {ms.min():.1f}, max {ms.max():.1f} over {requests} requests")


def http_round_trips(backend: backend_lib.Backend, calls: dict, requests: int) -> None:
  """The same calls as the page makes them: /generate through gradio_client, app on a local port."""
  import socket  # pylint: disable=g-import-not-at-top
  from gradio_client import Client  # pylint: disable=g-import-not-at-top
  from jaxpose.demo import app as demo_app  # pylint: disable=g-import-not-at-top
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  blocks = demo_app.build(backend)
  blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False)
  try:
    client = Client(f"http://127.0.0.1:{port}", verbose=False)
    a, b = backend.people[0], backend.people[1]
    table = {"headers": demo_app.JOINT_HEADERS, "data": backend.rows_from_keypoints(b.keypoints), "metadata": None}
    for label, donors in calls.items():
      donor_names = [donors[c].name if c in donors else demo_app.KEEP_OWN for c in backend.components]
      call = lambda donor_names=donor_names: client.predict(a.name, None, None, "lip", table, *donor_names,
                                                            api_name="/generate")
      call()  # the first request sets up the client's connection
      report(f"{label} over HTTP (gradio_client, localhost)", call, requests)
  finally:
    blocks.close()


if __name__ == "__main__":
  main()
