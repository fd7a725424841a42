"""The `System` base class and the training state every system shares.

The contract is written once, in `jaxpose/systems/__init__.py`; this module
holds its defaults.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, ClassVar, Mapping

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxpose import evaluation
from jaxpose import optim
from jaxpose import visualize
from jaxpose.data import pipeline


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue exactly where it stopped.

  Attributes:
    step: int32, number of completed updates.
    rng: the run's base PRNG key; step s uses fold_in(rng, s).
    nets: {network name: Flax variables} of the trained networks ('params',
      and e.g. 'batch_stats' or ADGAN's frozen style-encoder VGG 'frozen').
    opt: {network name: optax state}.
    frozen: {name: Flax variables} of frozen feature networks used by the
      losses (VGGs, later a pose detector); None where a system has none.
    aux: {name: pytree} system-owned extras (PATN's image pools); None leaves
      for absent ones.
    nonfinite_step: -1, or the first step whose losses were NaN/Inf or whose
      update the divergence guard rejected (jaxpose/divergence.py); from then
      on updates are skipped, so the state stays the last good one.
  """
  step: jax.Array
  rng: jax.Array
  nets: dict
  opt: dict
  frozen: dict
  aux: dict
  nonfinite_step: jax.Array


@dataclasses.dataclass(frozen=True)
class Pretrained:
  """Frozen feature networks a system uses, as loaded by `jaxpose.pretrained`.

  Attributes:
    variables: {name: variables (numpy)} passed into `System.init` (traced as
      arguments, never baked into the compiled program as constants).
    archs: {name: architecture string} the modules are built with ('vgg19', ...).
    descriptions: one log line per network: which weights, from where.
  """
  variables: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  archs: Mapping[str, str] = dataclasses.field(default_factory=dict)
  descriptions: tuple[str, ...] = ()


def compute_dtype(config) -> Any:
  """config.compute_dtype: 'float32' or 'bfloat16' (parameters and optimizer states stay float32)."""
  if config.compute_dtype not in ("float32", "bfloat16"):
    raise ValueError(f"config.compute_dtype must be 'float32' or 'bfloat16', got {config.compute_dtype!r}")
  return jnp.dtype(config.compute_dtype)


