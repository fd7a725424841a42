"""The training engine at toy size, on 2 fake CPU devices (tests/conftest.py).

Covers: a short run that checkpoints, evaluates and writes its pictures; one step on 2
devices == the same global batch on 1 device; fine-tuning starts (our
checkpoint and an official-format .pth); bad configurations. Faults (NaN, divergence, damaged
checkpoints, a shared workdir) are in tests/test_reliability.py; resume exactness, for every
system, in tests/test_systems.py.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from configs import synthetic_adgan
from jaxpose import checkpoints
from jaxpose import losses
from jaxpose import sharding
from jaxpose import systems
from jaxpose import train
from jaxpose.models import adgan
from jaxpose.systems import adgan as adgan_system
import torch_writer


def _config(data_dir, **overrides):
  config = synthetic_adgan.get_config("tiny")
  config.data.data_dir = data_dir
  config.update_from_flattened_dict(overrides)  # "a.b" keys, type-checked
  return config


def _assert_trees_close(a, b, **tolerance):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b) > 0
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tolerance)


def test_short_run_checkpoints_evaluates_and_draws(tiny_data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  results = train.train_and_evaluate(_config(tiny_data_dir, num_train_steps=2), workdir)
  for name in ("data_samples.png", "loss_curves.png", "metrics.json", "metrics_history.jsonl",
               "samples/step_0000002.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2"]
  with open(os.path.join(workdir, "metrics.json")) as f:
    metrics = json.load(f)
  assert metrics == pytest.approx(results)
  for key in ("ssim", "psnr", "l1", "ssim_source_baseline", "num_pairs", "train_steps"):
    assert key in metrics
  assert metrics["train_steps"] == 2 and metrics["num_pairs"] == 8
  assert 0 < metrics["ssim_source_baseline"] < 1
  with open(os.path.join(workdir, "metrics_history.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  assert [r["step"] for r in rows] == [1, 2]
  for key in ("g_total", "g_l1", "g_perceptual", "g_cx", "g_gan", "d_pb", "d_pp", "learning_rate",
              "steps_per_sec", "images_per_sec"):
    assert np.isfinite(rows[-1][key]), key
  # The same command again finds the finished run and restores it instead of retraining.
  again = train.train_and_evaluate(_config(tiny_data_dir, num_train_steps=2), workdir)
  assert again["train_steps"] == 2


def test_two_devices_equal_one_device(tiny_data_dir):
  assert jax.device_count() == 2
  config = _config(tiny_data_dir)
  data = train.open_data(config)
  rng = np.random.default_rng(0)
  shapes = train.example_batch_shapes(data.transform, systems.get(config.model).batch_keys(config))
  batch = {k: rng.uniform(-1, 1, (4,) + s.shape[1:]).astype(np.float32) for k, s in shapes.items()}
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:2]):
    mesh = sharding.make_mesh(devices)
    engine = train.build(config, mesh, data)
    state = engine.create()
    state, first = engine.step(state, sharding.to_global_arrays(batch, mesh))
    state, second = engine.step(state, sharding.to_global_arrays(batch, mesh))
    results.append(jax.device_get((state.nets["generator"]["params"], state.nets["discriminator_pb"]["params"],
                                   first, second)))
  (g1, d1, first_1, second_1), (g2, d2, first_2, second_2) = results
  assert {"g_grad_norm", "d_pb_grad_norm", "d_pp_grad_norm"} <= set(first_1)
  # Losses and gradient norms agree to float32 reduction-order round-off (the second
  # step starts from parameters that already differ by that round-off, see below).
  for key in first_1:
    # The update ratios (jaxpose/divergence.py) measure the parameter updates, which differ in a few
    # elements (see below): they agree to 1e-3.
    rtol = 1e-3 if key.startswith("update_ratio_") else 1e-5
    np.testing.assert_allclose(first_2[key], first_1[key], rtol=rtol, atol=1e-6, err_msg=key)
    np.testing.assert_allclose(second_2[key], second_1[key], rtol=max(rtol, 2e-4), atol=1e-6, err_msg=key)
  # Adam's first updates are +-lr wherever |grad| >> eps, so a gradient that is zero
  # up to round-off can flip its element's update sign: parameters agree to 1e-6
  # almost everywhere and never differ by more than Adam's step bound 2 * lr * steps.
  for new_1, new_2 in ((g1, g2), (d1, d2)):
    diff = np.concatenate([np.abs(np.asarray(a) - np.asarray(b)).ravel()
                           for a, b in zip(jax.tree.leaves(new_1), jax.tree.leaves(new_2))])
    assert diff.max() <= 2 * config.optim.learning_rate * 2
    assert np.mean(diff > 1e-6) < 0.02


def test_region_l1_joins_the_generator_loss_with_its_weight(tiny_data_dir):
  config = _config(tiny_data_dir, **{"loss.region_l1": 2.0})
  config.loss.region_l1_weights = {"hair": 3.0, "background": 0.5}  # stage 14's knob, checked on the way
  region_weights = np.ones(8, np.float32)
  region_weights[[0, 2]] = (0.5, 3.0)  # adgan8: background 0, hair 2
  keys = systems.get(config.model).batch_keys(config)
  assert "target_parsing" in keys and "target_parsing" not in systems.get(config.model).batch_keys(
      _config(tiny_data_dir))
  data = train.open_data(config)
  shapes = train.example_batch_shapes(data.transform, keys)
  rng = np.random.default_rng(1)
  batch = {k: rng.uniform(-1, 1, (4,) + s.shape[1:]).astype(np.float32) for k, s in shapes.items()}
  labels = rng.integers(0, shapes["target_parsing"].shape[-1], (4,) + shapes["target_parsing"].shape[1:3])
  batch["target_parsing"] = np.eye(shapes["target_parsing"].shape[-1], dtype=np.float32)[labels]
  mesh = sharding.make_mesh(jax.devices()[:1])
  engine = train.build(config, mesh, data)
  state = engine.create()
  fake = engine.system.generate(jax.device_get(state.nets), batch)["image"]
  expected = float(losses.region_l1_loss(fake, batch["target_image"], batch["target_parsing"], region_weights))
  assert abs(expected - float(losses.region_l1_loss(fake, batch["target_image"], batch["target_parsing"]))) > 1e-4
  _, metrics = engine.step(state, sharding.to_global_arrays(batch, mesh))
  metrics = jax.device_get(metrics)
  np.testing.assert_allclose(metrics["g_region_l1"], expected, rtol=1e-4)
  weights = config.loss
  total = (weights.l1 * metrics["g_l1"] + weights.perceptual * metrics["g_perceptual"] + weights.cx * metrics["g_cx"]
           + 2.0 * metrics["g_region_l1"] + weights.gan * metrics["g_gan"])
  np.testing.assert_allclose(metrics["g_total"], total, rtol=1e-5)
  assert "g_region_l1" in dict(engine.system.loss_panels())["generator"]


def test_region_l1_weights_name_components_or_fail_clearly(tiny_data_dir):
  config = _config(tiny_data_dir, **{"loss.region_l1": 1.0})
  assert adgan_system.region_l1_weights(config) is None  # unset: every region alike
  config.loss.region_l1_weights = {"hair": 4.0}
  np.testing.assert_array_equal(adgan_system.region_l1_weights(config), [1, 1, 4, 1, 1, 1, 1, 1])
  config.loss.region_l1_weights = {"hat": 4.0}
  with pytest.raises(ValueError, match=r"names \['hat'\].*'upper_clothes'"):
    train.open_data(config)  # the system's check, before any compiling
  config.loss.region_l1_weights = {"hair": -1.0}
  with pytest.raises(ValueError, match="must be >= 0"):
    adgan_system.region_l1_weights(config)


def test_fine_tuning_starts_from_weights_only(tiny_data_dir, tiny_adgan_run, tmp_path):
  source = tiny_adgan_run  # tests/conftest.py: a one-step run of this config
  trained, _ = checkpoints.read_weights(source)

  config = _config(tiny_data_dir, init_from=source)
  mesh = sharding.make_mesh()
  data = train.open_data(config)
  engine = train.build(config, mesh, data)
  mngr = checkpoints.manager(str(tmp_path / "fresh"), 2)
  state, origin = train.initial_state(config, mngr, engine, iterator=None)
  assert "fine-tuning" in origin and int(state.step) == 0
  _assert_trees_close(state.nets["generator"], trained["generator"], rtol=0, atol=0)
  _assert_trees_close(state.nets["discriminator_pb"]["params"], trained["discriminator_pb"]["params"],
                      rtol=0, atol=0)
  # Fresh optimizers: Adam's moments start at zero.
  assert all(not np.asarray(x).any() for x in jax.tree.leaves(state.opt["generator"][0].mu))

  only_g = _config(tiny_data_dir, init_from=source, init_what="generator")
  state_g, _ = train.initial_state(only_g, mngr, engine, iterator=None)
  _assert_trees_close(state_g.nets["generator"]["params"], trained["generator"]["params"], rtol=0, atol=0)
  fresh_d = np.asarray(jax.tree.leaves(state_g.nets["discriminator_pb"]["params"])[0])
  assert not np.allclose(fresh_d, np.asarray(jax.tree.leaves(trained["discriminator_pb"]["params"])[0]))

  # An official-format generator file (legacy PyTorch pickle, DataParallel `module.` keys).
  state_dict = adgan.to_torch(trained["generator"], engine.system.generator)
  pth = str(tmp_path / "800_net_netG.pth")
  torch_writer.save_state_dict({f"module.{k}": v for k, v in state_dict.items()}, pth, legacy_format=True)
  official = _config(tiny_data_dir, init_from=pth, init_what="generator")
  engine_o = train.build(official, mesh, data)
  state_o, origin = train.initial_state(official, mngr, engine_o, iterator=None)
  assert pth in origin
  _assert_trees_close(state_o.nets["generator"]["params"], trained["generator"]["params"], rtol=0, atol=0)

  wrong = _config(tiny_data_dir, init_from=source, **{"generator.width": 8})
  engine_w = train.build(wrong, mesh, data)
  with pytest.raises(ValueError, match="do not fit"):
    train.initial_state(wrong, mngr, engine_w, iterator=None)
  with pytest.raises(ValueError, match="init_what"):
    train.initial_state(_config(tiny_data_dir, init_from=source, init_what="generator,decoder"), mngr, engine,
                        iterator=None)


def _main(*flags, timeout=600):
  return subprocess.run([sys.executable, "-m", "jaxpose.main", "--config", "configs/synthetic_adgan.py:tiny",
                         *flags], capture_output=True, text=True, timeout=timeout, cwd=os.getcwd())


def test_bad_configurations_fail_clearly(tiny_data_dir, tmp_path):
  typo = _main("--workdir", str(tmp_path / "a"), "--config.batch_sise=8")
  assert typo.returncode != 0 and "batch_sise" in typo.stderr
  with pytest.raises(FileNotFoundError, match="tfds build tfds_builders/deepfashion_pose"):
    train.train_and_evaluate(_config(tiny_data_dir, **{"data.name": "deepfashion_pose"}), str(tmp_path / "b"))
  with pytest.raises(ValueError, match=r"image_size is \(64, 44\).*\(32, 24\)"):
    train.train_and_evaluate(_config(tiny_data_dir, **{"data.image_size": (64, 44)}), str(tmp_path / "c"))
  with pytest.raises(ValueError, match="multiple of the number of devices"):
    train.train_and_evaluate(_config(tiny_data_dir, batch_size=3), str(tmp_path / "d"))


def test_without_tensorflow_metrics_go_to_the_log_with_progress_and_eta(monkeypatch, caplog, tmp_path):
  # clu's metric writers import TensorFlow; GPU images often lack it, and training must not need it.
  import builtins  # pylint: disable=g-import-not-at-top
  real_import = builtins.__import__

  def no_clu(name, *args, **kwargs):
    if name == "clu" or name.startswith("clu."):
      raise ImportError("No module named 'tensorflow'")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", no_clu)
  config = synthetic_adgan.get_config("tiny")
  config.num_train_steps, config.log_every = 40, 20
  with caplog.at_level("INFO"):
    writer, hooks = train._writer_and_hooks(config, str(tmp_path), is_chief=True)
    writer.write_scalars(20, {"g_l1": np.float32(0.25)})
    writer.write_images(20, {"samples": np.zeros((1, 4, 4, 3), np.uint8)})
    for step in range(1, 41):
      for hook in hooks:
        hook(step)
  text = caplog.text
  assert "No TensorBoard summaries" in text and "[20] g_l1=0.25" in text
  assert "100.0% (40/40), ETA: 0m" in text and "50.0% (20/40)" in text
