"""Writes PyTorch checkpoint files from numpy arrays, for test fixtures (no torch needed).

`save_state_dict(state_dict, path, legacy_format=False)` writes the zip format
of `torch.save` (>= 1.6) or the legacy pickle format (<= 1.5), such that a real
`torch.load(path, weights_only=True)` reads it back as an OrderedDict of
tensors. jaxpose itself only reads these files (`jaxpose.io.torch_checkpoint`);
tests write the official formats with this module to check the readers.
"""

from __future__ import annotations

import os
import pickle
import struct
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

from jaxpose.io.torch_checkpoint import _LEGACY_PROTOCOL_VERSION  # the reader's format constants
from jaxpose.io.torch_checkpoint import _MAGIC_NUMBER
from jaxpose.io.torch_checkpoint import _READ_CHUNK
from jaxpose.io.torch_checkpoint import _ZIP_ALIGNMENT


# numpy dtype -> (torch dtype name, typed storage name or None for UntypedStorage + v3).
_SAVE_DTYPES: list[tuple[np.dtype, str, str | None]] = [
    (np.dtype(np.float64), "float64", "DoubleStorage"),
    (np.dtype(np.float32), "float32", "FloatStorage"),
    (np.dtype(np.float16), "float16", "HalfStorage"),
    (np.dtype(ml_dtypes.bfloat16), "bfloat16", "BFloat16Storage"),
    (np.dtype(np.int64), "int64", "LongStorage"),
    (np.dtype(np.int32), "int32", "IntStorage"),
    (np.dtype(np.int16), "int16", "ShortStorage"),
    (np.dtype(np.int8), "int8", "CharStorage"),
    (np.dtype(np.uint8), "uint8", "ByteStorage"),
    (np.dtype(np.bool_), "bool", "BoolStorage"),
    (np.dtype(np.complex64), "complex64", "ComplexFloatStorage"),
    (np.dtype(np.complex128), "complex128", "ComplexDoubleStorage"),
    (np.dtype(np.uint16), "uint16", None),
    (np.dtype(np.uint32), "uint32", None),
    (np.dtype(np.uint64), "uint64", None),
] + [(np.dtype(getattr(ml_dtypes, name)), name, None)
     for name in ("float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz",
                  "float8_e8m0fnu") if hasattr(ml_dtypes, name)]


class _PickleWriter:
  """Emits the few protocol-2 opcodes a state_dict pickle needs (no torch to pickle with)."""

  def __init__(self):
    self.out = bytearray(b"\x80\x02")  # PROTO 2, torch's default

  def op(self, opcodes: bytes) -> None:
    self.out += opcodes

  def global_(self, module: str, name: str) -> None:
    self.out += b"c" + module.encode("ascii") + b"\n" + name.encode("ascii") + b"\n"

  def value(self, value: Any) -> None:
    if value is None:
      self.out += b"N"
    elif value is True or value is False:
      self.out += b"\x88" if value else b"\x89"
    elif isinstance(value, int):
      if 0 <= value < 256:
        self.out += b"K" + struct.pack("<B", value)
      elif 0 <= value < 65536:
        self.out += b"M" + struct.pack("<H", value)
      elif -(1 << 31) <= value < (1 << 31):
        self.out += b"J" + struct.pack("<i", value)
      else:
        data = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        self.out += b"\x8a" + struct.pack("<B", len(data)) + data
    elif isinstance(value, str):
      data = value.encode("utf-8")
      self.out += b"X" + struct.pack("<I", len(data)) + data
    elif isinstance(value, tuple):
      if not value:
        self.out += b")"
        return
      self.out += b"("
      for item in value:
        self.value(item)
      self.out += b"t"
    else:
      raise TypeError(f"cannot write {type(value).__name__}")

  def empty_ordered_dict(self) -> None:
    self.global_("collections", "OrderedDict")
    self.out += b")R"  # EMPTY_TUPLE, REDUCE


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
  # torch's rule: stride[i] = stride[i+1] * max(size[i+1], 1).
  strides = []
  step = 1
  for n in reversed(shape):
    strides.append(step)
    step *= max(n, 1)
  return tuple(reversed(strides))


_Entry = tuple[str, np.ndarray, str, str | None]  # key, array, torch dtype name, storage name


def _state_dict_pickle(entries: list[_Entry], legacy: bool) -> bytes:
  w = _PickleWriter()
  w.empty_ordered_dict()
  if entries:
    w.op(b"(")  # MARK ... SETITEMS
    for index, (key, array, dtype_name, storage_name) in enumerate(entries):
      w.value(key)
      w.global_("torch._utils", "_rebuild_tensor_v2" if storage_name else "_rebuild_tensor_v3")
      w.op(b"(")
      w.op(b"(")  # the persistent id tuple
      w.value("storage")
      if storage_name:
        w.global_("torch", storage_name)
        numel = array.size
      else:
        w.global_("torch.storage", "UntypedStorage")
        numel = array.nbytes
      w.value(str(index))
      w.value("cpu")
      w.value(numel)
      if legacy:
        w.value(None)  # no storage view
      w.op(b"tQ")  # TUPLE, BINPERSID
      w.value(0)
      w.value(tuple(array.shape))
      w.value(_contiguous_strides(array.shape))
      w.value(False)  # requires_grad
      w.empty_ordered_dict()  # backward hooks
      if not storage_name:
        w.global_("torch", dtype_name)
      w.op(b"tR")
    w.op(b"u")
  w.op(b".")
  return bytes(w.out)


