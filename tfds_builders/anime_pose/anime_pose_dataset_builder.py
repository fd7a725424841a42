"""anime_pose: pose-transfer pairs of anime characters, for fine-tuning a DeepFashion model.

Build from your own folder of characters (see MANUAL_DOWNLOAD_INSTRUCTIONS, or the README):

  tfds build tfds_builders/anime_pose --config 256x176 --manual_dir /data/anime \
      --data_dir ~/tensorflow_datasets

then read it with `jaxpose.data.pair_source("anime_pose/256x176", "train")`.
Each image is resized keeping its aspect ratio and padded, centred, to the
config's size (`letterbox.Letterbox`): Lanczos for the pixels, padding in the
median colour of the image's border; nearest neighbour for the parsing map,
padding 0 (background); keypoints mapped to the pixel holding their centre, and
joints outside the source image reported and set to -1. Pairs are every
ordered pair of images within a character (both with the four torso joints, as
the official pair scripts require; `include_self_pairs` adds (i, i)).

Split rule: the characters named in `test_characters.txt` (one per line, '#'
comments) are the test split; without that file, a deterministic holdout:
max(1, round(10%)) of the characters, those whose name has the smallest SHA-256
digest (`split_builder.holdout`), so adding a character rarely moves the others.
"""

from __future__ import annotations

import dataclasses

from absl import logging
from etils import epath
import tensorflow_datasets as tfds

from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import deepfashion_names
from jaxpose.data import image_io
from jaxpose.data import letterbox
from jaxpose.data import split_builder
from jaxpose.data import keypoints as kp
from jaxpose.data import pairs as pairs_lib
from jaxpose.data import parsing as parsing_lib
from jaxpose.data import records

KEYPOINTS_CSV = "keypoints.csv"
TEST_CHARACTERS = "test_characters.txt"
PARSING_DIRS = {"lip": "parsing_lip", "adgan8": "parsing_adgan8"}
MIN_IMAGE_SIZE = 16
SPLITS = ("train", "test")

MANUAL_DOWNLOAD_INSTRUCTIONS = """\
This dataset is your own: there is nothing to download. Arrange one directory as

  <manual_dir>/
    test_characters.txt        optional: the characters of the test split, one per line
    <character>/               one folder per character (its name is the identity)
      keypoints.csv            name:keypoints_y:keypoints_x, the official annotation format:
                               ':'-separated, a JSON list of 18 ints each (COCO-18/OpenPose
                               order, (row y, column x) in that image file's pixels, -1 missing)
      <image>.png|.jpg|...     the images, any size and aspect ratio (transparency becomes white)
      parsing_lip/<image stem>.png      20-label LIP parsing maps (single-channel PNG, same
                                         size as the image), for the configs without a suffix
      parsing_adgan8/<image stem>.npy|.png   ADGAN's 8 components instead, for *_adgan8 configs

Images are resized and padded to the config's size (256x176, 128x88 or 64x44) with their
keypoints and parsing maps. Without test_characters.txt about 10% of the characters
(at least one) are held out for testing, chosen by a hash of their names.

Build one config at a time: tfds build tfds_builders/anime_pose --config 256x176
--manual_dir <dir> (without --config every config is built, each needing its parsing maps).
"""


@dataclasses.dataclass
class AnimePoseConfig(tfds.core.BuilderConfig):
  """Output size and pairing.

  Attributes:
    height, width: the model's image size; every image is letterboxed to it.
    parsing_labels: "lip" (parsing_lip/*.png) or "adgan8" (parsing_adgan8/*.npy or .png).
    include_self_pairs: also pair every image with itself (reconstruction pairs).
    require_torso: pair only images with both shoulders and hips (the official filter).
  """
  height: int = 256
  width: int = 176
  parsing_labels: str = "lip"
  include_self_pairs: bool = False
  require_torso: bool = True


def _config(name: str, description: str, **kwargs) -> AnimePoseConfig:
  return AnimePoseConfig(name=name, description=description, **kwargs)


