"""Writes the golden PyTorch checkpoints that tests/test_torch_checkpoint.py reads.

NEEDS PyTorch, which jaxpose does not depend on; the tests never run this script.
They only read its committed outputs (a few KB each). Regenerate with a throwaway
PyTorch install, e.g.:

  /work/torchvenv/bin/python tests/data/torch/make_fixtures.py

Outputs, next to this script:

  tensors.pt                 OrderedDict of tensors, torch.save (zip format)
  tensors_legacy.pt          the same dict without the uint16/float8 tensors,
                             _use_new_zipfile_serialization=False (legacy format,
                             like the 2020 ADGAN checkpoints)
  dataparallel_legacy.pth    nn.DataParallel(model).state_dict() (keys 'module.'...),
                             legacy format
  nested.pt                  {'epoch', 'state_dict', nn.Parameter, a tensor with a
                             Python attribute, a list, an optimizer-like dict}, zip

and for each an `<name>.npz` with what `jaxpose.io.torch_checkpoint.load_state_dict`
must return: `__meta__` (JSON: the keys in order and each dtype name) and, per key,
the values' raw bits as an unsigned-integer array of the same shape (complex as
numpy complex), so that comparisons are exact for NaN, -0.0, bfloat16 and float8.
The expected values come from PyTorch itself (`tensor.numpy()` after resolving
views and conj/neg bits), not from the loader under test.
"""

import collections
import json
import os

import numpy as np
import torch
from torch import nn

_HERE = os.path.dirname(os.path.abspath(__file__))

# dtypes numpy lacks: their bits travel through a same-sized integer view.
_BITS_VIEW = {
    torch.bfloat16: torch.int16,
    torch.float8_e4m3fn: torch.uint8,
    torch.float8_e5m2: torch.uint8,
}


def _dtype_name(t: torch.Tensor) -> str:
  return str(t.dtype).removeprefix("torch.")


def _bits(t: torch.Tensor) -> np.ndarray:
  t = t.detach().resolve_conj().resolve_neg().contiguous()
  if t.dtype in _BITS_VIEW:
    a = t.view(_BITS_VIEW[t.dtype]).numpy()
  else:
    a = t.numpy()
  if a.dtype.kind == "c":
    return a.copy()
  return a.view(np.dtype(f"u{a.dtype.itemsize}")).copy()


def _write_expected(name: str, flat: "collections.OrderedDict[str, torch.Tensor]") -> None:
  meta = {"keys": list(flat), "dtypes": {k: _dtype_name(t) for k, t in flat.items()}}
  arrays = {k: _bits(t) for k, t in flat.items()}
  np.savez(os.path.join(_HERE, name + ".npz"), __meta__=np.array(json.dumps(meta)), **arrays)


def _tensors() -> "collections.OrderedDict[str, torch.Tensor]":
  g = torch.Generator().manual_seed(0)
  sd = collections.OrderedDict()
  sd["conv.weight"] = torch.randn(4, 3, 3, 3, generator=g)
  sd["conv.bias"] = torch.randn(4, generator=g)
  sd["transposed"] = torch.randn(3, 5, generator=g).t()  # non-contiguous view
  assert not sd["transposed"].is_contiguous()
  shared = torch.arange(20, dtype=torch.float64) * 0.5
  sd["shared.a"] = shared[2:8]  # both views of one storage, at offsets 2 and 10
  sd["shared.b"] = shared[10:20].view(2, 5)
  sd["half"] = torch.tensor([[1.5, -0.0, float("inf")], [float("nan"), 6.1e-5, -65504.0]],
                            dtype=torch.float16)
  sd["bfloat16"] = torch.tensor([1.0, -3.140625, 1e30, float("nan")], dtype=torch.bfloat16)
  sd["bn.num_batches_tracked"] = torch.tensor(123456789012, dtype=torch.int64)  # 0-d
  sd["int32"] = torch.tensor([[-2**31, 7], [2**31 - 1, 0]], dtype=torch.int32)
  sd["int16"] = torch.tensor([-32768, 32767], dtype=torch.int16)
  sd["int8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
  sd["uint8"] = torch.tensor([0, 255, 17], dtype=torch.uint8)
  sd["bool"] = torch.tensor([True, False, True])
  sd["complex"] = torch.tensor([1 + 2j, -3.5j, 0], dtype=torch.complex64)
  sd["conj"] = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64).conj()  # lazy conj bit
  assert sd["conj"].is_conj()
  sd["neg"] = torch._neg_view(torch.tensor([1.0, -2.0]))  # lazy neg bit
  assert sd["neg"].is_neg()
  sd["expanded"] = torch.arange(3.0).expand(2, 3)  # stride 0
  sd["scalar"] = torch.tensor(2.5)
  sd["empty"] = torch.zeros(0, 3)
  sd["float64"] = torch.tensor([1e-300, -2.0], dtype=torch.float64)
  return sd