def _byte_view(array: np.ndarray) -> memoryview:
  return memoryview(array.reshape(-1).view(np.uint8))


def _zip_write(archive: zipfile.ZipFile, name: str, data: memoryview | bytes) -> None:
  """Adds a stored record whose data starts at a multiple of 64 bytes, as torch writes them."""
  data = memoryview(data).cast("B")
  info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
  info.compress_type = zipfile.ZIP_STORED
  info.file_size = len(data)
  # zipfile adds a 20-byte zip64 field to the local header exactly in this case.
  zip64 = len(data) * 1.05 > zipfile.ZIP64_LIMIT
  offset = archive.fp.tell()
  header = 30 + len(name.encode("utf-8")) + 4 + (20 if zip64 else 0)
  pad = -(offset + header) % _ZIP_ALIGNMENT
  info.extra = struct.pack("<HH", 0x4246, pad) + b"Z" * pad  # 'FB' padding field, like torch's
  with archive.open(info, "w", force_zip64=zip64) as out:
    for start in range(0, len(data), _READ_CHUNK):
      out.write(data[start:start + _READ_CHUNK])


def save_state_dict(state_dict: Mapping[str, Any], path: str | os.PathLike[str], *,
                    legacy_format: bool = False) -> None:
  """Writes arrays as a PyTorch state_dict file that `torch.load` reads, without PyTorch.

  `torch.load(path)` (also with `weights_only=True`) returns an OrderedDict of
  CPU tensors with the same keys, shapes, dtypes and values. Each array gets its
  own storage; non-contiguous and big-endian inputs are stored contiguous and
  little-endian. Dtypes: float64/32/16, bfloat16, int64/32/16/8, uint8, bool,
  complex64/128 as typed storages (readable by any PyTorch); uint16/32/64 and the
  float8 types as PyTorch >= 2.3 writes them (zip format only: PyTorch cannot read
  them back from legacy files).

  The file is written to a temporary name beside `path` and renamed into place.

  Args:
    state_dict: name -> array (anything `np.asarray` accepts).
    path: output file.
    legacy_format: write the pre-1.6 format (`_use_new_zipfile_serialization=False`)
      instead of the zip format.

  Raises:
    TypeError: a key is not a string.
    ValueError: an array's dtype has no PyTorch equivalent (or, with `legacy_format`,
      is one of the types above that only the zip format holds).
  """
  entries: list[_Entry] = []
  for key, value in state_dict.items():
    if not isinstance(key, str):
      raise TypeError(f"state_dict keys must be strings, got {key!r}")
    array = np.asarray(value)
    dtype = array.dtype
    if dtype.byteorder == ">":
      dtype = dtype.newbyteorder("<")
    for candidate, dtype_name, storage_name in _SAVE_DTYPES:
      if dtype == candidate:
        break
    else:
      raise ValueError(f"{key!r}: dtype {array.dtype} has no PyTorch equivalent")
    # asarray(order="C") rather than ascontiguousarray, which turns 0-d arrays into 1-d ones.
    if legacy_format and storage_name is None:
      # torch.save writes these (UntypedStorage) into legacy files too, but torch.load then
      # fails on them; refuse rather than write a file PyTorch cannot read.
      raise ValueError(f"{key!r}: the legacy format cannot hold {dtype_name} tensors that PyTorch "
                       "can read back; use the zip format")
    entries.append((key, np.asarray(array, dtype=candidate, order="C"), dtype_name, storage_name))

  path_str = os.fspath(path)
  directory, base = os.path.split(os.path.abspath(path_str))
  fd, temp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
  try:
    with os.fdopen(fd, "wb") as f:
      if legacy_format:
        _write_legacy(f, entries)
      else:
        _write_zip(f, entries)
    os.replace(temp, path_str)
  except BaseException:
    try:
      os.unlink(temp)
    except OSError:
      pass
    raise


def _write_zip(f: BinaryIO, entries: list[_Entry]) -> None:
  prefix = "archive/"
  with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
    _zip_write(archive, prefix + "data.pkl", _state_dict_pickle(entries, legacy=False))
    _zip_write(archive, prefix + ".format_version", b"1")
    _zip_write(archive, prefix + ".storage_alignment", str(_ZIP_ALIGNMENT).encode())
    _zip_write(archive, prefix + "byteorder", b"little")
    for index, (_, array, _, _) in enumerate(entries):
      _zip_write(archive, f"{prefix}data/{index}", _byte_view(array))
    _zip_write(archive, prefix + "version", b"3\n")


def _write_legacy(f: BinaryIO, entries: list[_Entry]) -> None:
  f.write(pickle.dumps(_MAGIC_NUMBER, protocol=2))
  f.write(pickle.dumps(_LEGACY_PROTOCOL_VERSION, protocol=2))
  f.write(pickle.dumps({"protocol_version": _LEGACY_PROTOCOL_VERSION, "little_endian": True,
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2))
  f.write(_state_dict_pickle(entries, legacy=True))
  f.write(pickle.dumps([str(i) for i in range(len(entries))], protocol=2))
  for _, array, _, storage_name in entries:
    # Element count in units of the storage's element type: bytes for an UntypedStorage.
    f.write(struct.pack("<q", array.size if storage_name else array.nbytes))
    f.write(_byte_view(array))
