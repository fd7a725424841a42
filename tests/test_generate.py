"""Generation: style-code mixing, component groups, and --mode=generate's outputs."""

import os

import jax.numpy as jnp
import numpy as np
import pytest

from configs import synthetic_adgan
from jaxpose import generate
from jaxpose import train
from jaxpose.models import adgan


def test_mix_components_replaces_exactly_the_chosen_slots():
  base = jnp.arange(16.0).reshape(1, 16)
  donor = -jnp.ones((1, 16))
  mixed = np.asarray(adgan.mix_components(base, donor, [1, 3], num_components=4))
  expected = np.arange(16.0)
  expected[4:8] = -1
  expected[12:16] = -1
  np.testing.assert_array_equal(mixed[0], expected)
  with pytest.raises(ValueError, match="outside"):
    adgan.mix_components(base, donor, [4], num_components=4)
  with pytest.raises(ValueError, match="divisible"):
    adgan.mix_components(base, donor, [0], num_components=3)


def test_component_groups():
  assert generate.component_groups("upper_clothes; pants,skirt ;hair") == [
      ("upper_clothes", [5]), ("pants+skirt", [1, 3]), ("hair", [2])]
  with pytest.raises(ValueError, match="shirt"):
    generate.component_groups("shirt")
