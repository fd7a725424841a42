"""deepfashion_pose: DeepFashion In-shop person pairs in the PATN/ADGAN layout.

Build from the files you hold (see MANUAL_DOWNLOAD_INSTRUCTIONS, or the README):

  tfds build tfds_builders/deepfashion_pose --config adgan8 --manual_dir /data/deepfashion \
      --data_dir ~/tensorflow_datasets

then read it with `jaxpose.data.pair_source("deepfashion_pose/adgan8", "train")`.
Records follow `jaxpose.data.records`: each image once (the JPEG bytes kept as
they are when no crop is needed), the pairs as index pairs in the metadata, and
`metadata['skipped']` recording every bad input that was left out.
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

HEIGHT, WIDTH = 256, 176
UNCROPPED_SIZE = (256, 256)
CROP_LEFT = 40  # The official centre crop keeps x in [40, 216) (PATN's generate_fashion_datasets.py).
SPLITS = ("train", "test")

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Nothing can be downloaded automatically. Get the files and arrange them in one
directory, then pass it as --manual_dir:

1. Images. DeepFashion In-shop Clothes Retrieval ("img.zip", request access at
   https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html), turned
   into the 256x176 person images of PATN/ADGAN: run PATN's
   tool/generate_fashion_datasets.py (menyifang/ADGAN README, "Data preparation")
   so that you have
     fashion_resize/train/*.jpg   (48,674 files, 256x176, e.g.
                                   fashionWOMENBlouses_Shirtsid0000635004_1front.jpg)
     fashion_resize/test/*.jpg    (4,038 files)
   (PATN's own folder name fashion_data/ is fine too: then give fashion_data as
   --manual_dir, with train/ and test/ directly inside.)
2. Keypoints and pairs: from the Google Drive folder linked in the ADGAN / PATN
   READMEs, put in the same directory
     fashion-resize-annotation-train.csv, fashion-resize-annotation-test.csv
     fashion-resize-pairs-train.csv,      fashion-resize-pairs-test.csv
   (PATN spells them fasion-resize-...; either spelling is found).
3. Parsing, by config:
   adgan8 (default): ADGAN's semantic_merge3/ folder (Drive link in the ADGAN
     README), unpacked so that semantic_merge3/WOMEN/Blouses_Shirts/id_00006350/04_1_front.npy
     exists (8 labels, 256x176).
   lip: your own 20-label LIP parsing maps (e.g. a LIP-trained human parser run on
     the 256x176 images), one single-channel PNG per image, named after it:
     parsing_lip/train/<image name without .jpg>.png, parsing_lip/test/...
   no_parsing: nothing more (for PATN and other models without parsing input).
4. uncropped_* configs instead read the 256x256 images of Def-GAN's layout
   (data/split_fasion_dataset.py of AliaksandrSiarohin/pose-gan):
     fasion-dataset/train/*.jpg, fasion-dataset/test/*.jpg   (256x256)
     fasion-annotation-{train,test}.csv, fasion-pairs-{train,test}.csv (keypoints in
     the 256x256 frame)
   and apply the official centre crop (x in [40, 216), keypoint x - 40, -1 kept).
   Their parsing is as for adgan8 / lip (256x176 maps, or 256x256 ones that get
   the same crop).
5. fullframe_lip reads the same 256x256 files as uncropped_lip and keeps them
   whole (Def-GAN's and SPT's 256x256 frame, keypoints unchanged); 256x176
   parsing maps are padded back with background, 40 columns on each side.
6. uncropped_256x256 keeps the same files whole without parsing: what
   Deformable GAN and SDGAN train on.

Build one config at a time: tfds build tfds_builders/deepfashion_pose --config adgan8
--manual_dir <dir> (without --config every config is built, each needing its files).
"""


