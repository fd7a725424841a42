"""jaxpose.pose.resize: scikit-image 0.14's resize and OpenCV's INTER_CUBIC, reimplemented in numpy."""

import numpy as np
import pytest

from jaxpose.pose import resize

# Recorded with opencv-python-headless 5.0.0 (cv2.ipp.setUseIPP(False) / True) on this image.
IMAGE = np.array([[156, 64, 249, 242, 16], [48, 51, 45, 148, 89], [123, 59, 243, 171, 170],
                  [29, 40, 229, 80, 219], [201, 0, 121, 138, 119], [27, 184, 66, 89, 106]], np.uint8)
CV2_FX_0_71875 = [[120, 143, 228, 5], [86, 108, 165, 135], [26, 171, 81, 235], [141, 67, 127, 101]]
CV2_FX_0_71875_IPP = [[120, 143, 228, 5], [86, 108, 165, 135], [26, 172, 81, 235], [141, 67, 127, 101]]
CV2_FX_2_15625 = [
    [179, 145, 76, 80, 182, 255, 255, 255, 144, 27, 0], [144, 120, 69, 71, 143, 215, 250, 228, 141, 42, 5],
    [77, 70, 57, 56, 64, 94, 148, 176, 133, 66, 43], [49, 49, 50, 50, 41, 55, 104, 144, 136, 106, 97],
    [99, 86, 59, 64, 108, 153, 168, 165, 154, 140, 135], [128, 106, 58, 75, 176, 252, 224, 169, 163, 174, 176],
    [66, 58, 34, 76, 194, 255, 200, 122, 146, 204, 223], [26, 26, 16, 63, 171, 231, 157, 81, 126, 208, 235],
    [119, 87, 19, 18, 114, 188, 150, 100, 127, 175, 191], [219, 159, 43, 0, 60, 137, 148, 136, 133, 128, 127],
    [169, 141, 89, 57, 67, 92, 114, 127, 121, 105, 101], [44, 74, 133, 155, 111, 70, 76, 96, 104, 105, 107],
    [0, 45, 157, 203, 130, 56, 57, 83, 95, 103, 107]]
CV2_DSIZE_7x3 = [[98, 65, 69, 128, 195, 137, 33], [68, 37, 114, 255, 159, 145, 218],
                 [133, 106, 81, 83, 111, 116, 102]]
MAP = np.array([[[1.7753894329071045, 0.8868491053581238], [0.9493494629859924, -0.05785496160387993]],
                [[0.6128622889518738, 0.6578901410102844], [-0.3444026708602905, -0.497372031211853]],
                [[-0.11477278172969818, -0.6054520010948181], [-0.5943394303321838, -0.2833753824234009]]],
               np.float32)
CV2_MAP_X8_ROW3_CH0 = [1.9084829092025757, 1.9141929149627686, 1.89946711063385, 1.857093095779419,
                       1.782512903213501, 1.688949465751648, 1.5833649635314941, 1.4705678224563599,
                       1.355366587638855, 1.2425694465637207, 1.136985182762146, 1.0434215068817139,
                       0.9688413143157959, 0.9264673590660095, 0.9117415547370911, 0.9174515604972839]
CV2_MAP_X8_COL5_CH1 = [0.7595536708831787, 0.7613866329193115, 0.7566595673561096, 0.7430574297904968,
                       0.7219224572181702, 0.7109667062759399, 0.7066265940666199, 0.7014675140380859,
                       0.6880549192428589, 0.6589543223381042, 0.6067309975624084, 0.5239505171775818,
                       0.4071739912033081, 0.2771059572696686, 0.14094966650009155, 0.0023752450942993164,
                       -0.13494722545146942, -0.2673476040363312, -0.39115577936172485, -0.5027016401290894,
                       -0.5948140621185303, -0.6475603580474854, -0.6658905744552612, -0.658782958984375]


