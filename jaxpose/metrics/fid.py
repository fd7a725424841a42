"""Fréchet Inception Distance and Inception Score from network outputs (numpy/scipy).

FID (Heusel et al.) between Gaussians fitted to two feature sets:
  ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2)),
computed the way pytorch-fid does (GFLA's `script/metrics.py` copies it):
scipy's `sqrtm` of S1 S2; if that is not finite (near-singular product), eps
(1e-6) is added to both diagonals and it is retried; a complex result is
accepted only if the imaginary parts of its diagonal are within 1e-3 of 0, and
its real part is used. Covariances are sample covariances (n - 1), as
`np.cov(rowvar=False)`.

Inception Score (Salimans et al.) of class probabilities, as the OpenAI / PATN
`inception_score.py`: the N predictions are cut into `splits` consecutive
parts; for each part exp(mean_i KL(p_i || mean_part p)); returns the mean and
the standard deviation over parts.

Everything here runs in float64 on the host: the features are small (N x 2048)
and sqrtm needs the precision.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from scipy import linalg


def activation_statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """(N, D) features -> (mu (D,), sigma (D, D)), float64, sample covariance (N - 1)."""
  f = np.asarray(features, np.float64)
  if f.ndim != 2 or f.shape[0] < 2:
    raise ValueError(f"activation_statistics: need (N >= 2, D) features, got {f.shape}")
  return f.mean(axis=0), np.cov(f, rowvar=False)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
  # pytorch-fid calls sqrtm(..., disp=False), which returns quietly and leaves the
  # judgement to the finiteness check; scipy's warning is silenced the same way.
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    return linalg.sqrtm(matrix)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
  """FID between N(mu1, sigma1) and N(mu2, sigma2); see the module docstring.

  Args:
    mu1, mu2: (D,) means.
    sigma1, sigma2: (D, D) covariances.
    eps: diagonal offset used only when sqrtm(sigma1 @ sigma2) is not finite.

  Raises:
    ValueError: shapes differ, or sqrtm has a significant imaginary part.
  """
  mu1 = np.atleast_1d(np.asarray(mu1, np.float64))
  mu2 = np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f"frechet_distance: shapes {mu1.shape} {sigma1.shape} vs {mu2.shape} {sigma2.shape}")
  diff = mu1 - mu2
  covmean = _sqrtm(sigma1 @ sigma2)
  if not np.all(np.isfinite(covmean)):
    # A singular product (e.g. fewer samples than dimensions): pytorch-fid's fix.
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"frechet_distance: sqrtm has imaginary component {np.max(np.abs(covmean.imag))}")
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def fid(features_a, features_b) -> float:
  """FID between two (N, D) feature sets (e.g. Inception pool3)."""
  return frechet_distance(*activation_statistics(features_a), *activation_statistics(features_b))


class StatisticsAccumulator:
  """Running mean and covariance of features, so a whole training set need not be kept.

  Sums are taken around the first batch's mean (a shift that leaves the
  covariance unchanged) to avoid cancellation in float64.
  """

  def __init__(self):
    self.count = 0
    self._shift = None
    self._sum = None
    self._outer = None

  def update(self, features) -> None:
    """Adds (B, D) features."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2:
      raise ValueError(f"StatisticsAccumulator: expected (B, D) features, got {f.shape}")
    if not len(f):
      return
    if self._shift is None:
      self._shift = f.mean(axis=0)
      self._sum = np.zeros_like(self._shift)
      self._outer = np.zeros((f.shape[1], f.shape[1]))
    elif f.shape[1] != self._shift.shape[0]:
      raise ValueError(f"StatisticsAccumulator: feature size {f.shape[1]}, expected {self._shift.shape[0]}")
    centred = f - self._shift
    self._sum += centred.sum(axis=0)
    self._outer += centred.T @ centred
    self.count += len(f)

  def statistics(self) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of everything added, equal to `activation_statistics` of the concatenation."""
    if self.count < 2:
      raise ValueError(f"StatisticsAccumulator: need at least 2 samples, have {self.count}")
    mean_centred = self._sum / self.count
    sigma = (self._outer - self.count * np.outer(mean_centred, mean_centred)) / (self.count - 1)
    return self._shift + mean_centred, sigma


def save_statistics(path: str, mu: np.ndarray, sigma: np.ndarray) -> None:
  """Writes an .npz with arrays 'mu' and 'sigma' (pytorch-fid's statistics file format)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "wb") as f:
    np.savez(f, mu=mu, sigma=sigma)


def load_statistics(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads 'mu' and 'sigma' from an .npz (ours or pytorch-fid's); no pickles are allowed."""
  with np.load(path, allow_pickle=False) as data:
    return np.asarray(data["mu"], np.float64), np.asarray(data["sigma"], np.float64)


def inception_score(probabilities, splits: int = 10) -> tuple[float, float]:
  """Inception Score: mean and std over `splits` parts of exp(E_x KL(p(y|x) || p(y))).

  Args:
    probabilities: (N, C) class probabilities (rows sum to 1), in the order
      the images were fed (the parts are consecutive, as in the original).
    splits: number of parts (10 in PATN, ADGAN, Def-GAN).

  Returns:
    (mean, std). Terms with p = 0 count as 0 (0 log 0 = 0); the original
    would produce nan for an exact 0, which float32 softmax outputs rarely hit.
  """
  p = np.asarray(probabilities, np.float64)
  if p.ndim != 2 or p.shape[0] < splits:
    raise ValueError(f"inception_score: need (N >= splits={splits}, C) probabilities, got {p.shape}")
  n = p.shape[0]
  scores = []
  for i in range(splits):
    part = p[i * n // splits:(i + 1) * n // splits]
    marginal = part.mean(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
      kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0)
    scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
  return float(np.mean(scores)), float(np.std(scores))
