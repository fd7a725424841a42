"""pytest settings for the builders' DatasetBuilderTestCase tests."""


def pytest_collection_modifyitems(items):
  # tf.test.TestCase defines `test_session`, a deprecated context manager that pytest collects
  # because of its name and that skips itself as "Not a test": it is not one of our tests.
  items[:] = [item for item in items if item.name != "test_session"]