def _v3_tensors() -> "collections.OrderedDict[str, torch.Tensor]":
  # Saved as UntypedStorage + torch._utils._rebuild_tensor_v3 (PyTorch >= 2.3).
  sd = collections.OrderedDict()
  sd["uint16"] = torch.tensor([0, 1, 65535], dtype=torch.int32).to(torch.uint16)
  sd["float8_e4m3fn"] = torch.tensor([0.5, -448.0, 3.0]).to(torch.float8_e4m3fn)
  sd["float8_e5m2"] = torch.tensor([[1.0, -57344.0]]).to(torch.float8_e5m2)
  return sd


def main() -> None:
  torch.manual_seed(0)
  plain = _tensors()
  zipped = collections.OrderedDict(plain)
  zipped.update(_v3_tensors())
  torch.save(zipped, os.path.join(_HERE, "tensors.pt"))
  _write_expected("tensors", zipped)
  torch.save(plain, os.path.join(_HERE, "tensors_legacy.pt"), _use_new_zipfile_serialization=False)
  _write_expected("tensors_legacy", plain)

  model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))
  with torch.no_grad():  # non-trivial running statistics
    model[1].running_mean.uniform_(-1, 1)
    model[1].running_var.uniform_(0.5, 2)
    model[1].num_batches_tracked.fill_(42)
  wrapped = nn.DataParallel(model)  # CPU-only is fine: only the 'module.' key prefix matters
  state = wrapped.state_dict()
  assert all(k.startswith("module.") for k in state)
  torch.save(state, os.path.join(_HERE, "dataparallel_legacy.pth"),
             _use_new_zipfile_serialization=False)
  _write_expected("dataparallel_legacy", state)

  tagged = torch.tensor([4.0, 5.0])
  tagged.note = "a Python attribute: pickled through torch._tensor._rebuild_from_type_v2"
  step = torch.tensor(3.0)
  exp_avg = torch.tensor([0.25, -0.5])
  inner = collections.OrderedDict(weight=torch.tensor([[1.0, 2.0]]), bias=torch.tensor([0.5]))
  nested = {
      "epoch": 7,
      "name": "nested",
      "state_dict": inner,
      "param": nn.Parameter(torch.tensor([1.0, -1.0])),
      "tagged": tagged,
      "list": [torch.tensor([1], dtype=torch.int64), torch.tensor([2.0])],
      "optimizer": {"state": {0: {"step": step, "exp_avg": exp_avg}},
                    "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}]},
      "none": None,
  }
  torch.save(nested, os.path.join(_HERE, "nested.pt"))
  expected = collections.OrderedDict([
      ("state_dict.weight", inner["weight"]),
      ("state_dict.bias", inner["bias"]),
      ("param", nested["param"]),
      ("tagged", tagged),
      ("list.0", nested["list"][0]),
      ("list.1", nested["list"][1]),
      ("optimizer.state.0.step", step),
      ("optimizer.state.0.exp_avg", exp_avg),
  ])
  _write_expected("nested", expected)

  # Sanity: PyTorch reads all of them back with weights_only=True.
  for name in ("tensors.pt", "tensors_legacy.pt", "dataparallel_legacy.pth", "nested.pt"):
    torch.load(os.path.join(_HERE, name), weights_only=True)
  for name in sorted(os.listdir(_HERE)):
    print(f"{name:28s} {os.path.getsize(os.path.join(_HERE, name)):6d} bytes")


if __name__ == "__main__":
  main()
