"""jaxpose: pose-guided person image synthesis in JAX/Flax.

  import jaxpose
  pipe = jaxpose.load("synthetic-adgan")   # see jaxpose.inference
  out = pipe.transfer(image, parsing, target_keypoints)
"""

__version__ = "0.1.0"


def load(source, *, config=None):
  """A ready-to-call `jaxpose.inference.Pipeline` (shipped weights, a run, a convert output, an official file)."""
  from jaxpose import inference  # pylint: disable=g-import-not-at-top (keeps `import jaxpose` light)
  return inference.load(source, config=config)
