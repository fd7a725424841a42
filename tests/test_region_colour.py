"""Region colour metrics: identity kept (vs the average person) and component swaps (moved, and leaked)."""

import numpy as np
import pytest

from jaxpose.data import parsing as parsing_lib
from jaxpose.metrics import region_colour


def _people(colours_top, colours_bottom, size=8):
  """Images whose top half (component 1) and bottom half (component 2) are flat colours."""
  images = np.zeros((len(colours_top), size, size, 3), np.uint8)
  for i, (top, bottom) in enumerate(zip(colours_top, colours_bottom)):
    images[i, : size // 2] = top
    images[i, size // 2:] = bottom
  parsing = np.zeros((len(colours_top), size, size, 3), np.float32)
  parsing[:, : size // 2, :, 1] = 1
  parsing[:, size // 2:, :, 2] = 1
  return images, parsing


GROUPS = [("top", [1]), ("bottom", [2])]


def test_identity_colour_error_is_0_for_exact_and_1_for_the_average_person():
  tops = [(200, 0, 0), (0, 200, 0), (0, 0, 200), (100, 100, 100)]
  bottoms = [(10, 10, 10), (250, 250, 250), (10, 10, 10), (250, 250, 250)]
  target, parsing = _people(tops, bottoms)
  exact = region_colour.identity_colour_error(target, target, parsing, GROUPS)
  assert exact["top"]["ratio"] == 0 and exact["bottom"]["ratio"] == 0 and exact["top"]["rows"] == 4
  mean_top = np.mean(tops, 0).round()
  average, _ = _people([mean_top] * 4, [np.mean(bottoms, 0).round()] * 4)
  result = region_colour.identity_colour_error(average, target, parsing, GROUPS)
  assert result["top"]["ratio"] == pytest.approx(1.0, abs=0.01)
  assert result["bottom"]["ratio"] == pytest.approx(1.0, abs=0.01)
  # Half way from the average to each person's own colour: half the error.
  half, _ = _people([(np.asarray(t) + mean_top) / 2 for t in tops], bottoms)
  assert region_colour.identity_colour_error(half, target, parsing, GROUPS)["top"]["ratio"] == \
      pytest.approx(0.5, abs=0.01)
  # Batches accumulate to the same numbers as one call.
  accumulator = region_colour.IdentityColourAccumulator(GROUPS)
  accumulator.update(half[:1], target[:1], parsing[:1])
  accumulator.update(half[1:], target[1:], parsing[1:])
  assert accumulator.result() == region_colour.identity_colour_error(half, target, parsing, GROUPS)


def test_identity_colour_error_leaves_out_small_regions_and_rejects_bad_shapes():
  target, parsing = _people([(1, 2, 3)], [(4, 5, 6)])
  result = region_colour.identity_colour_error(target, target, parsing, [("none", [0])])
  assert result["none"]["rows"] == 0 and np.isnan(result["none"]["ratio"])
  with pytest.raises(ValueError, match="B, H, W, 3"):
    region_colour.identity_colour_error(target[0], target, parsing, GROUPS)
  with pytest.raises(ValueError, match="outside"):
    region_colour.identity_colour_error(target, target, parsing, [("x", [3])])


def test_identity_groups_by_component_name():
  assert region_colour.identity_groups(parsing_lib.ADGAN8_LABELS) == [
      ("upper", [5]), ("lower", [1, 3]), ("hair", [2])]
  assert region_colour.identity_groups(("background", "hair")) == [("hair", [1])]


def test_swap_colour_shift_measures_the_swapped_region_and_what_leaked_into_the_others():
  tops = [(200, 0, 0), (0, 0, 200)]
  bottoms = [(0, 0, 0), (200, 200, 200)]
  own, parsing = _people(tops, bottoms)
  donors = {"top": np.array([1, 0]), "bottom": np.array([1, 0])}
  # The top swap moves the top all the way to the donor's, and the bottom 25 % of the way.
  top_swapped, _ = _people(tops[::-1], [(50, 50, 50), (150, 150, 150)])
  bottom_unchanged = own
  result = region_colour.swap_colour_shift(own, {"top": top_swapped, "bottom": bottom_unchanged}, donors,
                                           own, parsing, parsing, GROUPS)
  assert result["top"]["moved"] == pytest.approx(1.0) and result["top"]["closer"] == 1.0
  assert result["top"]["others"] == {"bottom": pytest.approx(0.25)}
  assert result["top"]["others_max"] == pytest.approx(0.25)
  assert result["bottom"]["moved"] == pytest.approx(0.0) and result["bottom"]["closer"] == 0.0
  assert result["bottom"]["others"]["top"] == pytest.approx(0.0)
  with pytest.raises(ValueError, match="no swapped images"):
    region_colour.swap_colour_shift(own, {"top": top_swapped}, donors, own, parsing, parsing, GROUPS)
