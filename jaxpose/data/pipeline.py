"""Input pipeline: pairs -> model-ready numpy batches, by random access with Grain.

Training iterates an endless, seeded shuffle of pair indices, sharded across
hosts; its position is a small JSON state (`iterator.get_state()`) that the
training checkpoint stores, so a restarted run continues with the same batches.
Evaluation walks the pairs in order once and pads the last batch.

Per example (see `PairTransform`):
  source_image, target_image     float32 (H, W, 3) in [-1, 1]
  source_pose, target_pose       float32 (H, W, 18) heatmaps
  source_parsing, target_parsing float32 (H, W, K) one-hot of the merged label set
  source_keypoints, target_keypoints int32 (18, 2)
  pair_index                     int32
plus whatever a system's host-side `extra` function adds (e.g. Deformable
GAN's part warps), computed per pair in the loader's workers.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterator, Sequence

import grain.python as grain
import numpy as np

from jaxpose.data import heatmaps
from jaxpose.data import parsing as parsing_lib


@dataclasses.dataclass(frozen=True)
class PairTransform(grain.MapTransform):
  """Turns a `pair_source` example into model inputs.

  Attributes:
    image_size: expected (height, width); a mismatching example raises.
    heatmap_sigma: Gaussian sigma in pixels (6 in all official code).
    heatmap_mode: "gaussian", or "spike" for the official DeepFashion files' maps.
    parsing_labels: label set stored in the dataset ("lip" or "adgan8").
    parsing_merge: label set the model consumes ("adgan8" for ADGAN, "spt10").
    has_parsing: False for datasets without parsing maps (one-hot of zeros then).
    extra: optional host-side function (the transformed example -> dict of
      extra numpy inputs), merged into the example; picklable, as Grain
      workers receive the transform.
  """
  image_size: tuple[int, int]
  heatmap_sigma: float = 6.0
  heatmap_mode: str = "gaussian"
  parsing_labels: str = "lip"
  parsing_merge: str = "adgan8"
  has_parsing: bool = True
  extra: Callable[[dict], dict] | None = None

  def map(self, example: dict) -> dict:
    height, width = self.image_size
    out = {}
    for side in ("source", "target"):
      image = example[f"{side}_image"]
      if image.shape != (height, width, 3):
        raise ValueError(
            f"{side} image {example.get(f'{side}_name', '?')} has shape {image.shape}, but the "
            f"configured image size is {(height, width)}: set config.data.image_size to match the dataset")
      out[f"{side}_image"] = image.astype(np.float32) / 127.5 - 1.0
      keypoints = np.asarray(example[f"{side}_keypoints"], np.int32)
      out[f"{side}_keypoints"] = keypoints
      out[f"{side}_pose"] = heatmaps.keypoints_to_heatmaps(
          keypoints, height, width, sigma=self.heatmap_sigma, mode=self.heatmap_mode)
      num = parsing_lib.num_classes(self.parsing_merge)
      if self.has_parsing:
        merged = parsing_lib.merge(example[f"{side}_parsing"], self.parsing_labels, self.parsing_merge)
        out[f"{side}_parsing"] = parsing_lib.one_hot(merged, num)
      else:
        out[f"{side}_parsing"] = np.zeros((height, width, num), np.float32)
    out["pair_index"] = np.int32(example["pair_index"])
    if self.extra is not None:
      out.update(self.extra(out))
    return out

  def example_shapes(self) -> dict[str, tuple[tuple[int, ...], Any]]:
    """{key: (shape, dtype)} of one transformed example, derived by running the
    transform on a blank pair (keypoints all missing)."""
    height, width = self.image_size
    blank = {"pair_index": 0}
    for side in ("source", "target"):
      blank[f"{side}_image"] = np.zeros((height, width, 3), np.uint8)
      blank[f"{side}_keypoints"] = np.full((18, 2), -1, np.int32)
      blank[f"{side}_parsing"] = np.zeros((height, width), np.uint8)
      blank[f"{side}_name"] = "blank"
    return {k: (np.shape(v), np.asarray(v).dtype) for k, v in self.map(blank).items()}


def transform_for(source, *, heatmap_sigma: float = 6.0, heatmap_mode: str = "gaussian",
                  parsing_merge: str = "adgan8", extra: Callable[[dict], dict] | None = None) -> PairTransform:
  """The `PairTransform` matching a `PairSource`'s image size and label set."""
  return PairTransform(image_size=tuple(source.image_size), heatmap_sigma=heatmap_sigma,
                       heatmap_mode=heatmap_mode, parsing_labels=source.parsing_labels,
                       parsing_merge=parsing_merge, has_parsing=source.has_parsing, extra=extra)


def train_loader(source, *, per_process_batch_size: int, seed: int, transform: PairTransform,
                 worker_count: int = 0, worker_buffer_size: int = 2) -> grain.DataLoader:
  """An endless shuffled loader; `iter(loader)` has `get_state()`/`set_state()`.

  Each host reads its own shard of the shuffled index stream
  (`ShardByJaxProcess`), so hosts never load the same pair in a step.
  """
  if len(source) < per_process_batch_size:
    raise ValueError(f"{source!r} has {len(source)} pairs, fewer than one batch of {per_process_batch_size}")
  sampler = grain.IndexSampler(
      num_records=len(source), shard_options=grain.ShardByJaxProcess(drop_remainder=True),
      shuffle=True, num_epochs=None, seed=seed)
  return grain.DataLoader(
      data_source=source, sampler=sampler,
      operations=[transform, grain.Batch(per_process_batch_size, drop_remainder=True)],
      worker_count=worker_count, worker_buffer_size=worker_buffer_size)


def eval_batches(source, *, batch_size: int, transform: PairTransform, num_pairs: int | None = None,
                 indices: Sequence[int] | None = None) -> Iterator[tuple[dict, int]]:
  """Pairs in order, as (batch, number of real examples).

  Walks `indices` if given, else pairs 0..num_pairs-1 (all by default). The last
  batch is padded to `batch_size` by repeating its final example, so every
  batch has the same shape (one compilation); callers drop the padding.
  """
  if indices is None:
    total = len(source) if num_pairs is None else min(num_pairs, len(source))
    indices = range(total)
  indices = list(indices)
  for start in range(0, len(indices), batch_size):
    examples = [transform.map(source[i]) for i in indices[start:start + batch_size]]
    valid = len(examples)
    examples += [examples[-1]] * (batch_size - valid)
    yield {k: np.stack([e[k] for e in examples]) for k in examples[0]}, valid


def spread_indices(num_pairs: int, count: int) -> list[int]:
  """`count` pair indices spread evenly over 0..num_pairs-1 (pairs are sorted by
  identity, so the first few pairs would all show one person)."""
  if num_pairs <= 0:
    return []
  return sorted(set(np.linspace(0, num_pairs - 1, min(count, num_pairs)).round().astype(int).tolist()))
