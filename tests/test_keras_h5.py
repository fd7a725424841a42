"""jaxpose.io.keras_h5: Keras 2 HDF5 files (full model and save_weights layouts) read with h5py only."""

import h5py
import numpy as np
import pytest

from jaxpose.io import keras_h5
import keras_writer


def _layers(rng):
  return [("input_1", []),
          ("conv1_1", [("conv1_1/kernel:0", rng.normal(size=(3, 3, 3, 4)).astype(np.float32)),
                       ("conv1_1/bias:0", rng.normal(size=(4,)).astype(np.float32))]),
          ("activation_1", []),
          ("dense", [("dense/kernel:0", rng.normal(size=(4, 2)).astype(np.float32)),
                     ("dense/bias:0", np.zeros(2, np.float32))])]


@pytest.mark.parametrize("layout", ["model", "weights"])
def test_reads_both_keras_layouts_in_recorded_order(tmp_path, layout):
  rng = np.random.default_rng(0)
  layers = _layers(rng)
  path = tmp_path / "m.h5"
  keras_writer.write_keras_h5(path, layers, layout=layout, keras_version="2.1.2", backend="tensorflow",
                          model_config='{"class_name": "Model"}' if layout == "model" else None)
  weights = keras_h5.read_keras_h5(path)
  assert weights.layout == layout
  assert weights.layer_names() == ["input_1", "conv1_1", "activation_1", "dense"]  # recorded, not alphabetical
  assert weights.layer_order_recorded
  assert (weights.keras_version, weights.backend) == ("2.1.2", "tensorflow")
  assert [layer.name for layer in weights.weighted_layers()] == ["conv1_1", "dense"]
  conv = weights.layer("conv1_1")
  assert conv.weight_names == ("conv1_1/kernel:0", "conv1_1/bias:0")
  assert conv.short_names == ("kernel", "bias")
  np.testing.assert_array_equal(conv.weight("kernel"), layers[1][1][0][1])
  np.testing.assert_array_equal(weights.layer("dense").weight("bias"), np.zeros(2))
  assert weights.parameter_count() == 3 * 3 * 3 * 4 + 4 + 4 * 2 + 2
  assert (weights.model_config is not None) == (layout == "model")
  with pytest.raises(KeyError, match="no layer named"):
    weights.layer("conv9")
  with pytest.raises(KeyError, match="0 weights named 'gamma'"):
    conv.weight("gamma")
  assert list(conv.as_dict()) == ["conv1_1/kernel:0", "conv1_1/bias:0"]


def test_describe_lists_layers_shapes_and_attributes(tmp_path):
  path = tmp_path / "m.h5"
  keras_writer.write_keras_h5(path, _layers(np.random.default_rng(0)), backend="theano", keras_version="2.0.8")
  text = keras_h5.describe_keras_h5(path)
  assert "full model layout, keras_version 2.0.8, backend theano" in text
  assert "4 layers (2 with weights, 122 parameters), layer order recorded" in text
  assert "conv1_1: kernel:0 (3, 3, 3, 4) float32, bias:0 (4,) float32" in text
  assert "dense: kernel:0 (4, 2) float32" in text
  assert "input_1" not in text  # weightless layers are counted, not listed
  short = keras_h5.read_keras_h5(path).describe(limit=1)
  assert "and 1 more layers with weights" in short


def test_chunked_attributes_and_missing_layer_names(tmp_path):
  # Keras splits attributes over 64 KB into name0, name1, ...; other tools may write no layer_names.
  path = tmp_path / "chunked.h5"
  with h5py.File(path, "w") as f:
    f.attrs["layer_names0"] = np.array([b"b_conv"])
    f.attrs["layer_names1"] = np.array([b"a_conv"])
    for name in ("a_conv", "b_conv"):
      g = f.create_group(name)
      g.attrs["weight_names0"] = np.array([f"{name}/kernel:0".encode()])
      g.attrs["weight_names1"] = np.array([f"{name}/bias:0".encode()])
      g.create_dataset(f"{name}/kernel:0", data=np.ones((1, 1, 2, 2), np.float32))
      g.create_dataset(f"{name}/bias:0", data=np.ones((2,), np.float32))
  weights = keras_h5.read_keras_h5(path)
  assert weights.layer_names() == ["b_conv", "a_conv"] and weights.layer_order_recorded
  assert weights.layer("a_conv").short_names == ("kernel", "bias")

  bare = tmp_path / "bare.h5"
  with h5py.File(bare, "w") as f:
    for name in ("zeta", "alpha"):
      f.create_dataset(f"{name}/inner/W", data=np.ones((2, 2), np.float32))
  weights = keras_h5.read_keras_h5(bare)
  assert weights.layer_names() == ["alpha", "zeta"] and not weights.layer_order_recorded
  assert weights.layer("zeta").weight_names == ("inner/W",)
  assert "layer order NOT recorded (alphabetical)" in weights.describe()


def test_rejects_files_that_are_not_keras_weights(tmp_path):
  pickle_like = tmp_path / "model.pth"
  pickle_like.write_bytes(b"PK\x03\x04 not an hdf5 file")
  assert not keras_h5.is_hdf5(pickle_like)
  with pytest.raises(keras_h5.KerasFileError, match="is not an HDF5 file"):
    keras_h5.read_keras_h5(pickle_like)
  assert "is not an HDF5 file" in keras_h5.describe_keras_h5(pickle_like)
  with pytest.raises(FileNotFoundError):
    keras_h5.read_keras_h5(tmp_path / "absent.h5")

  arrays_only = tmp_path / "arrays.h5"
  with h5py.File(arrays_only, "w") as f:
    f.create_dataset("images", data=np.zeros((2, 2)))
  assert keras_h5.is_hdf5(arrays_only)
  with pytest.raises(keras_h5.KerasFileError, match=r"without Keras layer groups.*images \(2, 2\)"):
    keras_h5.read_keras_h5(arrays_only)

  dangling = tmp_path / "dangling.h5"
  with h5py.File(dangling, "w") as f:
    f.attrs["layer_names"] = np.array([b"conv1_1"])
    f.create_group("conv1_1").attrs["weight_names"] = np.array([b"conv1_1/kernel:0"])
  with pytest.raises(keras_h5.KerasFileError, match="lists weight 'conv1_1/kernel:0'.*no such array"):
    keras_h5.read_keras_h5(dangling)
