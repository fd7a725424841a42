"""Inception-v3 (architecture, weight import, preprocessing), FID and IS."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxpose.metrics import fid as fid_lib
from jaxpose.io.state_dict import count_parameters
from jaxpose.metrics import inception
import torch_writer

# ---------------------------------------------------------------- architecture


def test_parameter_counts_match_torchvision():
  # torchvision lists 27,161,264 parameters for inception_v3 with its auxiliary
  # classifier; that head (conv0 768->128 1x1 + BN, conv1 128->768 5x5 + BN,
  # fc 768->1000) holds 98,560 + 2,459,136 + 769,000 = 3,326,696 of them.
  tv = inception.variable_shapes(inception.InceptionV3(variant="torchvision"))
  assert count_parameters(tv["params"]) == 27_161_264 - 3_326_696
  fid = inception.variable_shapes(inception.InceptionV3(variant="fid"))
  # pytorch-fid's port: 8 more classes (1008), fc 2048 -> 1008 with bias.
  assert count_parameters(fid["params"]) == 27_161_264 - 3_326_696 + 8 * 2049
  assert count_parameters(tv["batch_stats"]) == count_parameters(fid["batch_stats"])


def test_torchvision_key_names_and_shapes():
  shapes = inception.torch_state_dict_shapes(inception.InceptionV3())
  # 94 BasicConv2d x (conv.weight, bn.weight, bn.bias, running_mean, running_var) + fc.weight/bias.
  assert len(shapes) == 94 * 5 + 2
  expected = {
      "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
      "Conv2d_3b_1x1.conv.weight": (80, 64, 1, 1),
      "Mixed_5b.branch5x5_2.conv.weight": (64, 48, 5, 5),
      "Mixed_5d.branch_pool.conv.weight": (64, 288, 1, 1),
      "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
      "Mixed_6c.branch7x7_2.conv.weight": (160, 160, 1, 7),
      "Mixed_6c.branch7x7_3.conv.weight": (192, 160, 7, 1),
      "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
      "Mixed_7b.branch3x3_1.conv.weight": (384, 1280, 1, 1),
      "Mixed_7c.branch3x3dbl_3a.conv.weight": (384, 384, 1, 3),
      "Mixed_7c.branch_pool.bn.running_mean": (192,),
      "fc.weight": (1000, 2048),
  }
  for key, shape in expected.items():
    assert shapes[key] == shape, key


def test_full_size_output_shapes_without_computing():
  x = jax.ShapeDtypeStruct((2, 299, 299, 3), jnp.float32)
  for variant, classes in (("torchvision", 1000), ("fid", 1008)):
    model = inception.InceptionV3(variant=variant)
    out = jax.eval_shape(model.apply, inception.variable_shapes(model), x)
    assert out["pool3"].shape == (2, 2048)
    assert out["logits"].shape == out["logits_unbiased"].shape == (2, classes)


@pytest.fixture(scope="module")
def small_fid_model():
  model = inception.InceptionV3(variant="fid", width_divisor=8)
  return model, inception.random_variables(model, seed=0)


def test_reduced_forward_from_uint8_images(small_fid_model):
  model, variables = small_fid_model
  images = np.random.default_rng(0).integers(0, 256, (2, 64, 48, 3)).astype(np.uint8)
  out = inception.inception_outputs(model, variables, images, "tf_is")
  # 320 + 2 * 384 + 2 * 384 + 192 channels, each divided by 8.
  assert out["pool3"].shape == (2, 256)
  assert out["logits"].shape == (2, 1008)
  np.testing.assert_allclose(np.asarray(out["logits"] - out["logits_unbiased"]),
                             np.broadcast_to(variables["params"]["fc"]["bias"], (2, 1008)), atol=1e-5)
  assert np.all(np.isfinite(np.asarray(out["pool3"]))) and np.asarray(out["pool3"]).std() > 0
  # Different images give different features.
  assert np.abs(np.asarray(out["pool3"][0] - out["pool3"][1])).max() > 1e-3


# ---------------------------------------------------------------- blocks against numpy


def _np_conv(x, weight_oihw, stride=1, pad=(0, 0)):
  x = np.pad(x, ((0, 0), (pad[0], pad[0]), (pad[1], pad[1]), (0, 0)))
  kh, kw = weight_oihw.shape[2:]
  windows = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
  return np.einsum("bhwcij,ocij->bhwo", windows, weight_oihw.astype(np.float64))


def _np_basic(sd, prefix, x, stride=1, pad=(0, 0)):
  y = _np_conv(x, sd[f"{prefix}.conv.weight"], stride, pad)
  y = (y - sd[f"{prefix}.bn.running_mean"]) / np.sqrt(sd[f"{prefix}.bn.running_var"] + 1e-3)
  return np.maximum(y * sd[f"{prefix}.bn.weight"] + sd[f"{prefix}.bn.bias"], 0)


def _np_pool3x3(x, kind):
  """3x3 stride-1 pad-1 pools as torch computes them."""
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=-np.inf if kind == "max" else 0)
  windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3), axis=(1, 2))
  if kind == "max":
    return windows.max(axis=(-1, -2))
  if kind == "avg_include_pad":
    return windows.sum(axis=(-1, -2)) / 9.0
  ones = np.pad(np.ones(x.shape[1:3]), 1)
  counts = np.lib.stride_tricks.sliding_window_view(ones, (3, 3)).sum(axis=(-1, -2))
  return windows.sum(axis=(-1, -2)) / counts[None, :, :, None]


def _np_block_a(sd, p, x, pool):
  b1 = _np_basic(sd, f"{p}.branch1x1", x)
  b5 = _np_basic(sd, f"{p}.branch5x5_2", _np_basic(sd, f"{p}.branch5x5_1", x), pad=(2, 2))
  b3 = _np_basic(sd, f"{p}.branch3x3dbl_1", x)
  b3 = _np_basic(sd, f"{p}.branch3x3dbl_3", _np_basic(sd, f"{p}.branch3x3dbl_2", b3, pad=(1, 1)), pad=(1, 1))
  bp = _np_basic(sd, f"{p}.branch_pool", _np_pool3x3(x, pool))
  return np.concatenate([b1, b5, b3, bp], axis=-1)


def _np_block_c(sd, p, x, pool):
  b1 = _np_basic(sd, f"{p}.branch1x1", x)
  b7 = _np_basic(sd, f"{p}.branch7x7_1", x)
  b7 = _np_basic(sd, f"{p}.branch7x7_2", b7, pad=(0, 3))
  b7 = _np_basic(sd, f"{p}.branch7x7_3", b7, pad=(3, 0))
  bd = _np_basic(sd, f"{p}.branch7x7dbl_1", x)
  for i, pad in zip(range(2, 6), [(3, 0), (0, 3), (3, 0), (0, 3)]):
    bd = _np_basic(sd, f"{p}.branch7x7dbl_{i}", bd, pad=pad)
  bp = _np_basic(sd, f"{p}.branch_pool", _np_pool3x3(x, pool))
  return np.concatenate([b1, b7, bd, bp], axis=-1)


def _np_block_e(sd, p, x, pool):
  b1 = _np_basic(sd, f"{p}.branch1x1", x)
  b3 = _np_basic(sd, f"{p}.branch3x3_1", x)
  b3 = np.concatenate([_np_basic(sd, f"{p}.branch3x3_2a", b3, pad=(0, 1)),
                       _np_basic(sd, f"{p}.branch3x3_2b", b3, pad=(1, 0))], axis=-1)
  bd = _np_basic(sd, f"{p}.branch3x3dbl_2", _np_basic(sd, f"{p}.branch3x3dbl_1", x), pad=(1, 1))
  bd = np.concatenate([_np_basic(sd, f"{p}.branch3x3dbl_3a", bd, pad=(0, 1)),
                       _np_basic(sd, f"{p}.branch3x3dbl_3b", bd, pad=(1, 0))], axis=-1)
  bp = _np_basic(sd, f"{p}.branch_pool", _np_pool3x3(x, pool))
  return np.concatenate([b1, b3, bd, bp], axis=-1)


def _random_state_dict(model, seed):
  """A torchvision-named state_dict of random tensors in PyTorch layouts."""
  rng = np.random.default_rng(seed)
  sd = {}
  for key, shape in inception.torch_state_dict_shapes(model).items():
    if key.endswith("running_var"):
      sd[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    elif key.endswith("conv.weight"):
      sd[key] = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape).astype(np.float32)
    else:
      sd[key] = rng.normal(0, 0.3, shape).astype(np.float32)
  return sd


@pytest.mark.parametrize("variant", ["torchvision", "fid"])
def test_blocks_match_numpy_from_a_torch_state_dict(variant):
  model = inception.InceptionV3(variant=variant, width_divisor=16)
  sd = _random_state_dict(model, seed=1)
  variables = inception.from_torch_state_dict(sd, model)
  fid = variant == "fid"
  rng = np.random.default_rng(2)
  cases = [
      ("Mixed_5b", inception.InceptionA(32, 16, not fid), _np_block_a, 12,
       "avg_exclude_pad" if fid else "avg_include_pad"),
      ("Mixed_6c", inception.InceptionC(160, 16, not fid), _np_block_c, 48,
       "avg_exclude_pad" if fid else "avg_include_pad"),
      ("Mixed_7c", inception.InceptionE(16, "max" if fid else "avg_include_pad"), _np_block_e, 128,
       "max" if fid else "avg_include_pad"),
  ]
  for name, block, reference, channels, pool in cases:
    x = rng.normal(0, 1, (2, 9, 8, channels)).astype(np.float32)
    sub = {"params": variables["params"][name], "batch_stats": variables["batch_stats"][name]}
    ours = np.asarray(jax.jit(block.apply)(sub, x))
    ref = reference(sd, name, x.astype(np.float64), pool)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4, err_msg=f"{variant} {name}")
  # The stem's first conv: stride 2, no padding.
  x = rng.normal(0, 1, (1, 15, 13, 3)).astype(np.float32)
  sub = {"params": variables["params"]["Conv2d_1a_3x3"], "batch_stats": variables["batch_stats"]["Conv2d_1a_3x3"]}
  ours = np.asarray(inception.BasicConv2d(2, (3, 3), stride=2).apply(sub, x))
  np.testing.assert_allclose(ours, _np_basic(sd, "Conv2d_1a_3x3", x.astype(np.float64), stride=2),
                             rtol=1e-4, atol=1e-5)


def test_pool_variants_differ_only_at_the_border():
  # count_include_pad matters exactly where the window overlaps the padding.
  x = np.ones((1, 6, 5, 1), np.float32)
  inc = np.asarray(inception._avg_pool_3x3(x, True))[0, ..., 0]
  exc = np.asarray(inception._avg_pool_3x3(x, False))[0, ..., 0]
  np.testing.assert_allclose(exc, 1.0, atol=1e-6)
  assert inc[0, 0] == pytest.approx(4 / 9) and inc[0, 2] == pytest.approx(6 / 9) and inc[2, 2] == pytest.approx(1)


# ---------------------------------------------------------------- weight files


def test_state_dict_round_trip_through_a_file(small_fid_model, tmp_path):
  model, variables = small_fid_model
  sd = inception.to_torch_state_dict(variables)
  assert sd["Mixed_6b.branch7x7_2.conv.weight"].shape == (16, 16, 1, 7)  # (out, in, kh, kw)
  sd["Mixed_5b.branch1x1.bn.num_batches_tracked"] = np.array(7, np.int64)  # ignored
  sd["AuxLogits.fc.weight"] = np.zeros((1008, 96), np.float32)  # ignored
  path = tmp_path / "pt_inception-small.pth"
  torch_writer.save_state_dict(sd, path)
  loaded_model, loaded, description = inception.load_inception(str(path), width_divisor=8)
  assert loaded_model.variant == "fid" and "pytorch-fid" in description
  flat_a = jax.tree_util.tree_leaves_with_path(variables)
  flat_b = dict(jax.tree_util.tree_leaves_with_path(loaded))
  assert len(flat_a) == len(flat_b)
  for path_, value in flat_a:
    np.testing.assert_array_equal(np.asarray(flat_b[path_]), np.asarray(value), err_msg=str(path_))


def test_mismatched_state_dict_lists_every_problem(small_fid_model):
  model, variables = small_fid_model
  sd = inception.to_torch_state_dict(variables)
  del sd["Mixed_7b.branch1x1.bn.running_var"]
  sd["Mixed_5c.branch1x1.conv.weight"] = np.zeros((3, 3, 1, 1), np.float32)
  sd["Mixed_8a.conv.weight"] = np.zeros((1,), np.float32)
  with pytest.raises(inception.InceptionWeightsError) as error:
    inception.from_torch_state_dict(sd, model)
  message = str(error.value)
  assert "missing Mixed_7b.branch1x1.bn.running_var" in message
  assert "shape mismatch Mixed_5c.branch1x1.conv.weight: file (3, 3, 1, 1)" in message
  assert "unexpected Mixed_8a.conv.weight" in message


# ---------------------------------------------------------------- preprocessing


def test_half_pixel_resize_matches_jax_image_resize_when_upsampling():
  x = np.random.default_rng(3).uniform(0, 1, (2, 256, 176, 3)).astype(np.float32)
  ours = np.asarray(inception.resize_bilinear(jnp.asarray(x), (299, 299)))
  # jax.image.resize (half-pixel centres; no antialiasing when upsampling)
  # computes its weights in float32, hence the loose tolerance.
  ref = np.asarray(jax.image.resize(x, (2, 299, 299, 3), "bilinear"))
  np.testing.assert_allclose(ours, ref, atol=3e-5)
  # PyTorch's align_corners=False rule, point by point in float64, on a few rows.
  def torch_source(o, n_in, n_out):
    src = max((o + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = min(int(np.floor(src)), n_in - 1)
    return i0, min(i0 + 1, n_in - 1), src - i0
  for oy in (0, 1, 150, 153, 177, 298):
    y0, y1, fy = torch_source(oy, 256, 299)
    for ox in (0, 2, 77, 257, 289, 298):
      x0, x1, fx = torch_source(ox, 176, 299)
      top = (1 - fx) * x[:, y0, x0].astype(np.float64) + fx * x[:, y0, x1]
      bottom = (1 - fx) * x[:, y1, x0].astype(np.float64) + fx * x[:, y1, x1]
      np.testing.assert_allclose(ours[:, oy, ox], (1 - fy) * top + fy * bottom, atol=5e-7)


def test_resize_modes_on_a_tiny_example():
  x = jnp.asarray([0.0, 10.0]).reshape(1, 1, 2, 1)
  half = np.asarray(inception.resize_bilinear(x, (1, 4)))[0, 0, :, 0]
  tf1 = np.asarray(inception.resize_bilinear(x, (1, 4), mode="tf1"))[0, 0, :, 0]
  # Half-pixel: sources -0.25 (clamped), 0.25, 0.75, 1.25 (clamped). TF1: 0, 0.5, 1, 1.5.
  np.testing.assert_allclose(half, [0.0, 2.5, 7.5, 10.0], atol=1e-6)
  np.testing.assert_allclose(tf1, [0.0, 5.0, 10.0, 10.0], atol=1e-6)


def test_preprocessing_value_ranges():
  white = np.full((1, 256, 176, 3), 255, np.uint8)
  gfla = np.asarray(inception.preprocess(white, "gfla"))[0, 0, 0]
  mean, std = np.array(inception.IMAGENET_MEAN), np.array(inception.IMAGENET_STD)
  np.testing.assert_allclose(gfla, std / 0.5 + (mean - 0.5) / 0.5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(inception.preprocess(white, "pytorch_fid")), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(inception.preprocess(white, "tf_is")), 127 / 128, atol=1e-5)
  assert inception.preprocess(white, "gfla").shape == (1, 299, 299, 3)
  with pytest.raises(ValueError):
    inception.preprocess(white, "bicubic")


# ---------------------------------------------------------------- FID


def _trace_sqrt_product(s1, s2):
  """Tr((S1 S2)^(1/2)) via eigh: the eigenvalues of S1 S2 are those of S1^(1/2) S2 S1^(1/2)."""
  w, v = np.linalg.eigh(s1)
  root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  return np.sqrt(np.clip(np.linalg.eigvalsh(root @ s2 @ root), 0, None)).sum()


def test_fid_of_a_set_with_itself_is_zero():
  f = np.random.default_rng(4).normal(0, 1, (400, 16)) @ np.random.default_rng(5).normal(0, 1, (16, 16))
  assert abs(fid_lib.fid(f, f)) < 1e-7


def test_fid_diagonal_closed_form():
  rng = np.random.default_rng(6)
  mu1, mu2 = rng.normal(0, 1, 32), rng.normal(0, 1, 32)
  s1, s2 = rng.uniform(0.1, 3, 32), rng.uniform(0.1, 3, 32)
  expected = np.sum((mu1 - mu2)**2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
  assert fid_lib.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)


def test_fid_of_gaussian_feature_sets_against_eigh():
  rng = np.random.default_rng(7)
  a = rng.normal(0, 1, (600, 24)) @ rng.normal(0, 0.5, (24, 24)) + 1.0
  b = rng.normal(0, 1, (500, 24)) @ rng.normal(0, 0.5, (24, 24))
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  expected = np.sum((mu1 - mu2)**2) + np.trace(s1) + np.trace(s2) - 2 * _trace_sqrt_product(s1, s2)
  assert fid_lib.fid(a, b) == pytest.approx(expected, rel=1e-8)
  assert expected > 1.0


def test_fid_with_fewer_samples_than_dimensions_is_finite():
  rng = np.random.default_rng(8)
  a, b = rng.normal(0, 1, (10, 40)), rng.normal(0.5, 1, (12, 40))
  value = fid_lib.fid(a, b)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  expected = (np.sum((a.mean(0) - b.mean(0))**2) + np.trace(s1) + np.trace(s2)
              - 2 * _trace_sqrt_product(s1, s2))
  assert np.isfinite(value)
  assert value == pytest.approx(expected, rel=1e-4)


def test_statistics_accumulator_and_files(tmp_path):
  rng = np.random.default_rng(9)
  f = rng.normal(1000.0, 2.0, (300, 8))  # a large offset: the running sums must not cancel
  acc = fid_lib.StatisticsAccumulator()
  for chunk in np.array_split(f, 7):
    acc.update(chunk)
  mu, sigma = acc.statistics()
  ref_mu, ref_sigma = fid_lib.activation_statistics(f)
  np.testing.assert_allclose(mu, ref_mu, rtol=1e-12)
  np.testing.assert_allclose(sigma, ref_sigma, rtol=1e-9, atol=1e-9)
  fid_lib.save_statistics(str(tmp_path / "real.npz"), mu, sigma)
  mu2, sigma2 = fid_lib.load_statistics(str(tmp_path / "real.npz"))
  np.testing.assert_array_equal(mu2, mu)
  np.testing.assert_array_equal(sigma2, sigma)


# ---------------------------------------------------------------- IS


def test_inception_score_extremes():
  uniform = np.full((100, 1008), 1 / 1008)
  mean, std = fid_lib.inception_score(uniform, splits=10)
  assert mean == pytest.approx(1.0, abs=1e-12) and std == pytest.approx(0.0, abs=1e-12)
  # Confident, distinct predictions: each split of 10 holds classes 0..9 once -> IS = 10.
  one_hot = np.eye(20)[np.tile(np.arange(10), 10)]
  mean, std = fid_lib.inception_score(one_hot, splits=10)
  assert mean == pytest.approx(10.0, rel=1e-12) and std == pytest.approx(0.0, abs=1e-12)
  # Splits with 5 and 10 distinct classes: IS 5 and 10, mean 7.5, std 2.5.
  one_hot = np.eye(10)[np.concatenate([np.repeat(np.arange(5), 2), np.arange(10)])]
  mean, std = fid_lib.inception_score(one_hot, splits=2)
  assert mean == pytest.approx(7.5) and std == pytest.approx(2.5)


def test_inception_score_against_scipy_entropy():
  p = np.random.default_rng(10).dirichlet(np.full(50, 0.3), size=120)
  scores = []
  for part in np.array_split(p, 4):
    marginal = part.mean(axis=0)
    scores.append(np.exp(np.mean([stats.entropy(row, marginal) for row in part])))
  mean, std = fid_lib.inception_score(p, splits=4)
  assert mean == pytest.approx(np.mean(scores), rel=1e-10)
  assert std == pytest.approx(np.std(scores), rel=1e-8)
