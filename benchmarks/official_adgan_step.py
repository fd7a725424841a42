"""Seconds per training step of the OFFICIAL PyTorch ADGAN (menyifang/ADGAN), on the CPU.

  /path/to/torch-venv/bin/python benchmarks/official_adgan_step.py --adgan /path/to/ADGAN \
      --height 256 --width 176 --batch 2 [--threads 2] [--steps 3]

Run by `benchmarks/train_throughput.py --official_adgan=...` beside jaxpose's
step; it can also be run alone. It imports the official code from `--adgan` (a
checkout of menyifang/ADGAN; never shipped or copied here) and times its
`TransferModel.optimize_parameters` exactly as `scripts/train.sh` configures it
(G with L1 + perceptual + CX + both LSGAN terms, then D_PP and D_PB; pool 0),
with random weights and random inputs of the given shapes. Needs torch (a CPU
build) and numpy in the interpreter that runs it; jaxpose does not depend on
torch.

The official code assumes CUDA and files on its authors' disks. On the CPU this
script makes `.cuda()` a no-op, serves random weights for the VGG files it
`torch.load`s (speed does not depend on the values), and stands in for the two
imports it cannot use here: `torchvision.models.vgg.vgg19` (a VGG19 `features`
stack, used when torchvision is not importable) and `skimage.draw` (drawing
helpers only used for visualisation). Prints one JSON line (the last line of
the output): {"step_s": [...], "first_step_s": ..., "threads": ..., ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import types


def _vgg19_features():
  import torch.nn as nn  # pylint: disable=g-import-not-at-top
  layers, c_in = [], 3
  for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
            512, 512, 512, 512, "M"):
    if v == "M":
      layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    else:
      layers += [nn.Conv2d(c_in, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
      c_in = v
  return nn.Sequential(*layers)


def _install_stand_ins() -> list[str]:
  """Stand-ins for imports the official code needs but cannot use on this machine; -> their names."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn as nn  # pylint: disable=g-import-not-at-top
  used = []
  try:
    import torchvision.models.vgg  # pylint: disable=g-import-not-at-top,unused-import
  except Exception:  # pylint: disable=broad-except
    # torchvision's VGG19 (`features` only; the official code never uses `classifier`).
    class VGG(nn.Module):
      def __init__(self):
        super().__init__()
        self.features = _vgg19_features()

    vgg = types.ModuleType("torchvision.models.vgg")
    vgg.vgg19 = lambda pretrained=False, **_: VGG()
    models = types.ModuleType("torchvision.models")
    models.vgg = vgg
    models.vgg19 = vgg.vgg19
    torchvision = types.ModuleType("torchvision")
    torchvision.models = models
    sys.modules.update({"torchvision": torchvision, "torchvision.models": models, "torchvision.models.vgg": vgg})
    used.append("torchvision.models.vgg (VGG19 features)")
  try:
    from skimage.draw import circle, line_aa, polygon  # pylint: disable=g-import-not-at-top,unused-import
  except Exception:  # pylint: disable=broad-except
    draw = types.ModuleType("skimage.draw")
    for name in ("circle", "line_aa", "polygon"):
      setattr(draw, name, lambda *a, **k: None)
    skimage = types.ModuleType("skimage")
    skimage.draw = draw
    sys.modules.update({"skimage": skimage, "skimage.draw": draw})
    used.append("skimage.draw (visualisation only)")
  # CUDA calls become no-ops; the official code calls .cuda() unconditionally.
  nn.Module.cuda = lambda self, *a, **k: self
  torch.Tensor.cuda = lambda self, *a, **k: self
  return used


