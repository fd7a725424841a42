"""synthetic_people dataset."""

import numpy as np
import tensorflow_datasets as tfds

from jaxpose.data import keypoints as kp
from jaxpose.data import parsing
from tfds_builders.synthetic_people import synthetic_people_dataset_builder


class SyntheticPeopleTest(tfds.testing.DatasetBuilderTestCase):
  """Tests for synthetic_people dataset."""
  DATASET_CLASS = synthetic_people_dataset_builder.Builder
  BUILDER_CONFIG_NAMES_TO_TEST = ["tiny"]
  SPLITS = {"train": 24, "test": 9}  # tiny: 8 and 3 identities, 3 poses each
  SKIP_CHECKSUMS = True  # nothing is downloaded

  def test_examples_and_pairs(self):
    builder = self.DATASET_CLASS(config="tiny", data_dir=self.tmp_dir)
    builder.download_and_prepare(file_format="array_record")
    train = builder.as_data_source("train")
    example = train[0]
    self.assertEqual(example["image"].shape, (32, 24, 3))
    self.assertEqual(example["parsing"].shape, (32, 24, 1))
    self.assertLess(int(example["parsing"].max()), len(parsing.LIP_LABELS))
    kp.validate(example["keypoints"], 32, 24)
    identities = [train[i]["identity"] for i in range(len(train))]
    pairs = np.asarray(builder.info.metadata["pairs"]["train"])
    self.assertGreater(len(pairs), 0)
    for source, target in pairs:
      self.assertNotEqual(source, target)
      self.assertEqual(identities[source], identities[target])
    test = builder.as_data_source("test")
    test_identities = {test[i]["identity"] for i in range(len(test))}
    self.assertFalse(test_identities & set(identities))

  def test_identity_ranges(self):
    """A config can take its train people elsewhere and keep another config's test people."""
    lib = synthetic_people_dataset_builder
    config = lib.SyntheticPeopleConfig(name="shifted", height=32, width=24, train_identities=2, test_identities=1,
                                       poses_per_identity=2, first_train_identity=20, first_test_identity=8)
    builder = self.DATASET_CLASS(config=config, data_dir=self.tmp_dir)
    builder.download_and_prepare(file_format="array_record")
    self.assertEqual({e["identity"] for e in builder.as_data_source("train")}, {b"id00020", b"id00021"})
    shifted_test = builder.as_data_source("test")
    tiny = self.DATASET_CLASS(config="tiny", data_dir=self.tmp_dir)
    tiny.download_and_prepare(file_format="array_record")
    tiny_test = tiny.as_data_source("test")  # tiny's test people are identities 8-10, 3 poses each
    self.assertEqual({e["identity"] for e in shifted_test}, {b"id00008"})
    for i in range(2):  # the same person in the same pose: the same picture
      np.testing.assert_array_equal(shifted_test[i]["image"], tiny_test[i]["image"])
    with self.assertRaisesRegex(ValueError, "overlap"):
      lib.SyntheticPeopleConfig(name="bad", train_identities=10, first_test_identity=5)
    shipped = {c.name: c for c in lib.Builder.BUILDER_CONFIGS}
    many, base = shipped["64x44_5000people"], shipped["64x44"]
    self.assertEqual((many.first_test_identity, many.test_identities, many.poses_per_identity),
                     (base.train_identities, base.test_identities, base.poses_per_identity))


if __name__ == "__main__":
  tfds.testing.test_main()