@dataclasses.dataclass
class DeepFashionPoseConfig(tfds.core.BuilderConfig):
  """Which files to read.

  Attributes:
    layout: "resized" (fashion_resize/, 256x176, the PATN/ADGAN files),
      "uncropped" (Def-GAN's 256x256 fasion-dataset/, centre-cropped here) or
      "fullframe" (the same 256x256 files kept whole: Def-GAN's and SPT's frame).
    parsing: "adgan8" (semantic_merge3 .npy), "lip" (parsing_lip/<split>/*.png)
      or "none" (zero maps, has_parsing False).
  """
  layout: str = "resized"
  parsing: str = "adgan8"


def _config(name: str, description: str, **kwargs) -> DeepFashionPoseConfig:
  return DeepFashionPoseConfig(name=name, description=description, **kwargs)


@dataclasses.dataclass(frozen=True)
class _SplitFiles:
  """Where one split's files are (all checked to exist)."""
  split: str
  images: epath.Path
  annotation_csv: epath.Path
  pairs_csv: epath.Path
  parsing_root: epath.Path | None  # semantic_merge3's parent, or parsing_lip/<split>


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for deepfashion_pose."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      _config("adgan8", "fashion_resize 256x176 JPEGs (bytes kept) with ADGAN's 8-class semantic_merge3 "
              "parsing: what the official ADGAN model was trained on.", layout="resized", parsing="adgan8"),
      _config("lip", "fashion_resize 256x176 JPEGs with 20-label LIP parsing PNGs from parsing_lip/.",
              layout="resized", parsing="lip"),
      _config("no_parsing", "fashion_resize 256x176 JPEGs without parsing (PATN and other pose-only models).",
              layout="resized", parsing="none"),
      _config("uncropped_adgan8", "Def-GAN's 256x256 images and 256x256-frame keypoints, centre-cropped to "
              "256x176 as the official scripts do; semantic_merge3 parsing.", layout="uncropped",
              parsing="adgan8"),
      _config("uncropped_lip", "As uncropped_adgan8, with LIP parsing PNGs from parsing_lip/.",
              layout="uncropped", parsing="lip"),
      _config("fullframe_lip", "Def-GAN's 256x256 images and keypoints kept whole (SPT's frame), with LIP "
              "parsing PNGs from parsing_lip/ (256x256, or 256x176 padded with background).",
              layout="fullframe", parsing="lip"),
      _config("uncropped_256x256", "Def-GAN's 256x256 images and keypoints as they are (JPEG bytes kept, no "
              "crop), without parsing: Deformable GAN's and SDGAN's frame.", layout="fullframe", parsing="none"),
  ]
  DEFAULT_CONFIG_NAME = "adgan8"

  def __init__(self, *, file_format=None, **kwargs):
    super().__init__(file_format=file_format, **kwargs)
    # pair_source reads by random access, which only array_record offers: make
    # it the default for a new build (an existing build keeps its format).
    if file_format is None and not self.is_prepared():
      self.info.set_file_format("array_record", override=True)

  def _frame(self) -> tuple[int, int]:
    """(H, W) of the stored images: 256x176, or 256x256 for the full-frame layout."""
    return UNCROPPED_SIZE if self.builder_config.layout == "fullframe" else (HEIGHT, WIDTH)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    labels = "lip" if config.parsing == "lip" else "adgan8"
    height, width = self._frame()
    metadata = records.make_metadata(height=height, width=width, parsing_labels=labels,
                                     has_parsing=config.parsing != "none")
    metadata["skipped"] = {}
    metadata["source_files"] = {}
    return self.dataset_info_from_configs(
        # The resized layout stores the original JPEG bytes; a crop is stored
        # losslessly (PNG) rather than as a second JPEG generation.
        features=records.person_features(height, width,
                                         image_encoding="png" if config.layout == "uncropped" else "jpeg"),
        supervised_keys=None,
        homepage="https://mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html",
        metadata=tfds.core.MetadataDict(metadata),
        # Pairs are stored as indices into each split: record order must be generation order.
        disable_shuffling=True,
    )

  # --------------------------------------------------------------------------
  # Layout

  def _split_files(self, root: epath.Path, split: str) -> _SplitFiles:
    """Finds one split's files; raises LayoutError saying what is missing."""
    config = self.builder_config
    if config.layout == "resized":
      image_dirs = [f"fashion_resize/{split}", split]
      annotation_names = [f"fashion-resize-annotation-{split}.csv", f"fasion-resize-annotation-{split}.csv"]
      pairs_names = [f"fashion-resize-pairs-{split}.csv", f"fasion-resize-pairs-{split}.csv"]
      size = "256x176 JPEGs"
    else:
      image_dirs = [f"fasion-dataset/{split}", f"{split}_256"]
      annotation_names = [f"fasion-annotation-{split}.csv", f"fashion-annotation-{split}.csv"]
      pairs_names = [f"fasion-pairs-{split}.csv", f"fashion-pairs-{split}.csv"]
      size = "256x256 JPEGs"
    if config.parsing == "adgan8":
      parsing_names = ["semantic_merge3"]
    elif config.parsing == "lip":
      parsing_names = [f"parsing_lip/{split}"]
    else:
      parsing_names = []

    images = next((root / d for d in image_dirs if image_io.image_files(root / d)), None)
    annotation_file = image_io.first_existing(root, annotation_names)
    pairs_csv = image_io.first_existing(root, pairs_names)
    parsing_dir = image_io.first_existing(root, parsing_names) if parsing_names else None
    missing = []
    if images is None:
      missing.append(f"{image_dirs[0]}/ (or {image_dirs[1]}/) with {size}")
    if annotation_file is None:
      missing.append(f"{annotation_names[0]} (or {annotation_names[1]})")
    if pairs_csv is None:
      missing.append(f"{pairs_names[0]} (or {pairs_names[1]})")
    if parsing_names and parsing_dir is None:
      missing.append(f"{parsing_names[0]}/ (parsing for config {config.name})")
    if missing:
      raise bad_input.LayoutError(
          f"deepfashion_pose/{config.name}: expected {', '.join(missing)} in {root}; found: "
          f"{image_io.describe_dir(root)}. See tfds_builders/deepfashion_pose/README.md "
          "(MANUAL_DOWNLOAD_INSTRUCTIONS) for the layout of each config.")
    annotation_csv.check_annotation_header(annotation_file)
    annotation_csv.check_pairs_header(pairs_csv)
    hint = ("The uncropped 256x256 images go in fasion-dataset/ with --config uncropped_adgan8"
            if config.layout == "resized" else
            "The 256x176 images go in fashion_resize/ with --config adgan8")
    image_io.check_image_size_sample(
        images, image_io.image_files(images),
        (HEIGHT, WIDTH) if config.layout == "resized" else UNCROPPED_SIZE, hint=hint)
    parsing_root = parsing_dir.parent if config.parsing == "adgan8" else parsing_dir
    return _SplitFiles(split, images, annotation_file, pairs_csv, parsing_root)

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = epath.Path(dl_manager.manual_dir)
    # Check both splits before generating anything: a wrong layout fails at once.
    files = {split: self._split_files(root, split) for split in SPLITS}
    for split, f in files.items():
      self.info.metadata["source_files"][split] = {
          "images": str(f.images), "annotation_csv": str(f.annotation_csv), "pairs_csv": str(f.pairs_csv),
          "parsing": str(f.parsing_root) if f.parsing_root else None}
    return {split: self._generate_examples(files[split]) for split in SPLITS}

  # --------------------------------------------------------------------------
  # Records

  def _people(self, files: _SplitFiles, rows: dict[str, annotation_csv.Annotation],
              report: bad_input.BadInputReport) -> list[split_builder.Person]:
    config = self.builder_config
    people = []
    for name, row in rows.items():
      parsing_path = None
      if config.parsing == "adgan8":
        try:
          parsing_path = files.parsing_root / deepfashion_names.deepfashion_parsing_path(name)
        except bad_input.BadInput as e:
          report.skip_image(name, e.kind, files.annotation_csv, e.reason, line=row.line)
          continue
      elif config.parsing == "lip":
        parsing_path = files.parsing_root / f"{deepfashion_names.name_stem(name)}.png"
      people.append(split_builder.Person(
          name=name, identity=name.rsplit("_", 1)[0], image_path=files.images / name,
          keypoints=row.keypoints, annotation_file=files.annotation_csv, line=row.line,
          parsing_path=parsing_path))
    return people

  def _load(self, person: split_builder.Person):
    """One person -> (record, non-fatal problems); raises BadInput for a bad image or parsing map."""
    config = self.builder_config
    notes = []
    keypoints = person.keypoints
    height, width = self._frame()
    if config.layout in ("resized", "fullframe"):
      image = image_io.read_image(person.image_path, (height, width))
      # The official bytes go in unchanged; only a non-RGB or non-JPEG file is re-encoded.
      image_bytes = (image.data if image.format == "JPEG" and image.plain_rgb
                     else image_io.encode_jpeg(image.pixels))
      frame = f"{height}x{width}"
    else:
      image = image_io.read_image(person.image_path, UNCROPPED_SIZE)
      image_bytes = image_io.encode_png(image.pixels[:, CROP_LEFT:CROP_LEFT + WIDTH])
      keypoints = annotation_csv.crop_keypoints_x(keypoints, CROP_LEFT)
      frame = f"{HEIGHT}x{WIDTH} centre crop (x in [{CROP_LEFT}, {CROP_LEFT + WIDTH}) of the 256x256)"
    keypoints, dropped = annotation_csv.drop_outside_joints(keypoints, height, width)
    for joint in dropped:
      notes.append(("keypoint_outside_image", person.annotation_file,
                    f"{person.name}: joint {joint} lies outside the {frame} image"))
    if config.parsing == "none":
      parsing_png = _zero_parsing_png(height, width)
    else:
      label_set = "lip" if config.parsing == "lip" else "adgan8"
      shapes = [(HEIGHT, WIDTH)] + ([UNCROPPED_SIZE] if config.layout != "resized" else [])
      labels = image_io.read_label_map(person.parsing_path, parsing_lib.num_classes(label_set), shapes,
                                          label_set)
      if config.layout == "uncropped" and labels.shape == UNCROPPED_SIZE:
        labels = labels[:, CROP_LEFT:CROP_LEFT + WIDTH]
      if config.layout == "fullframe" and labels.shape == (HEIGHT, WIDTH):
        # Undo the centre crop: the 40 columns on each side are background (label 0 in LIP and adgan8).
        labels = np.pad(labels, ((0, 0), (CROP_LEFT, UNCROPPED_SIZE[1] - WIDTH - CROP_LEFT)))
      parsing_png = image_io.encode_png(labels)
    record = {"image": image_bytes, "parsing": parsing_png, "keypoints": keypoints.astype(np.int32),
              "name": person.name, "identity": person.identity}
    return record, notes

  def _generate_examples(self, files: _SplitFiles):
    config = self.builder_config
    report = bad_input.BadInputReport(f"deepfashion_pose/{config.name}", files.split)
    rows = annotation_csv.read_annotation_csv(files.annotation_csv, report)
    pairs = annotation_csv.read_pairs_csv(files.pairs_csv, report)
    split_builder.count_unannotated(report, files.images, rows)
    logging.info("deepfashion_pose/%s %s: %d annotated images, %d pairs listed, from %s", config.name,
                 files.split, len(rows), len(pairs), files.images)
    yield from split_builder.person_records(self._people(files, rows, report), self._load, report)
    # Runs once the writer has consumed every example, before the metadata is saved.
    indices = annotation_csv.resolve_pairs(pairs, report, files.pairs_csv, files.annotation_csv)
    split_builder.finish_split(report, self.info.metadata, indices)


_ZERO_PNG: dict[tuple[int, int], bytes] = {}


def _zero_parsing_png(height: int = HEIGHT, width: int = WIDTH) -> bytes:
  if (height, width) not in _ZERO_PNG:
    _ZERO_PNG[(height, width)] = image_io.encode_png(np.zeros((height, width), np.uint8))
  return _ZERO_PNG[(height, width)]