class Builder(tfds.core.GeneratorBasedBuilder):
  """DatasetBuilder for anime_pose."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = MANUAL_DOWNLOAD_INSTRUCTIONS
  BUILDER_CONFIGS = [
      _config("256x176", "DeepFashion's size (fine-tuning the official ADGAN); LIP parsing.",
              height=256, width=176),
      _config("128x88", "Half DeepFashion size; LIP parsing.", height=128, width=88),
      _config("256x176_adgan8", "256x176 with ADGAN's 8-class parsing maps.", height=256, width=176,
              parsing_labels="adgan8"),
      _config("128x88_adgan8", "128x88 with ADGAN's 8-class parsing maps.", height=128, width=88,
              parsing_labels="adgan8"),
      _config("64x44", "Quarter DeepFashion size (the synthetic configs' size); LIP parsing.",
              height=64, width=44),
      _config("64x44_adgan8", "64x44 with ADGAN's 8-class parsing maps.", height=64, width=44,
              parsing_labels="adgan8"),
      _config("tiny", "For tests: 32x24 with ADGAN's 8-class parsing maps (synthetic_people/tiny's size).",
              height=32, width=24, parsing_labels="adgan8"),
      _config("256x176_self_pairs", "256x176, LIP parsing, each image also paired with itself.",
              height=256, width=176, include_self_pairs=True),
  ]
  DEFAULT_CONFIG_NAME = "256x176"

  def __init__(self, *, file_format=None, **kwargs):
    super().__init__(file_format=file_format, **kwargs)
    # pair_source reads by random access, which only array_record offers: make
    # it the default for a new build (an existing build keeps its format).
    if file_format is None and not self.is_prepared():
      self.info.set_file_format("array_record", override=True)

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    metadata = records.make_metadata(height=config.height, width=config.width,
                                     parsing_labels=config.parsing_labels, has_parsing=True)
    metadata.update(skipped={}, characters={}, split_rule="")
    return self.dataset_info_from_configs(
        features=records.person_features(config.height, config.width, image_encoding="png"),
        supervised_keys=None,
        homepage="https://github.com/jaxpose/jaxpose",
        metadata=tfds.core.MetadataDict(metadata),
        # Pairs are stored as indices into each split: record order must be generation order.
        disable_shuffling=True,
    )

  # --------------------------------------------------------------------------
  # Layout

  def _characters(self, root: epath.Path) -> tuple[dict[str, list[str]], str]:
    """split -> sorted character folder names, and the rule that split them; LayoutError if unusable."""
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    characters = [f for f in folders if (root / f / KEYPOINTS_CSV).exists()]
    without = [f for f in folders if f not in characters]
    if not characters:
      raise bad_input.LayoutError(
          f"anime_pose: expected one folder per character in {root}, each with its images and a "
          f"{KEYPOINTS_CSV} (name:keypoints_y:keypoints_x); found: {image_io.describe_dir(root)}")
    if without:
      logging.warning("anime_pose: folders without %s are not characters and are ignored: %s",
                      KEYPOINTS_CSV, ", ".join(without))
    listed = root / TEST_CHARACTERS
    if listed.exists():
      names = [line.split("#", 1)[0].strip() for line in listed.read_text().lstrip("\ufeff").splitlines()]
      test = sorted({n for n in names if n})
      unknown = [n for n in test if n not in characters]
      if unknown:
        raise bad_input.LayoutError(
            f"anime_pose: {listed} names {unknown}, which are not character folders (with a "
            f"{KEYPOINTS_CSV}) in {root}; characters: {characters}")
      rule = f"characters listed in {TEST_CHARACTERS}"
    else:
      if len(characters) < 2:
        raise bad_input.LayoutError(
            f"anime_pose: found one character ({characters[0]}) in {root}; the train and test splits "
            f"need different characters: add another, or name the test ones in {TEST_CHARACTERS}")
      test = split_builder.holdout(characters, 0.1)
      rule = "holdout: the ~10% of characters with the smallest SHA-256 of their name"
    train = [c for c in characters if c not in test]
    if not train or not test:
      raise bad_input.LayoutError(
          f"anime_pose: {TEST_CHARACTERS} leaves the {'train' if not train else 'test'} split empty "
          f"(characters: {characters}; test: {test})")
    for character in characters:
      annotation_csv.check_annotation_header(root / character / KEYPOINTS_CSV)
    return {"train": train, "test": test}, rule

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = epath.Path(dl_manager.manual_dir)
    # Check the whole layout before generating anything: a wrong one fails at once.
    characters, rule = self._characters(root)
    self.info.metadata["characters"] = characters
    self.info.metadata["split_rule"] = rule
    logging.info("anime_pose: train characters %s, test characters %s (%s)", characters["train"],
                 characters["test"], rule)
    return {split: self._generate_examples(root, split, characters[split]) for split in SPLITS}

  # --------------------------------------------------------------------------
  # Records

  def _parsing_path(self, folder: epath.Path, file_name: str) -> epath.Path:
    stem = deepfashion_names.name_stem(file_name)
    parsing_dir = folder / PARSING_DIRS[self.builder_config.parsing_labels]
    suffixes = (".png",) if self.builder_config.parsing_labels == "lip" else (".npy", ".png")
    return next((parsing_dir / (stem + s) for s in suffixes if (parsing_dir / (stem + s)).exists()),
                parsing_dir / (stem + suffixes[0]))

  def _load(self, person: split_builder.Person):
    """One person -> (record, non-fatal problems); raises BadInput for a bad image or parsing map."""
    config = self.builder_config
    image = image_io.read_image(person.image_path, min_size=MIN_IMAGE_SIZE)
    height, width = image.pixels.shape[:2]
    _, dropped = annotation_csv.drop_outside_joints(person.keypoints, height, width)
    notes = [("keypoint_outside_image", person.annotation_file,
              f"{person.name}: joint {joint} lies outside the {height}x{width} image") for joint in dropped]
    labels = image_io.read_label_map(person.parsing_path, parsing_lib.num_classes(config.parsing_labels),
                                        [(height, width)], config.parsing_labels)
    box = letterbox.Letterbox.fit((height, width), (config.height, config.width))
    record = {
        "image": image_io.encode_png(box.image(image.pixels)),
        "parsing": image_io.encode_png(box.labels(labels)),
        "keypoints": box.keypoints(person.keypoints),
        "name": person.name,
        "identity": person.identity,
    }
    return record, notes

  def _generate_examples(self, root: epath.Path, split: str, characters: list[str]):
    config = self.builder_config
    report = bad_input.BadInputReport(f"anime_pose/{config.name}", split)
    people = []
    for character in characters:
      folder = root / character
      rows = annotation_csv.read_annotation_csv(folder / KEYPOINTS_CSV, report)
      split_builder.count_unannotated(report, folder, rows)
      for file_name, row in rows.items():
        people.append(split_builder.Person(
            name=f"{character}/{file_name}", identity=character, image_path=folder / file_name,
            keypoints=row.keypoints, annotation_file=folder / KEYPOINTS_CSV, line=row.line,
            parsing_path=self._parsing_path(folder, file_name)))
    logging.info("anime_pose/%s %s: %d annotated images of %d characters", config.name, split, len(people),
                 len(characters))
    identities, keypoints = [], []
    for index, record in split_builder.person_records(people, self._load, report):
      identities.append(record["identity"])
      keypoints.append(record["keypoints"])
      yield index, record
    # Runs once the writer has consumed every example, before the metadata is saved.
    pairs = pairs_lib.ordered_pairs_within_identity(
        identities, keypoints, require_torso=config.require_torso, include_self_pairs=config.include_self_pairs)
    report.num_pairs = len(pairs)
    if config.require_torso:
      no_torso = sum(not kp.has_torso(k) for k in keypoints)
      if no_torso:
        logging.info("anime_pose/%s %s: %d stored images lack a shoulder or hip and are in no pair",
                     config.name, split, no_torso)
    split_builder.finish_split(report, self.info.metadata, pairs)
