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


if __name__ == "__main__":
  tfds.testing.test_main()
