"""market1501_pose: Market-1501 person pairs at 128x64, in the Def-GAN/PATN layout.

Build from the files you hold (see MANUAL_DOWNLOAD_INSTRUCTIONS, or the README):

  tfds build tfds_builders/market1501_pose --config no_parsing --manual_dir /data/market \
      --data_dir ~/tensorflow_datasets

then read it with `jaxpose.data.pair_source("market1501_pose/no_parsing", "train")`.
Records follow `jaxpose.data.records`: each image once (the JPEG bytes as they
are), the pairs as index pairs in the metadata, `metadata['skipped']` recording
every bad input left out. Identity is the person id before the first '_' of the
file name ("0002_c1s1_000451_03.jpg" -> "0002"; the test split's distractors
"0000_..." and "-1_..." are stored when annotated, and the official pair lists
never name them).
"""

from __future__ import annotations

import dataclasses

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import deepfashion_names
from jaxpose.data import image_io
from jaxpose.data import split_builder
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import records

HEIGHT, WIDTH = 128, 64
SPLITS = ("train", "test")

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Nothing can be downloaded automatically. Get the files and arrange them in one
directory, then pass it as --manual_dir:

1. Images: Market-1501 (Market-1501-v15.09.15.zip, from the dataset's page
   http://zheng-lab.cecs.anu.edu.au/Project/project_reid.html). Keep
     bounding_box_train/*.jpg   (12,936 files, 128x64, e.g. 0002_c1s1_000451_03.jpg)
     bounding_box_test/*.jpg    (19,732 files)
   as they are, or renamed to train/ and test/ as PATN's README does.
2. Keypoints and pairs: market-annotation-train.csv, market-annotation-test.csv,
   market-pairs-train.csv, market-pairs-test.csv from the Google Drive folder
   linked in the PATN (tengteng95/Pose-Transfer) README, in the same directory.
3. Parsing, by config:
   no_parsing (default): nothing more (PATN and other pose-only models).
   lip: your own 20-label LIP parsing maps (a LIP-trained human parser run on the
     128x64 images), one single-channel PNG per image, named after it:
     parsing_lip/train/<image name without .jpg>.png, parsing_lip/test/...
     (needed by ADGAN: configs/adgan_market.py).

Build one config at a time: tfds build tfds_builders/market1501_pose --config no_parsing
--manual_dir <dir> (without --config every config is built, lip needing its PNGs).
"""


@dataclasses.dataclass
class Market1501PoseConfig(tfds.core.BuilderConfig):
  """parsing: "none" (zero maps, has_parsing False) or "lip" (parsing_lip/<split>/*.png)."""
  parsing: str = "none"


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for market1501_pose."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      Market1501PoseConfig(name="no_parsing", description="128x64 JPEGs (bytes kept), keypoints, no parsing.",
                           parsing="none"),
      Market1501PoseConfig(name="lip", description="128x64 JPEGs with 20-label LIP parsing PNGs from "
                           "parsing_lip/ (for ADGAN).", parsing="lip"),
  ]
  DEFAULT_CONFIG_NAME = "no_parsing"

  def __init__(self, *, file_format=None, **kwargs):
    super().__init__(file_format=file_format, **kwargs)
    # pair_source reads by random access, which only array_record offers: make
    # it the default for a new build (an existing build keeps its format).
    if file_format is None and not self.is_prepared():
      self.info.set_file_format("array_record", override=True)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    metadata = records.make_metadata(height=HEIGHT, width=WIDTH, parsing_labels="lip",
                                     has_parsing=config.parsing != "none")
    metadata["skipped"] = {}
    metadata["source_files"] = {}
    return self.dataset_info_from_configs(
        features=records.person_features(HEIGHT, WIDTH, image_encoding="jpeg"),
        supervised_keys=None,
        homepage="http://zheng-lab.cecs.anu.edu.au/Project/project_reid.html",
        metadata=tfds.core.MetadataDict(metadata),
        # Pairs are stored as indices into each split: record order must be generation order.
        disable_shuffling=True,
    )

  def _split_files(self, root: epath.Path, split: str) -> dict[str, epath.Path | None]:
    """Finds one split's files; raises LayoutError saying what is missing."""
    config = self.builder_config
    image_dirs = [f"bounding_box_{split}", split]
    images = next((root / d for d in image_dirs if image_io.image_files(root / d)), None)
    annotation_file = image_io.first_existing(root, [f"market-annotation-{split}.csv"])
    pairs_csv = image_io.first_existing(root, [f"market-pairs-{split}.csv"])
    parsing_dir = image_io.first_existing(root, [f"parsing_lip/{split}"]) if config.parsing == "lip" else None
    missing = []
    if images is None:
      missing.append(f"{image_dirs[0]}/ (or {image_dirs[1]}/) with 128x64 JPEGs")
    if annotation_file is None:
      missing.append(f"market-annotation-{split}.csv")
    if pairs_csv is None:
      missing.append(f"market-pairs-{split}.csv")
    if config.parsing == "lip" and parsing_dir is None:
      missing.append(f"parsing_lip/{split}/ (LIP parsing PNGs for config lip)")
    if missing:
      raise bad_input.LayoutError(
          f"market1501_pose/{config.name}: expected {', '.join(missing)} in {root}; found: "
          f"{image_io.describe_dir(root)}. See tfds_builders/market1501_pose/README.md "
          "(MANUAL_DOWNLOAD_INSTRUCTIONS).")
    annotation_csv.check_annotation_header(annotation_file)
    annotation_csv.check_pairs_header(pairs_csv)
    image_io.check_image_size_sample(images, image_io.image_files(images), (HEIGHT, WIDTH),
                                        hint="Market-1501's bounding boxes are 128x64")
    return {"split": split, "images": images, "annotation_csv": annotation_file, "pairs_csv": pairs_csv,
            "parsing": parsing_dir}

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = epath.Path(dl_manager.manual_dir)
    # Check both splits before generating anything: a wrong layout fails at once.
    files = {split: self._split_files(root, split) for split in SPLITS}
    for split, f in files.items():
      self.info.metadata["source_files"][split] = {k: str(v) if v else None for k, v in f.items()
                                                   if k != "split"}
    return {split: self._generate_examples(files[split]) for split in SPLITS}

  def _load(self, person: split_builder.Person):
    """One person -> (record, non-fatal problems); raises BadInput for a bad image or parsing map."""
    image = image_io.read_image(person.image_path, (HEIGHT, WIDTH))
    image_bytes = image.data if image.format == "JPEG" and image.plain_rgb else image_io.encode_jpeg(image.pixels)
    keypoints, dropped = annotation_csv.drop_outside_joints(person.keypoints, HEIGHT, WIDTH)
    notes = [("keypoint_outside_image", person.annotation_file,
              f"{person.name}: joint {joint} lies outside the {HEIGHT}x{WIDTH} image") for joint in dropped]
    if person.parsing_path is None:
      labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    else:
      labels = image_io.read_label_map(person.parsing_path, parsing_lib.num_classes("lip"),
                                          [(HEIGHT, WIDTH)], "lip")
    record = {"image": image_bytes, "parsing": image_io.encode_png(labels),
              "keypoints": keypoints.astype(np.int32), "name": person.name, "identity": person.identity}
    return record, notes

  def _generate_examples(self, files: dict):
    config = self.builder_config
    split = files["split"]
    report = bad_input.BadInputReport(f"market1501_pose/{config.name}", split)
    rows = annotation_csv.read_annotation_csv(files["annotation_csv"], report)
    pairs = annotation_csv.read_pairs_csv(files["pairs_csv"], report)
    split_builder.count_unannotated(report, files["images"], rows)
    logging.info("market1501_pose/%s %s: %d annotated images, %d pairs listed, from %s", config.name, split,
                 len(rows), len(pairs), files["images"])
    people = [
        split_builder.Person(
            name=name, identity=name.split("_", 1)[0], image_path=files["images"] / name,
            keypoints=row.keypoints, annotation_file=files["annotation_csv"], line=row.line,
            parsing_path=(files["parsing"] / f"{deepfashion_names.name_stem(name)}.png" if files["parsing"] else None))
        for name, row in rows.items()]
    yield from split_builder.person_records(people, self._load, report)
    # Runs once the writer has consumed every example, before the metadata is saved.
    indices = annotation_csv.resolve_pairs(pairs, report, files["pairs_csv"], files["annotation_csv"])
    split_builder.finish_split(report, self.info.metadata, indices)