def test_cv2_cubic_uint8_matches_recorded_opencv_output():
  np.testing.assert_array_equal(resize.cv2_resize_cubic_scale(IMAGE, 0.71875, 0.71875), CV2_FX_0_71875)
  np.testing.assert_array_equal(resize.cv2_resize_cubic_scale(IMAGE, 0.71875, 0.71875, ipp=True),
                                CV2_FX_0_71875_IPP)
  np.testing.assert_array_equal(resize.cv2_resize_cubic_scale(IMAGE, 2.15625, 2.15625), CV2_FX_2_15625)
  np.testing.assert_array_equal(resize.cv2_resize_cubic(IMAGE, (3, 7)), CV2_DSIZE_7x3)
  # Colour images are resized channel by channel; fx=1 is a copy; sizes round half to even.
  colour = np.stack([IMAGE, 255 - IMAGE, IMAGE], axis=-1)
  out = resize.cv2_resize_cubic_scale(colour, 2.15625, 2.15625)
  np.testing.assert_array_equal(out[..., 0], CV2_FX_2_15625)
  np.testing.assert_array_equal(out[..., 2], CV2_FX_2_15625)
  np.testing.assert_array_equal(resize.cv2_resize_cubic_scale(colour, 1.0, 1.0), colour)
  assert resize.cv2_scaled_size(6, 5, 0.5, 0.5) == (3, 2)  # 2.5 -> 2
  assert resize.cv2_scaled_size(6, 7, 0.5, 0.5) == (3, 4)  # 3.5 -> 4


def test_cv2_cubic_float32_matches_recorded_opencv_output():
  out = resize.cv2_resize_cubic_scale(MAP, 8, 8)
  assert out.shape == (24, 16, 2) and out.dtype == np.float32
  np.testing.assert_allclose(out[3, :, 0], CV2_MAP_X8_ROW3_CH0, atol=1e-6)
  np.testing.assert_allclose(out[:, 5, 1], CV2_MAP_X8_COL5_CH1, atol=1e-6)
  with pytest.raises(ValueError, match="uint8 or float32"):
    resize.cv2_resize_cubic(MAP.astype(np.float64), (4, 4))


def _skimage_014_via_warp(image, shape, order):
  """scikit-image 0.14's resize: today's `warp` with the affine transform 0.14 built, mode 'constant'."""
  transform = pytest.importorskip("skimage.transform")
  rows, cols = shape
  factors = np.asarray(image.shape[:2], float) / np.asarray(shape, float)
  matrix = np.array([[factors[1], 0, 0.5 * factors[1] - 0.5], [0, factors[0], 0.5 * factors[0] - 0.5], [0, 0, 1]])
  out = transform.warp(image, transform.AffineTransform(matrix=matrix), output_shape=shape + image.shape[2:],
                       order=order, mode="constant", cval=0, clip=False, preserve_range=True)
  return np.clip(out, image.min(), image.max())


@pytest.mark.parametrize("source,shape,order", [((256, 176, 3), (184, 126), 3), ((64, 44, 3), (138, 94), 3),
                                                 ((32, 22, 19), (256, 176), 1), ((7, 5, 38), (9, 13), 1)])
def test_skimage014_resize_matches_scikit_image_warp(source, shape, order):
  rng = np.random.default_rng(sum(source))
  image = rng.integers(0, 256, source).astype(np.float64) if order == 3 else rng.normal(size=source)
  ours = resize.skimage014_resize(image, shape, order)
  np.testing.assert_allclose(ours, _skimage_014_via_warp(image, shape, order), rtol=0, atol=1e-9)
  assert ours.min() >= image.min() and ours.max() <= image.max()


def test_skimage014_resize_differs_from_todays_resize_and_clips_the_zero_border_blend():
  transform = pytest.importorskip("skimage.transform")
  image = np.random.default_rng(0).integers(0, 256, (64, 44, 3)).astype(np.uint8)
  ours = resize.skimage014_resize(image, (46, 31), 3)
  today = transform.resize(image, (46, 31), order=3, preserve_range=True)  # B-splines, anti-aliased
  assert np.abs(ours - today).max() > 10
  # Mode 'constant' pulls border pixels towards 0; 0.14 then clips to the input range.
  bright = np.full((8, 8), 200.0)
  out = resize.skimage014_resize(bright, (5, 5), 3)
  np.testing.assert_array_equal(out, 200.0)
  out = resize.skimage014_resize(np.full((8, 8), 200.0) + np.eye(8), (13, 13), 1)
  assert out.min() == 200.0
  with pytest.raises(ValueError, match="order must be 1"):
    resize.skimage014_resize(bright, (5, 5), 2)
  with pytest.raises(ValueError, match="at least 1 pixel"):
    resize.skimage014_resize(bright, (0, 5), 3)
