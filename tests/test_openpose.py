"""OpenPose COCO body network: architecture, numpy reference of stage 1, .pth and Keras .h5 import."""

import logging
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxpose import convert
from jaxpose.io import keras_h5
from jaxpose.io import state_dict as state_dict_lib
from jaxpose.models import openpose
import numpy_reference as ref
import torch_writer
import keras_writer

TOY = dict(backbone_widths=(4, 4, 8, 8), cpm_widths=(8, 6), stage_width=8, stage1_hidden=10, num_stages=2)


def spec_layers(backbone=(64, 128, 256, 512), cpm=(256, 128), stage=128, hidden=512, stages=6, pafs=38, heat=19):
  """(caffe name, in, out, kernel) of every conv, written from shared/reference/pose.md section 1.1."""
  layers, c = [], 3
  for name, out in [("conv1_1", backbone[0]), ("conv1_2", backbone[0]), ("conv2_1", backbone[1]),
                    ("conv2_2", backbone[1]), ("conv3_1", backbone[2]), ("conv3_2", backbone[2]),
                    ("conv3_3", backbone[2]), ("conv3_4", backbone[2]), ("conv4_1", backbone[3]),
                    ("conv4_2", backbone[3]), ("conv4_3_CPM", cpm[0]), ("conv4_4_CPM", cpm[1])]:
    layers.append((name, c, out, 3))
    c = out
  features = c
  for b, n_out in ((1, pafs), (2, heat)):
    layers += [(f"conv5_1_CPM_L{b}", features, stage, 3), (f"conv5_2_CPM_L{b}", stage, stage, 3),
               (f"conv5_3_CPM_L{b}", stage, stage, 3), (f"conv5_4_CPM_L{b}", stage, hidden, 1),
               (f"conv5_5_CPM_L{b}", hidden, n_out, 1)]
  for s in range(2, stages + 1):
    for b, n_out in ((1, pafs), (2, heat)):
      c = pafs + heat + features
      for i in range(1, 6):
        layers.append((f"Mconv{i}_stage{s}_L{b}", c, stage, 7))
        c = stage
      layers += [(f"Mconv6_stage{s}_L{b}", stage, stage, 1), (f"Mconv7_stage{s}_L{b}", stage, n_out, 1)]
  return layers


TOY_LAYERS = spec_layers(backbone=(4, 4, 8, 8), cpm=(8, 6), stage=8, hidden=10, stages=2)


def random_state_dict(layers, seed=0):
  """body_pose_model.pth layout: `<caffe name>.weight` (O, I, k, k), `.bias` (O,), float32."""
  rng = np.random.default_rng(seed)
  sd = {}
  for name, c_in, c_out, k in layers:
    sd[f"{name}.weight"] = (rng.normal(size=(c_out, c_in, k, k)) * math.sqrt(2.0 / (c_in * k * k))).astype(np.float32)
    sd[f"{name}.bias"] = (rng.normal(size=(c_out,)) * 0.1).astype(np.float32)
  return sd


# ----------------------------------------------------------------------------
# Architecture


def test_full_network_has_the_official_layers_and_52m_parameters():
  model = openpose.OpenPoseBody()
  abstract = openpose.abstract_variables(model)
  leaves = jax.tree.leaves(abstract)
  assert len(leaves) == 184
  assert sum(math.prod(x.shape) for x in leaves) == openpose.NUM_PARAMETERS == 52_311_446
  assert openpose.parameter_count(model) == 52_311_446
  expected = {name: (k, k, c_in, c_out) for name, c_in, c_out, k in spec_layers()}
  assert {name: tuple(v["kernel"].shape) for name, v in abstract["params"].items()} == expected
  backbone = sum(k * k * c_in * c_out + c_out for _, c_in, c_out, k in spec_layers()[:12])
  assert backbone == 7_340_480
  # The official file keys at full size, without allocating: zero-stride views of one zero.
  sd = {f"{name}.{leaf}": np.broadcast_to(np.float32(0), shape)
        for name, c_in, c_out, k in spec_layers() for leaf, shape in (("weight", (c_out, c_in, k, k)),
                                                                       ("bias", (c_out,)))}
  assert len(sd) == 184
  assert sd["Mconv1_stage2_L1.weight"].shape == (128, 185, 7, 7)
  assert openpose.hparams_from_torch(sd) == dict(
      backbone_widths=(64, 128, 256, 512), cpm_widths=(256, 128), stage_width=128, stage1_hidden=512,
      num_stages=6, num_pafs=38, num_heatmaps=19)
  variables = openpose.from_torch(sd, model)
  assert jax.tree.map(np.shape, variables) == jax.tree.map(lambda x: x.shape, abstract)