def _random_weights_for_loads():
  """torch.load of the official VGG files -> the requesting module's own (random) state_dict."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn as nn  # pylint: disable=g-import-not-at-top
  original_load_state_dict = nn.Module.load_state_dict
  marker = object()
  torch.load = lambda *a, **k: marker

  def load_state_dict(self, state_dict, *args, **kwargs):
    if state_dict is marker:
      return None  # keep the module's random init
    return original_load_state_dict(self, state_dict, *args, **kwargs)
  nn.Module.load_state_dict = load_state_dict


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--adgan", required=True, help="a checkout of menyifang/ADGAN")
  parser.add_argument("--height", type=int, default=256)
  parser.add_argument("--width", type=int, default=176)
  parser.add_argument("--batch", type=int, default=6)
  parser.add_argument("--ngf", type=int, default=64)
  parser.add_argument("--ndf", type=int, default=64)
  parser.add_argument("--n_layers_D", type=int, default=3)
  parser.add_argument("--threads", type=int, default=os.cpu_count())
  parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  import numpy as np  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  stand_ins = _install_stand_ins()
  _random_weights_for_loads()
  adgan_dir = os.path.abspath(args.adgan)
  if not os.path.exists(os.path.join(adgan_dir, "models", "adgan.py")):
    raise SystemExit(f"--adgan={args.adgan}: no models/adgan.py there (expected a checkout of menyifang/ADGAN)")
  sys.path.insert(0, adgan_dir)
  from options.train_options import TrainOptions  # pylint: disable=g-import-not-at-top
  from models.adgan import TransferModel  # pylint: disable=g-import-not-at-top

  scratch = tempfile.mkdtemp(prefix="official_adgan_")
  # scripts/train.sh, on the CPU (gpu_ids -1), with the requested batch and widths.
  sys.argv = ["train.py", "--dataroot", os.path.join(scratch, "fashion"), "--dirSem", scratch,
              "--name", "speed", "--checkpoints_dir", scratch, "--model", "adgan", "--which_model_netG", "ADGen",
              "--dataset_mode", "keypoint", "--norm", "instance", "--lambda_GAN", "5", "--lambda_A", "1",
              "--lambda_B", "1", "--batchSize", str(args.batch), "--pool_size", "0", "--resize_or_crop", "no",
              "--gpu_ids", "-1", "--BP_input_nc", "18", "--SP_input_nc", "8", "--no_flip", "--niter", "500",
              "--niter_decay", "500", "--L1_type", "l1_plus_perL1", "--n_layers_D", str(args.n_layers_D),
              "--with_D_PP", "1", "--with_D_PB", "1", "--display_id", "0", "--ngf", str(args.ngf),
              "--ndf", str(args.ndf)]
  with contextlib.redirect_stdout(io.StringIO()):  # their option and network printouts
    opt = TrainOptions().parse()
    model = TransferModel()
    model.initialize(opt)

  rng = np.random.default_rng(args.seed)
  shape = (args.batch, args.height, args.width)
  tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a.astype(np.float32)))
  image = lambda: tensor(rng.uniform(-1, 1, shape + (3,)).transpose(0, 3, 1, 2))
  pose = lambda: tensor(rng.uniform(0, 1, shape + (18,)).transpose(0, 3, 1, 2))
  parsing = tensor(np.eye(8)[rng.integers(0, 8, shape)].transpose(0, 3, 1, 2))
  model.set_input({"P1": image(), "BP1": pose(), "P2": image(), "BP2": pose(), "SP1": parsing,
                   "P1_path": ["p1"], "P2_path": ["p2"]})

  start = time.perf_counter()
  model.optimize_parameters()
  first = time.perf_counter() - start
  times = []
  for _ in range(args.steps):
    start = time.perf_counter()
    model.optimize_parameters()
    times.append(time.perf_counter() - start)
  errors = {k: float(v) for k, v in model.get_current_errors().items()}
  print(json.dumps({"step_s": times, "first_step_s": first, "threads": torch.get_num_threads(),
                    "torch": torch.__version__, "batch": args.batch, "height": args.height, "width": args.width,
                    "stand_ins": stand_ins, "losses": errors}))


if __name__ == "__main__":
  main()