class System:
  """One published method. See the package docstring for the contract."""

  name: ClassVar[str] = ""
  networks: ClassVar[tuple[str, ...]] = ()
  generation_networks: ClassVar[tuple[str, ...]] = ("generator",)
  batches_per_step: ClassVar[int] = 1
  official_files: ClassVar[Mapping[str, tuple[str, str]]] = {}
  result_title: ClassVar[str] = "generated"

  def __init__(self, config: ml_collections.ConfigDict, pretrained: Pretrained):
    self.config = config
    self.pretrained = pretrained

  # ---------------------------------------------------------------- config and data

  @classmethod
  def batch_keys(cls, config) -> tuple[str, ...]:
    raise NotImplementedError

  @classmethod
  def check(cls, config, source) -> None:
    """Raises ValueError naming the config field when `source` cannot feed this system."""

  @classmethod
  def host_inputs(cls, config) -> Callable[[dict], dict] | None:
    """Extra per-pair inputs computed on the host (a picklable callable), or None."""
    return None

  @classmethod
  def transform(cls, config, source) -> pipeline.PairTransform:
    """The per-pair transform for this system and dataset."""
    return pipeline.transform_for(source, heatmap_sigma=config.data.heatmap_sigma,
                                  heatmap_mode=config.data.heatmap_mode,
                                  parsing_merge=config.data.parsing_merge, extra=cls.host_inputs(config))

  # ---------------------------------------------------------------- weights

  @classmethod
  def load_pretrained(cls, config) -> Pretrained:
    return Pretrained()

  @classmethod
  def is_official_file(cls, path: str) -> bool:
    """Whether `path` (init_from, generate.checkpoint) is an official file for `read_official`
    rather than one of our run directories (default: a PyTorch `.pth`)."""
    return bool(path) and path.endswith(".pth")

  @classmethod
  def checkpoint_kinds(cls) -> dict[str, Callable[[str], tuple[Any, dict]]]:
    return {}

  @classmethod
  def read_official(cls, config, path: str, networks: tuple[str, ...]) -> tuple[dict, str]:
    """Official files -> ({network: variables}, origin) for the `networks` asked for.

    `path` is the release's generator file; the other networks' files are
    found beside it by `official_files`' suffixes (a missing one is skipped
    with a warning: several releases hold the generator alone).
    """
    raise ValueError(f"{cls.name} has no official checkpoint format; use one of our run directories")

  @classmethod
  def read_official_siblings(cls, path: str, networks: tuple[str, ...], weights: dict[str, Any]) -> tuple[dict, str]:
    """Adds to `weights` the official files of `networks` found beside generator file `path`.

    Each network's file is `path` with the generator's suffix replaced by its
    own (`official_files`); a missing one is skipped with a warning (several
    releases hold the generator alone). -> (weights, origin: the files read).
    """
    kinds = cls.checkpoint_kinds()
    suffix = cls.official_files["generator"][1]
    sources = [path]
    others = [n for n in networks if n in cls.official_files and n != "generator"]
    if others and not path.endswith(suffix):
      raise ValueError(f"{path}: official {cls.name} generator files end in {suffix}; use "
                       "config.init_what='generator' to load a differently named generator alone")
    stem = path[: -len(suffix)]
    for name in others:
      kind, other_suffix = cls.official_files[name]
      if os.path.exists(stem + other_suffix):
        weights[name] = kinds[kind](stem + other_suffix)[1]
        sources.append(stem + other_suffix)
      else:
        logging.warning("init_from: %s not found; %s starts from random weights (the released "
                        "checkpoints hold only the generator)", stem + other_suffix, name)
    return weights, " + ".join(sources)

  @classmethod
  def strip_frozen(cls, nets: Mapping[str, Any]) -> tuple[dict, dict]:
    """-> (nets without the frozen pretrained parts, {network: how to re-attach them}), for
    `jaxpose.weights.save`: shipped files hold only what training learned."""
    return dict(nets), {}

  @classmethod
  def attach_frozen(cls, config, nets: Mapping[str, Any], frozen: Mapping[str, Any]) -> dict:
    """Inverse of `strip_frozen` (`frozen` is what it returned), checking the values are the same."""
    if frozen:
      raise ValueError(f"{cls.name} has no frozen parts to re-attach, but the weights list {sorted(frozen)}")
    return dict(nets)

  @classmethod
  def from_variables(cls, config, nets: Mapping[str, Any]) -> "System":
    """A system whose `generate` applies `nets` (by default: built from the config)."""
    return cls(config, cls.load_pretrained(config))

  # ---------------------------------------------------------------- built

  def optimizer(self, network: str) -> optax.GradientTransformation:
    """The optimizer of `network` (Adam on the config's schedule unless a system says otherwise)."""
    del network
    return optim.adam(self.config.optim)

  def init(self, rng: jax.Array, example: dict, frozen: Mapping[str, Any]) -> tuple[dict, dict, dict, dict]:
    """-> (nets, opt, aux, frozen) of a fresh `TrainState`; `example` is a batch of one."""
    raise NotImplementedError

  def train_step(self, state: TrainState, batch: Any, rng: jax.Array) -> tuple[TrainState, dict]:
    raise NotImplementedError

  def generate(self, nets: Mapping[str, Any], batch: dict) -> dict:
    raise NotImplementedError

  def result_pictures(self, batch: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]) -> np.ndarray:
    """What `generate` made of each example of a host batch, as uint8 (B, H, W, 3) pictures.

    `outputs` is `generate`'s dict, fetched to the host. Default: the generated images.
    """
    del batch
    return visualize.to_uint8(outputs["image"])

  def evaluate(self, generate_fn: Callable, nets: Mapping[str, Any], source, transform: pipeline.PairTransform,
               mesh, *, keys: tuple[str, ...], real_source=None, statistics_path: str | None = None) -> dict:
    """Test-split metrics of `nets` on `source`: {name: value}.

    Default: the image metrics of `jaxpose.evaluation.evaluate` (generated vs
    target, with `generate_fn(nets, device batch of keys)`).
    """
    return evaluation.evaluate(self.config, generate_fn, nets, source, transform, mesh, keys=keys,
                               real_source=real_source, statistics_path=statistics_path)

  def component_names(self) -> tuple[str, ...]:
    """The parsing components the style code is made of, in slot order; () without a style code."""
    return ()

  def generate_components(self, nets: Mapping[str, Any], batch: dict) -> dict:
    """Generation with each component taken from its own picture (component attribute transfer).

    batch: 'component_images' (B, K, H, W, 3) in [-1, 1], 'component_masks'
    (B, K, H, W) (picture i's parsing channel i), 'target_pose' (B, H, W, 18).
    Only systems with a style code (`component_names()` not empty) have it.
    """
    raise NotImplementedError(f"{self.name} has no per-component style code")

  def loss_panels(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return ()

  def sample_columns(self, batch: Mapping[str, np.ndarray], outputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """{column title: uint8 (B, H, W, 3)} of what `generate` made, shown in the sample grids.

    Default: one column, `result_pictures` titled `result_title`.
    """
    return {self.result_title: self.result_pictures(batch, outputs)}

  def generation_pictures(self, pipe, source, transform, out_dir: str) -> dict:
    """Extra --mode=generate pictures; `pipe` is the `jaxpose.inference.Pipeline` users call. -> {name: path}."""
    return {}