def test_output_shapes_floor_like_keras_pools_and_all_stages():
  model = openpose.OpenPoseBody()
  abstract = openpose.abstract_variables(model)
  x = jax.ShapeDtypeStruct((2, 37, 29, 3), jnp.float32)
  pafs, heatmaps = jax.eval_shape(model.apply, abstract, x)
  assert pafs.shape == (2, 4, 3, 38) and heatmaps.shape == (2, 4, 3, 19)
  stages = jax.eval_shape(lambda v, x: model.apply(v, x, all_stages=True), abstract, x)
  assert len(stages) == 6 and all(p.shape == (2, 4, 3, 38) and h.shape == (2, 4, 3, 19) for p, h in stages)
  with pytest.raises(ValueError, match=r"\(B, H, W, 3\) BGR"):
    jax.eval_shape(model.apply, abstract, jax.ShapeDtypeStruct((2, 37, 29), jnp.float32))


def _numpy_stage1(sd, bgr):
  """Backbone and stage 1 in NCHW numpy from the caffe description: 'same' zero padding, floor pools."""
  x = bgr.transpose(0, 3, 1, 2).astype(np.float64)

  def conv(x, name, relu=True):
    w = sd[f"{name}.weight"].astype(np.float64)
    y = ref.conv2d(ref.pad(x, w.shape[2] // 2, "zero"), w, sd[f"{name}.bias"].astype(np.float64))
    return np.maximum(y, 0) if relu else y

  for name in ["conv1_1", "conv1_2", "pool", "conv2_1", "conv2_2", "pool", "conv3_1", "conv3_2", "conv3_3",
               "conv3_4", "pool", "conv4_1", "conv4_2", "conv4_3_CPM", "conv4_4_CPM"]:
    x = ref.max_pool2(x) if name == "pool" else conv(x, name)
  outputs = []
  for b in (1, 2):
    y = x
    for i in range(1, 6):
      y = conv(y, f"conv5_{i}_CPM_L{b}", relu=i < 5)
    outputs.append(y.transpose(0, 2, 3, 1))
  return outputs


def test_stage1_matches_an_independent_numpy_reference():
  sd = random_state_dict(TOY_LAYERS, seed=1)
  model = openpose.OpenPoseBody(**openpose.hparams_from_torch(sd))
  assert model == openpose.OpenPoseBody(**TOY)
  variables = openpose.from_torch(sd, model)
  bgr = np.random.default_rng(2).uniform(-0.5, 0.5, (2, 21, 30, 3)).astype(np.float32)  # odd sizes: floors
  stages = model.apply(variables, jnp.asarray(bgr), all_stages=True)
  ref_pafs, ref_heatmaps = _numpy_stage1(sd, bgr)
  assert ref_pafs.shape == (2, 2, 3, 38) and ref_heatmaps.shape == (2, 2, 3, 19)
  np.testing.assert_allclose(np.asarray(stages[0][0]), ref_pafs, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(stages[0][1]), ref_heatmaps, rtol=1e-4, atol=1e-5)
  # The last stage is the default output; caffe has no ReLU on it, Hzzone's port has one on the heatmaps.
  pafs, heatmaps = model.apply(variables, jnp.asarray(bgr))
  np.testing.assert_array_equal(np.asarray(heatmaps), np.asarray(stages[1][1]))
  assert float(jnp.min(heatmaps)) < 0 and float(jnp.min(pafs)) < 0
  _, relu_heatmaps = model.clone(final_heatmap_relu=True).apply(variables, jnp.asarray(bgr))
  np.testing.assert_array_equal(np.asarray(relu_heatmaps), np.maximum(np.asarray(heatmaps), 0))


# ----------------------------------------------------------------------------
# body_pose_model.pth


@pytest.mark.parametrize("legacy", [False, True])
def test_pth_file_imports_through_the_torch_free_reader(tmp_path, legacy):
  sd = random_state_dict(TOY_LAYERS, seed=3)
  path = tmp_path / "body_pose_model.pth"
  torch_writer.save_state_dict(sd, path, legacy_format=legacy)
  model, variables = convert.import_checkpoint("openpose_body", str(path))
  assert model == openpose.OpenPoseBody(**TOY)
  assert variables["params"]["Mconv1_stage2_L1"]["kernel"].shape == (7, 7, 38 + 19 + 6, 8)
  np.testing.assert_array_equal(np.asarray(variables["params"]["conv1_1"]["kernel"]),
                                sd["conv1_1.weight"].transpose(2, 3, 1, 0))
  exported = openpose.to_torch(jax.device_get(variables))
  assert sorted(exported) == sorted(sd)
  for key, value in sd.items():
    np.testing.assert_array_equal(exported[key], value, err_msg=key)


def test_pth_mismatch_lists_every_problem_at_once(tmp_path):
  sd = random_state_dict(TOY_LAYERS, seed=4)
  del sd["conv3_2.bias"]
  sd["conv4_1.weight"] = sd["conv4_1.weight"][:, :, :1, :1]
  sd["Mconv8_stage2_L1.weight"] = np.zeros((1, 1, 1, 1), np.float32)
  path = tmp_path / "broken.pth"
  torch_writer.save_state_dict(sd, path)
  with pytest.raises(state_dict_lib.StateDictMismatchError) as error:
    convert.import_checkpoint("openpose_body", str(path))
  message = str(error.value)
  assert "3 problem(s)" in message
  assert "missing conv3_2.bias (8,)" in message
  assert "shape mismatch conv4_1.weight: file (8, 8, 1, 1), model (8, 8, 3, 3)" in message
  assert "unexpected Mconv8_stage2_L1.weight" in message
  del sd["conv1_1.weight"]
  torch_writer.save_state_dict(sd, path)
  with pytest.raises(state_dict_lib.StateDictMismatchError, match="missing conv conv1_1 .needed to infer"):
    convert.import_checkpoint("openpose_body", str(path))


# ----------------------------------------------------------------------------
# Keras .h5 (layout of pose_estimator.h5 unverified: the importer probes names, then order)


def keras_layers(sd, names=None, order=None, theano=False, weightless=True):
  """Keras 2 layer list of a body_pose_model.pth-style state_dict: caffe names, HWIO kernels.

  names: {caffe name: name in the file}; order: caffe names in the order to record them
  (default: the .pth order, branch 1 then branch 2 per stage); weightless: interleave the
  Input / Activation / MaxPooling / Concatenate layers a Keras graph records.
  """
  caffe = [key[:-len(".weight")] for key in sd if key.endswith(".weight")]
  out = [("input_1", [])] if weightless else []
  for i, name in enumerate(order or caffe):
    file_name = (names or {}).get(name, name)
    kernel = sd[f"{name}.weight"].transpose(2, 3, 1, 0)
    if theano:
      kernel = kernel[::-1, ::-1]  # what a Theano-backend Keras stores (it convolves)
    out.append((file_name, [(f"{file_name}/kernel:0", kernel), (f"{file_name}/bias:0", sd[f"{name}.bias"])]))
    if weightless:
      out.append((f"activation_{i + 1}", []))
  if weightless:
    out.append(("concatenate_1", []))
  return out


def _assert_same_as_pth(model, variables, sd):
  assert model == openpose.OpenPoseBody(**TOY)
  exported = openpose.to_torch(jax.device_get(variables), model)
  for key, value in sd.items():
    np.testing.assert_array_equal(exported[key], value, err_msg=key)


@pytest.mark.parametrize("layout,backend", [("model", "tensorflow"), ("weights", "tensorflow"), ("model", "theano")])
def test_keras_file_with_caffe_names_imports(tmp_path, layout, backend):
  sd = random_state_dict(TOY_LAYERS, seed=5)
  path = tmp_path / "pose_estimator.h5"
  keras_writer.write_keras_h5(path, keras_layers(sd, theano=backend == "theano"), layout=layout, backend=backend,
                          keras_version="2.1.2")
  model, variables = convert.import_checkpoint("openpose_body", str(path))
  _assert_same_as_pth(model, variables, sd)


def test_keras_file_with_michalfabers_later_stage1_names_imports(tmp_path):
  sd = random_state_dict(TOY_LAYERS, seed=6)
  renamed = {f"conv5_{i}_CPM_L{b}": f"Mconv{i}_stage1_L{b}" for i in range(1, 6) for b in (1, 2)}
  path = tmp_path / "model.h5"
  keras_writer.write_keras_h5(path, keras_layers(sd, names=renamed), layout="weights")
  model, variables = convert.import_checkpoint("openpose_body", str(path))
  _assert_same_as_pth(model, variables, sd)


def _interleaved(layers):
  """Caffe names as Keras records a functional graph by depth: the two branches alternating."""
  names = [name for name, *_ in layers]
  out = names[:12]
  rest = names[12:]
  while rest:
    n = 5 if rest[0].startswith("conv5") else 7
    out += [x for pair in zip(rest[:n], rest[n:2 * n]) for x in pair]
    rest = rest[2 * n:]
  return out


@pytest.mark.parametrize("interleave", [False, True])
def test_keras_file_with_unknown_names_imports_by_recorded_order_and_shapes(tmp_path, caplog, interleave):
  sd = random_state_dict(TOY_LAYERS, seed=7)
  order = _interleaved(TOY_LAYERS) if interleave else None
  caffe = order or [name for name, *_ in TOY_LAYERS]
  generic = {name: f"conv2d_{i + 1}" for i, name in enumerate(caffe)}
  path = tmp_path / "anonymous.h5"
  keras_writer.write_keras_h5(path, keras_layers(sd, names=generic, order=order))
  with caplog.at_level(logging.WARNING):
    model, variables = convert.import_checkpoint("openpose_body", str(path))
  _assert_same_as_pth(model, variables, sd)
  label = "alternating by depth" if interleave else "branch 1 then branch 2"
  assert any("matched the 36 convs by the recorded layer order" in r.getMessage() and label in r.getMessage()
             for r in caplog.records)


def test_full_size_keras_layers_import_by_name_and_by_order():
  # What a full-size pose_estimator.h5 would hold, as read by keras_h5, without allocating 209 MB.
  def layer(file_name, c_in, c_out, k):
    return keras_h5.KerasLayer(file_name, (f"{file_name}/kernel:0", f"{file_name}/bias:0"),
                               (np.broadcast_to(np.float32(0), (k, k, c_in, c_out)),
                                np.broadcast_to(np.float32(0), (c_out,))))
  for names in ("caffe", "anonymous"):
    layers = [layer(name if names == "caffe" else f"conv2d_{i + 1}", c_in, c_out, k)
              for i, (name, c_in, c_out, k) in enumerate(spec_layers())]
    weights = keras_h5.KerasWeightsFile(path="pose_estimator.h5", layout="model", keras_version="2.1.2",
                                        backend="tensorflow", layers=(keras_h5.KerasLayer("input_1", (), ()),
                                                                      *layers), layer_order_recorded=True)
    model, variables = openpose.from_keras(weights)
    assert model == openpose.OpenPoseBody()
    assert jax.tree.map(np.shape, variables) == jax.tree.map(lambda x: x.shape, openpose.abstract_variables(model))


def test_keras_file_that_does_not_fit_lists_what_it_holds(tmp_path):
  sd = random_state_dict(TOY_LAYERS, seed=8)
  sd["conv2_2.weight"] = sd["conv2_2.weight"][:, :, :1, :1]
  path = tmp_path / "wrong.h5"
  keras_writer.write_keras_h5(path, keras_layers(sd))
  with pytest.raises(state_dict_lib.CheckpointLayoutError) as error:
    convert.import_checkpoint("openpose_body", str(path))
  message = str(error.value)
  assert "shape mismatch conv2_2/kernel: file (1, 1, 4, 4), model (3, 3, 4, 4)" in message
  assert "What the file holds:" in message and "36 with weights" in message
  assert "conv2_2: kernel:0 (1, 1, 4, 4) float32, bias:0 (4,) float32" in message

  # Unknown names and a layer count no OpenPose network has: nothing to match them by.
  generic = {name: f"dense_{i}" for i, (name, *_) in enumerate(TOY_LAYERS)}
  layers = keras_layers(random_state_dict(TOY_LAYERS), names=generic, weightless=False)[:-1]
  keras_writer.write_keras_h5(path, layers)
  with pytest.raises(state_dict_lib.CheckpointLayoutError, match=r"its 35 layers with weights are not 12 \+ 10 \+ 14k"):
    convert.import_checkpoint("openpose_body", str(path))
