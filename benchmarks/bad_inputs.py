"""Bad inputs and faults as a new user meets them, run and counted by outcome (issue 11's survey).

  python benchmarks/bad_inputs.py                    # every case, about 10 minutes on 2 CPU cores
  python benchmarks/bad_inputs.py --only checkpoint,pose  # the cases whose class or name contain a word
  python benchmarks/bad_inputs.py --list             # the table of cases, without running them

The survey behind issue 11 tried 102 bad inputs and faults on tiny synthetic
configs; this script rebuilds a representative set of each of its classes
(config errors, weight files, data files, interruptions, a shared run
directory, damaged checkpoints, divergence, empty splits, target poses,
running from elsewhere, misleading messages, smaller items) and classifies
what happens:

  clear error          an error whose message names the problem (the case's pattern)
  handled correctly    it goes through and the result is right (the case's check)
  unclear error        an error whose message does not say what is wrong
  silent wrong         it goes through, or succeeds, with a wrong or unflagged result
  hang                 no outcome within the case's time limit

Each case says what a good outcome is, so the count is the same for any
version of jaxpose: run it against another checkout with JAXPOSE_REPO and
PYTHONPATH pointing there. Cases run in this process on the tiny configs (2 fake CPU devices),
or as `python -m jaxpose.main` subprocesses where processes matter. Prints
one line per case and the re-count by outcome.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Any, Callable

if "--xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The checkout under test (default: this one); JAXPOSE_REPO=<another checkout> with PYTHONPATH=<it> counts that one.
REPO = os.environ.get("JAXPOSE_REPO") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import numpy as np  # noqa: E402

OUTCOMES = ("clear error", "handled correctly", "unclear error", "silent wrong", "hang")


class Failed(Exception):
  """A subprocess case ended with a non-zero status; the message is the tail of its output."""


class Hung(Exception):
  """A subprocess did not finish in time."""


@dataclasses.dataclass
class Case:
  """One bad input or fault.

  Attributes:
    group: the survey's class.
    name: what is tried.
    run: ctx -> a result (or raises).
    clear: a regex the message of a clear error matches; None when the case
      should go through.
    check: (result, ctx) -> True when going through was right (cases with
      `clear` None); a case that should fail but goes through is silent wrong.
    timeout: seconds before it counts as a hang.
  """
  group: str
  name: str
  run: Callable[["Context"], Any]
  clear: str | None = None
  check: Callable[[Any, "Context"], bool] | None = None
  timeout: float = 300.0


class _Records(logging.Handler):
  def __init__(self):
    super().__init__(logging.INFO)
    self.lines: list[str] = []

  def emit(self, record):
    self.lines.append(record.getMessage())


@dataclasses.dataclass
class Context:
  root: str
  data_dir: str
  cache: str
  base_run: str = ""      # a finished 2-step tiny ADGAN run (checkpoints 1 and 2); copy before changing
  reference3: str = ""    # the same run trained straight to step 3
  records: _Records = dataclasses.field(default_factory=_Records)
  counter: int = 0

  def fresh(self, name: str) -> str:
    self.counter += 1
    return os.path.join(self.root, f"{self.counter:03d}_{name}")

  def copy_base(self, name: str) -> str:
    path = self.fresh(name)
    shutil.copytree(self.base_run, path, ignore=shutil.ignore_patterns("run.lock"))
    return path

  def logs(self) -> str:
    return "\n".join(self.records.lines)


# ----------------------------------------------------------------------------
# Helpers


def config(ctx: Context, module: str = "synthetic_adgan", **overrides):
  import importlib  # pylint: disable=g-import-not-at-top
  cfg = importlib.import_module(f"configs.{module}").get_config("tiny")
  cfg.data.data_dir = ctx.data_dir
  cfg.update_from_flattened_dict(overrides)
  return cfg


def train(ctx: Context, workdir: str, **overrides):
  from jaxpose import train as train_lib  # pylint: disable=g-import-not-at-top
  return train_lib.train_and_evaluate(config(ctx, **overrides), workdir)


def weights(workdir: str) -> dict:
  from jaxpose import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.read_weights(workdir)[0]


def same_weights(a: dict, b: dict) -> bool:
  la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
  return len(la) == len(lb) > 0 and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def finite(tree) -> bool:
  return all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(tree) if np.asarray(x).dtype.kind == "f")


def main_cmd(ctx: Context, workdir: str, *flags: str, config_path: str = "configs/synthetic_adgan.py:tiny"):
  return [sys.executable, "-m", "jaxpose.main", "--config", config_path, "--workdir", workdir,
          f"--config.data.data_dir={ctx.data_dir}", f"--config.compilation_cache_dir={ctx.cache}", *flags]


def run_main(ctx: Context, workdir: str, *flags: str, cwd: str = REPO, timeout: float = 280, env=None,
             config_path: str = "configs/synthetic_adgan.py:tiny") -> str:
  try:
    result = subprocess.run(main_cmd(ctx, workdir, *flags, config_path=config_path), capture_output=True,
                            text=True, timeout=timeout, cwd=cwd, env=env)
  except subprocess.TimeoutExpired as e:
    raise Hung(f"jaxpose.main did not finish in {timeout:.0f} s") from e
  if result.returncode != 0:
    raise Failed(f"exit status {result.returncode}:\n" + "\n".join(result.stderr.strip().splitlines()[-25:]))
  return result.stderr


def start_main(ctx: Context, workdir: str, *flags: str, log: str) -> subprocess.Popen:
  return subprocess.Popen(main_cmd(ctx, workdir, *flags), stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                          cwd=REPO)


def wait_for_rows(workdir: str, rows: int, process: subprocess.Popen, limit: float = 240) -> None:
  path = os.path.join(workdir, "metrics_history.jsonl")
  deadline = time.time() + limit
  while time.time() < deadline and process.poll() is None:
    if os.path.exists(path) and sum(1 for _ in open(path)) >= rows:
      return
    time.sleep(0.3)


def wait(process: subprocess.Popen, timeout: float = 280) -> int:
  try:
    return process.wait(timeout=timeout)
  except subprocess.TimeoutExpired as e:
    process.kill()
    raise Hung(f"a jaxpose.main process did not finish in {timeout:.0f} s") from e


def largest_data_file(step_dir: str) -> str:
  return max(glob.glob(f"{step_dir}/state/ocdbt.process_*/d/*"), key=os.path.getsize)


def overwrite_4k(path: str) -> None:
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 10)
    f.write(np.random.default_rng(0).bytes(4096))


def truncate(path: str, size: int) -> None:
  with open(path, "r+b") as f:
    f.truncate(size)


def anime_build(ctx: Context, name: str, damage: Callable[[str], None]):
  """Builds anime_pose/64x44 from a damaged copy of its dummy data; returns the pair sources (and data_dir)."""
  from tfds_builders import testing  # pylint: disable=g-import-not-at-top
  from tfds_builders.anime_pose import anime_pose_dataset_builder as anime  # pylint: disable=g-import-not-at-top
  from jaxpose.data import sources  # pylint: disable=g-import-not-at-top
  manual = ctx.fresh(name)
  shutil.copytree(os.path.join(REPO, "tfds_builders", "anime_pose", "dummy_data"), manual)
  damage(manual)
  data_dir = manual + "_tfds"
  testing.build(anime.Builder, "64x44", manual, data_dir)
  built = {split: sources.pair_source("anime_pose/64x44", split, data_dir) for split in ("train", "test")}
  built["data_dir"] = data_dir
  return built


def write(path: str, data: bytes) -> None:
  with open(path, "wb") as f:
    f.write(data)


# ----------------------------------------------------------------------------
# The cases


def _config_cases() -> list[Case]:
  g = "config errors"
  return [
      Case(g, "typo in a field name (--config.batch_sise)",
           lambda c: run_main(c, c.fresh("typo"), "--config.batch_sise=8"), clear=r"batch_sise"),
      Case(g, "unknown config variant (:huge)", lambda c: run_main(c, c.fresh("variant"),
                                                                  config_path="configs/synthetic_adgan.py:huge"),
           clear=r"unknown variant 'huge'"),
      Case(g, "image_size unlike the dataset's", lambda c: train(c, c.fresh("size"), **{"data.image_size": (64, 44)}),
           clear=r"image_size is \(64, 44\)"),
      Case(g, "batch not a multiple of the devices", lambda c: train(c, c.fresh("batch"), batch_size=3),
           clear=r"multiple of the number of devices"),
      Case(g, "zero training steps", lambda c: train(c, c.fresh("steps"), num_train_steps=0),
           clear=r"num_train_steps must be positive"),
      Case(g, "zero checkpoints kept", lambda c: train(c, c.fresh("keep"), keep_checkpoints=0),
           clear=r"keep_checkpoints must be positive"),
      Case(g, "unknown model", lambda c: train(c, c.fresh("model"), model="adgann"),
           clear=r"config.model must be one of"),
      Case(g, "unknown dataset", lambda c: train(c, c.fresh("ds"), **{"data.name": "deepfashion"}),
           clear=r"unknown dataset 'deepfashion'"),
      Case(g, "unknown dataset config", lambda c: train(c, c.fresh("dscfg"), **{"data.name": "synthetic_people/huge"}),
           clear=r"has no config 'huge'"),
      Case(g, "a real dataset not built yet",
           lambda c: train(c, c.fresh("unbuilt"), **{"data.name": "market1501_pose"}),
           clear=r"tfds build tfds_builders/market1501_pose"),
      Case(g, "unknown compute dtype", lambda c: train(c, c.fresh("dtype"), compute_dtype="float16"),
           clear=r"compute_dtype"),
      Case(g, "init_what naming no network", lambda c: train(c, c.fresh("what"), init_from=c.base_run,
                                                            init_what="decoder"),
           clear=r"init_what must be 'all' or names"),
  ]


def _weight_file_cases() -> list[Case]:
  g = "weight files (.pth)"

  def load(kind, data_fn):
    def run(c):
      from jaxpose import convert  # pylint: disable=g-import-not-at-top
      path = c.fresh("w") + ".pth"
      data_fn(path)
      return convert.import_checkpoint(kind, path)
    return run

  def vgg_as_generator(path):
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import torch_writer  # pylint: disable=g-import-not-at-top
    torch_writer.save_state_dict({"features.0.weight": np.zeros((64, 3, 3, 3), np.float32),
                                  "features.0.bias": np.zeros((64,), np.float32)}, path)

  def good_then_truncated(path):
    sys.path.insert(0, os.path.join(REPO, "tests"))
    import torch_writer  # pylint: disable=g-import-not-at-top
    torch_writer.save_state_dict({"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)}, path)
    truncate(path, os.path.getsize(path) // 2)

  return [
      Case(g, "empty .pth", load("vgg19", lambda p: write(p, b"")), clear=r"\.pth"),
      Case(g, "random bytes as .pth", load("vgg19", lambda p: write(p, np.random.default_rng(1).bytes(5000))),
           clear=r"\.pth"),
      Case(g, "truncated .pth", load("vgg19", good_then_truncated), clear=r"\.pth"),
      Case(g, "a VGG file as the ADGAN generator", load("adgan_generator", vgg_as_generator),
           clear=r"enc_content|missing|problem"),
      Case(g, "missing init_from .pth", lambda c: train(c, c.fresh("init"), init_from=c.fresh("x") + "_net_netG.pth",
                                                      vgg19_path="/nonexistent/vgg19.pth"),
           clear=r"config.init_from=.*does not exist"),
      Case(g, "a PATN generator .pth as ADGAN's init_from", _patn_pth_for_adgan,
           clear=r"official patn generator file"),
  ]


def _patn_pth_for_adgan(c: Context):
  sys.path.insert(0, os.path.join(REPO, "tests"))
  import torch_writer  # pylint: disable=g-import-not-at-top
  from jaxpose import systems  # pylint: disable=g-import-not-at-top
  from jaxpose.models import patn  # pylint: disable=g-import-not-at-top
  model = patn.PATNGenerator(image_channels=3, pose_channels=18, width=8, n_downsampling=2, n_blocks=2)
  variables = jax.device_get(model.init(jax.random.PRNGKey(0), np.zeros((1, 32, 24, 3), np.float32),
                                        np.zeros((1, 32, 24, 18), np.float32), np.zeros((1, 32, 24, 18), np.float32)))
  path = c.fresh("patn") + "_net_netG.pth"
  torch_writer.save_state_dict(patn.to_torch(variables), path)
  return systems.get("adgan").load_pretrained(config(c, init_from=path))


def _data_cases() -> list[Case]:
  g = "data files"

  def skipped(result, _):
    return len(result["train"]) > 0 and len(result["test"]) > 0

  return [
      Case(g, "a truncated training image", lambda c: anime_build(
          c, "trunc", lambda m: truncate(f"{m}/alice/a01.jpg", 300)), check=skipped),
      Case(g, "a parsing map of the wrong size", lambda c: anime_build(
          c, "parsing", lambda m: shutil.copy(f"{m}/carol/parsing_lip/c02.png", f"{m}/alice/parsing_lip/a01.png")),
           check=skipped),
      Case(g, "a malformed keypoints row", lambda c: anime_build(
          c, "row", lambda m: open(f"{m}/alice/keypoints.csv", "a").write("a09.jpg:[1, 2]:[oops]\n")),
           check=lambda r, c: skipped(r, c) and "keypoints.csv" in c.logs()),
      Case(g, "a test split of only broken images", lambda c: anime_build(
          c, "allbad", lambda m: [write(f"{m}/dave/{n}", b"x") for n in ("d01.jpg", "d02.jpg")]),
           clear=r"test: .*not one valid image"),
      Case(g, "a test split left with one valid image (no pair)", lambda c: anime_build(
          c, "onebad", lambda m: write(f"{m}/dave/d02.jpg", b"x")), clear=r"test split has no pair"),
      Case(g, "the test character's keypoints.csv missing", lambda c: anime_build(
          c, "nocsv", lambda m: os.remove(f"{m}/dave/keypoints.csv")), clear=r"dave.*not character folders"),
      Case(g, "a damaged prepared record", _damaged_record,
           clear=r"synthetic_people/tiny split 'test': stored image \d+ .*rebuil"),
  ]


def _damaged_record(c: Context):
  from jaxpose.data import sources  # pylint: disable=g-import-not-at-top
  data_dir = c.fresh("tfds")
  shutil.copytree(c.data_dir, data_dir)
  (path,) = glob.glob(f"{data_dir}/synthetic_people/tiny/*/synthetic_people-test.array_record-*")
  truncate(path, os.path.getsize(path) - 5000)
  return sources.pair_source("synthetic_people/tiny", "test", data_dir)[0]


def _interruption_cases() -> list[Case]:
  g = "interruptions"

  def interrupted(sig: int, name: str):
    def run(c):
      workdir = c.fresh(name)
      log = workdir + ".log"
      process = start_main(c, workdir, "--config.num_train_steps=3", log=log)
      wait_for_rows(workdir, 1, process)
      process.send_signal(sig)
      wait(process)
      run_main(c, workdir, "--config.num_train_steps=3")
      return workdir
    return run

  def identical(workdir, c):
    return same_weights(weights(workdir), weights(c.reference3))

  return [
      Case(g, "SIGTERM mid-training, then re-run", interrupted(signal.SIGTERM, "sigterm"), check=identical),
      Case(g, "SIGKILL mid-training, then re-run", interrupted(signal.SIGKILL, "sigkill"), check=identical),
      Case(g, "Ctrl-C mid-training, then re-run", interrupted(signal.SIGINT, "sigint"), check=identical),
      Case(g, "SIGTERM leaves a checkpoint of the step reached", _sigterm_checkpoint,
           check=lambda r, c: r[0] == 143 and r[1] >= 2),
  ]


def _sigterm_checkpoint(c: Context):
  workdir = c.fresh("sigterm_ckpt")
  log = workdir + ".log"
  process = start_main(c, workdir, "--config.num_train_steps=1000", "--config.checkpoint_every=1000",
                       "--config.sample_every=1000", log=log)
  wait_for_rows(workdir, 2, process)
  process.send_signal(signal.SIGTERM)
  wait(process)
  steps = [int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))] if os.path.isdir(
      os.path.join(workdir, "checkpoints")) else []
  return process.returncode, max(steps, default=0)


def _workdir_cases() -> list[Case]:
  g = "one run directory, two runs"

  def second_while_first_runs(c):
    workdir = c.copy_base("second")
    first = start_main(c, workdir, "--config.num_train_steps=6", log=workdir + ".first.log")
    wait_for_rows(workdir, 3, first)
    try:
      return run_main(c, workdir, "--config.num_train_steps=6", "--config.optim.learning_rate=5e-4")
    finally:
      wait(first)

  def two_fresh_together(c):
    workdir = c.fresh("together")
    a = start_main(c, workdir, log=workdir + ".a.log")
    b = start_main(c, workdir, log=workdir + ".b.log")
    wait(a)
    wait(b)
    logs = open(workdir + ".a.log").read() + open(workdir + ".b.log").read()
    return sorted([a.returncode, b.returncode]), logs

  def evaluate_while_training(c):
    workdir = c.copy_base("evaluate")
    first = start_main(c, workdir, "--config.num_train_steps=6", log=workdir + ".first.log")
    wait_for_rows(workdir, 3, first)
    try:
      return run_main(c, workdir, "--mode=evaluate")
    finally:
      wait(first)

  def stale_lock(c):
    workdir = c.copy_base("stale")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from jaxpose import run_lock; "
                               "run_lock.acquire(sys.argv[1], 'train'); print('held', flush=True); time.sleep(99)",
                               workdir], stdout=subprocess.PIPE, text=True, cwd=REPO)
    holder.stdout.readline()
    holder.kill()
    holder.wait()
    return run_main(c, workdir, "--config.num_train_steps=3")

  return [
      Case(g, "a second training (another learning rate) while the first runs", second_while_first_runs,
           clear=r"in use by another jaxpose run: train started .* by pid \d+ on host"),
      Case(g, "two fresh trainings started together", two_fresh_together,
           check=lambda r, c: r[0] == [0, 1] and "in use by another jaxpose run" in r[1]),
      Case(g, "--mode=evaluate while a training runs", evaluate_while_training,
           clear=r"in use by another jaxpose run"),
      Case(g, "the lock of a killed run", stale_lock, check=lambda r, c: "Took over the lock" in r),
  ]


def _checkpoint_cases() -> list[Case]:
  g = "damaged checkpoints"
  damage = {
      "a data file truncated": lambda s: truncate(largest_data_file(s), os.path.getsize(largest_data_file(s)) // 2),
      "a data file deleted": lambda s: os.remove(largest_data_file(s)),
      "4 KiB of random bytes in a data file": lambda s: overwrite_4k(largest_data_file(s)),
      "_METADATA deleted": lambda s: os.remove(f"{s}/state/_METADATA"),
      "_METADATA truncated": lambda s: truncate(f"{s}/state/_METADATA", 100),
      "manifest.ocdbt deleted": lambda s: os.remove(f"{s}/state/manifest.ocdbt"),
      "the input-position JSON emptied": lambda s: truncate(f"{s}/data/process_0-of-1.json", 0),
      "the state directory deleted": lambda s: shutil.rmtree(f"{s}/state"),
      "_CHECKPOINT_METADATA deleted": lambda s: os.remove(f"{s}/_CHECKPOINT_METADATA"),
  }

  def resume(damage_fn):
    def run(c):
      workdir = c.copy_base("damaged")
      damage_fn(os.path.join(workdir, "checkpoints", "2"))
      train(c, workdir, num_train_steps=2)
      return workdir
    return run

  def recovered(workdir, c):
    # Step 2 again equals the undamaged run's, and the older step is still there.
    return (same_weights(weights(workdir), weights(c.base_run))
            and os.path.isdir(os.path.join(workdir, "checkpoints", "1")))

  cases = [Case(g, f"latest step: {name}, then re-run", resume(fn), check=recovered) for name, fn in damage.items()]

  def all_damaged(c):
    workdir = c.copy_base("all")
    for step in ("1", "2"):
      overwrite_4k(largest_data_file(os.path.join(workdir, "checkpoints", step)))
    return train(c, workdir, num_train_steps=2)

  def generate_from_damaged(c):
    from jaxpose import generate  # pylint: disable=g-import-not-at-top
    workdir = c.copy_base("gen")
    overwrite_4k(largest_data_file(os.path.join(workdir, "checkpoints", "2")))
    return generate.load_generator(config(c), workdir)[1]

  cases += [
      Case(g, "every step damaged, then re-run", all_damaged, clear=r"no intact checkpoint .*every step was damaged"),
      # Right: the generator weights of an intact step (step 2's if the damage spared them, else step 1's).
      Case(g, "generate from a run whose latest step is damaged", generate_from_damaged,
           check=lambda nets, c: any(same_weights(nets["generator"], _step_weights(c, s)["generator"])
                                     for s in (1, 2))),
  ]
  return cases


def _step_weights(c: Context, step: int) -> dict:
  from jaxpose import checkpoints  # pylint: disable=g-import-not-at-top
  return checkpoints.read_weights(os.path.join(c.base_run, "checkpoints", str(step)))[0]


def _divergence_cases() -> list[Case]:
  g = "divergence"

  def huge_then_advice(c):
    workdir = c.copy_base("advice")
    try:
      train(c, workdir, num_train_steps=4, **{"optim.learning_rate": 1e6})
    except FloatingPointError:
      pass
    # The advice: resume from the named checkpoint with a sane learning rate.
    return train(c, workdir, num_train_steps=4), workdir

  return [
      Case(g, "learning rate 1e6 from scratch", lambda c: train(c, c.fresh("lr"), num_train_steps=4,
                                                              **{"optim.learning_rate": 1e6}),
           clear=r"diverged at step 1.*No checkpoint precedes"),
      Case(g, "learning rate 1e6 after two good steps", lambda c: train(c, c.copy_base("lr2"), num_train_steps=4,
                                                                      **{"optim.learning_rate": 1e6}),
           clear=r"diverged at step 3.*last good checkpoint is step 2.*re-run the same command"),
      Case(g, "following the divergence message", huge_then_advice,
           check=lambda r, c: r[0]["train_steps"] == 4 and finite(weights(r[1]))),
      Case(g, "resume from an earlier step (restore_step=1)", lambda c: train(c, c.copy_base("restore"),
                                                                            num_train_steps=2, restore_step=1),
           check=lambda r, c: r["train_steps"] == 2),
  ]


def _split_cases() -> list[Case]:
  g = "empty splits"

  def train_on(c, damage, name):
    built = anime_build(c, name, damage)
    return train(c, c.fresh("t"), **{"data.name": "anime_pose/64x44", "data.data_dir": built["data_dir"],
                                      "data.image_size": (64, 44)})

  return [
      Case(g, "training where the test split of the build has one good image", lambda c: train_on(
          c, lambda m: write(f"{m}/dave/d02.jpg", b"x"), "split1"), clear=r"test split has no pair|holds no pairs"),
  ]


def _pose_cases() -> list[Case]:
  g = "target poses (generate)"
  joints = [[10 + i, 5 + i] for i in range(18)]

  def custom(c, pose, size=(), name="pose", image=True, parsing=True):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    from jaxpose import generate  # pylint: disable=g-import-not-at-top
    folder = c.fresh(name)
    os.makedirs(folder)
    if image:
      Image.fromarray(np.full((64, 48, 3), 128, np.uint8)).save(f"{folder}/me.png")
    if parsing:
      Image.fromarray(np.zeros((64, 48), np.uint8)).save(f"{folder}/me_lip.png")
    cfg = config(c, **{"generate.source_image": f"{folder}/me.png", "generate.source_parsing": f"{folder}/me_lip.png",
                       "generate.target_keypoints": pose, "generate.target_keypoints_size": size})
    return generate._custom_inputs(cfg, (32, 24))  # pylint: disable=protected-access

  def pose_drawn(batch, c):
    return int(np.sum(batch["target_keypoints"][0] >= 0)) > 0

  nan = json.dumps(joints).replace("[11, 6]", "[NaN, 6]")
  outside = [list(j) for j in joints]
  outside[4] = [40, 5]
  return [
      Case(g, "a NaN joint", lambda c: custom(c, nan), clear=r"neck are NaN"),
      Case(g, "every joint missing", lambda c: custom(c, json.dumps([[-1, -1]] * 18)), clear=r"every joint is missing"),
      Case(g, "17 joints", lambda c: custom(c, json.dumps(joints[:17])), clear=r"expected 18"),
      Case(g, "a joint outside the frame", lambda c: custom(c, json.dumps(outside)),
           check=lambda b, c: pose_drawn(b, c) and "right_wrist (y=40, x=5)" in c.logs()),
      Case(g, "a larger image's keypoints without their frame (most lost)",
           lambda c: custom(c, json.dumps([[2 * y, 2 * x] for y, x in joints])),
           check=lambda b, c: "frame is probably wrong" in c.logs()),
      Case(g, "a 256x176 image's keypoints without their frame (all lost)",
           lambda c: custom(c, json.dumps([[8 * y, 8 * x] for y, x in joints])), clear=r"target_keypoints_size"),
      Case(g, "the same keypoints with their frame",
           lambda c: custom(c, json.dumps([[8 * y, 8 * x] for y, x in joints]), size=(256, 176)),
           # all but left_ear (x=176, on the edge of a 176-wide frame: outside, and named in a warning)
           check=lambda b, c: int(np.sum(np.all(b["target_keypoints"][0] >= 0, -1))) == 17 and "left_ear" in c.logs()),
      Case(g, "a JSON list written with spaces",
           lambda c: custom(c, " [ " + ", ".join(f"[ {y}, {x} ]" for y, x in joints) + " ] "), check=pose_drawn),
      Case(g, "a missing source image", lambda c: custom(c, json.dumps(joints), image=False),
           clear=r"config.generate.source_image="),
      Case(g, "a missing parsing map", lambda c: custom(c, json.dumps(joints), parsing=False),
           clear=r"config.generate.source_parsing="),
  ]


def _elsewhere_cases() -> list[Case]:
  g = "running from elsewhere"

  def from_elsewhere(c):
    site = c.fresh("site")
    os.makedirs(site)
    for package in ("jaxpose", "tfds_builders"):
      os.symlink(os.path.join(REPO, package), os.path.join(site, package))
    return run_main(c, c.fresh("run"), "--config.num_train_steps=1", cwd=site,
                    env={**os.environ, "PYTHONPATH": site},
                    config_path=os.path.join(REPO, "configs", "synthetic_adgan.py:tiny"))

  return [Case(g, "an absolute --config from another directory", from_elsewhere,
               check=lambda r, c: "Test metrics" in r)]


def _message_cases() -> list[Case]:
  g = "messages"

  def evaluate_unwritable(c):
    from jaxpose import train as train_lib  # pylint: disable=g-import-not-at-top
    workdir = c.copy_base("ro")
    os.remove(os.path.join(workdir, "metrics.json"))
    os.mkdir(os.path.join(workdir, "metrics.json"))
    return train_lib.evaluate_checkpoint(config(c), workdir)

  return [
      Case(g, "ADGAN with parsing_merge=lip", lambda c: train(c, c.fresh("lip"), **{"data.parsing_merge": "lip"}),
           clear=r"config.data.parsing_merge"),
      Case(g, "a run directory of another model", lambda c: _train_module(c, "synthetic_patn"),
           clear=r"holds a run of another model.*config.model='adgan'; this config has 'patn'"),
      Case(g, "a run directory of another width", lambda c: train(c, c.copy_base("width"), num_train_steps=3,
                                                                 **{"generator.width": 16}),
           clear=r"holds a run of another model or shape .*another shape"),
      Case(g, "--mode=evaluate where metrics.json cannot be written", evaluate_unwritable,
           clear=r"cannot write .*metrics.json"),
  ]


def _train_module(c: Context, module: str):
  from jaxpose import train as train_lib  # pylint: disable=g-import-not-at-top
  return train_lib.train_and_evaluate(config(c, module, num_train_steps=3), c.copy_base(module))


def _small_cases() -> list[Case]:
  g = "smaller"

  def tiny_more_steps(c):
    from jaxpose import optim  # pylint: disable=g-import-not-at-top
    cfg = config(c, num_train_steps=50)
    schedule = optim.learning_rate_schedule(cfg.optim)
    return [float(schedule(s)) for s in range(50)], cfg.optim.learning_rate

  def patn_bn_export(c):
    from jaxpose.models import patn  # pylint: disable=g-import-not-at-top
    model = patn.PATNGenerator(image_channels=3, pose_channels=18, width=8, n_downsampling=2, n_blocks=2, norm="batch")
    x, p = np.zeros((1, 32, 24, 3), np.float32), np.zeros((1, 32, 24, 18), np.float32)
    variables = jax.device_get(model.init(jax.random.PRNGKey(0), x, p, p))
    return patn.from_torch(patn.to_torch(variables), model), variables

  def init_from_on_resume(c):
    workdir = c.copy_base("initfrom")
    train(c, workdir, num_train_steps=2, init_from=c.base_run)
    return workdir

  return [
      Case(g, "a :tiny config given 50 steps", tiny_more_steps,
           check=lambda r, c: min(r[0]) == max(r[0]) == r[1] > 0),
      Case(g, "patn.to_torch of a batch-norm PATN (no model given)", patn_bn_export,
           check=lambda r, c: same_weights(r[0], r[1])),
      Case(g, "init_from while the run directory has checkpoints", init_from_on_resume,
           check=lambda r, c: "is not used" in c.logs()),
  ]


def all_cases() -> list[Case]:
  return (_config_cases() + _weight_file_cases() + _data_cases() + _interruption_cases() + _workdir_cases()
          + _checkpoint_cases() + _divergence_cases() + _split_cases() + _pose_cases() + _elsewhere_cases()
          + _message_cases() + _small_cases())


# ----------------------------------------------------------------------------
# Running and counting


def classify(case: Case, ctx: Context) -> tuple[str, str]:
  """(outcome, one-line detail) of running `case`."""
  box: dict[str, Any] = {}

  def target():
    try:
      box["result"] = case.run(ctx)
    except BaseException as e:  # pylint: disable=broad-except
      box["error"] = e
      box["trace"] = traceback.format_exc()

  worker = threading.Thread(target=target, daemon=True)
  worker.start()
  worker.join(case.timeout)
  if worker.is_alive():
    return "hang", f"no outcome after {case.timeout:.0f} s"
  if "error" in box:
    error = box["error"]
    if isinstance(error, Hung):
      return "hang", str(error)
    message = f"{type(error).__name__}: {error}"
    last = message.strip().splitlines()[-1] if message.strip() else message
    import re  # pylint: disable=g-import-not-at-top
    if case.clear is not None and re.search(case.clear, message, re.DOTALL):
      return "clear error", last[:160]
    return "unclear error", last[:160]
  if case.clear is not None:
    return "silent wrong", "went through where it should have stopped"
  try:
    good = case.check(box["result"], ctx) if case.check else True
  except Exception as e:  # pylint: disable=broad-except
    return "silent wrong", f"check failed: {type(e).__name__}: {e}"[:160]
  return ("handled correctly", "as wanted") if good else ("silent wrong", "went through with a wrong result")


def prepare(ctx: Context) -> None:
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from jaxpose.data import sources  # pylint: disable=g-import-not-at-top
  tfds.disable_progress_bar()
  sources.pair_source("synthetic_people/tiny", "train", ctx.data_dir)
  ctx.base_run = os.path.join(ctx.root, "base_run")
  train(ctx, ctx.base_run, num_train_steps=2)
  ctx.reference3 = os.path.join(ctx.root, "reference3")
  train(ctx, ctx.reference3, num_train_steps=3)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--only", default="", help="run the cases whose class or name contains one of these "
                      "comma-separated words")
  parser.add_argument("--list", action="store_true", help="list the cases and exit")
  parser.add_argument("--workdir", default="", help="where to work (default: a temporary directory, removed)")
  parser.add_argument("--cache", default=os.path.join(REPO, ".jax_cache"), help="XLA compilation cache")
  args = parser.parse_args()
  words = [w.strip().lower() for w in args.only.split(",")]
  cases = [c for c in all_cases() if any(w in (c.group + " " + c.name).lower() for w in words)]
  if args.list:
    for case in cases:
      print(f"{case.group:28s} {case.name}")
    print(f"{len(cases)} cases")
    return
  jax.config.update("jax_compilation_cache_dir", args.cache)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
  root = args.workdir or tempfile.mkdtemp(prefix="jaxpose_bad_inputs_")
  os.makedirs(root, exist_ok=True)
  ctx = Context(root=root, data_dir=os.path.join(root, "tfds"), cache=args.cache)
  logging.getLogger().addHandler(ctx.records)
  logging.getLogger().setLevel(logging.INFO)
  logging.getLogger("absl").setLevel(logging.INFO)
  started = time.time()
  prepare(ctx)
  counts = {o: 0 for o in OUTCOMES}
  for case in cases:
    ctx.records.lines.clear()
    case_start = time.time()
    outcome, detail = classify(case, ctx)
    counts[outcome] += 1
    print(f"{outcome:17s} {time.time() - case_start:6.1f}s  [{case.group}] {case.name}: {detail}", flush=True)
  print(f"\n{len(cases)} cases in {time.time() - started:.0f} s:")
  for outcome in OUTCOMES:
    print(f"  {outcome:17s} {counts[outcome]}")
  sys.stdout.flush()
  if not args.workdir:
    shutil.rmtree(root, ignore_errors=True)
  # A hung case's thread may still run: leave without waiting for it.
  os._exit(0)  # pylint: disable=protected-access


if __name__ == "__main__":
  main()
