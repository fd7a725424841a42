"""Data: keypoints, parsing, heatmaps, pair sources and the input pipeline.

The one reading entry for every dataset is `pair_source(name, split, data_dir=None)`.
"""

from jaxpose.data.sources import DATASETS, PairSource, pair_source

__all__ = ["DATASETS", "PairSource", "pair_source"]
