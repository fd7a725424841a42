"""Images and parsing label maps on disk: reading them robustly, encoding them, and folder checks.

Plain numpy and PIL: no TensorFlow. Every read failure is a `bad_input.BadInput`
of a named kind, so a builder can report and skip one bad file.
"""

from __future__ import annotations

import dataclasses
import io
import threading
from typing import Sequence

from etils import epath
import numpy as np
from PIL import Image

from jaxpose.data import bad_input


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclasses.dataclass(frozen=True)
class LoadedImage:
  """A decoded, validated image.

  Attributes:
    pixels: (H, W, 3) uint8 RGB (transparency composited over white).
    data: the file's bytes, unchanged.
    format: PIL's format name ("JPEG", "PNG", ...).
    plain_rgb: True when `data` decodes to exactly `pixels` with no conversion
      (an RGB file), so `data` may be stored as it is.
  """
  pixels: np.ndarray
  data: bytes
  format: str
  plain_rgb: bool


def _to_rgb(image: Image.Image) -> np.ndarray:
  if image.mode == "RGB":
    return np.asarray(image)
  if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
  return np.asarray(image.convert("RGB"))


def _read_bytes(path: epath.Path, missing_kind: str, unreadable_kind: str) -> bytes:
  try:
    return path.read_bytes()
  except FileNotFoundError as e:
    raise bad_input.BadInput(missing_kind, "file not found") from e
  except OSError as e:
    raise bad_input.BadInput(unreadable_kind, f"cannot read the file ({e.__class__.__name__}: {e})") from e


def read_image(path: bad_input.PathLike, expected_size: Sequence[int] | None = None, *,
               min_size: int = 1) -> LoadedImage:
  """Reads and fully decodes an image file, checking what can go wrong with real copies.

  Args:
    path: the image file (any format PIL reads).
    expected_size: (height, width) it must have, or None for any size.
    min_size: smallest height and width accepted when `expected_size` is None.

  Raises:
    bad_input.BadInput: "image_missing", "image_unreadable" (not an image, unknown format),
      "image_truncated" (empty or cut-off file) or "image_wrong_size".
  """
  path = epath.Path(path)
  data = _read_bytes(path, "image_missing", "image_unreadable")
  if not data:
    raise bad_input.BadInput("image_truncated", "empty file (0 bytes)")
  try:
    with Image.open(io.BytesIO(data)) as image:
      width, height = image.size
      if expected_size is not None and (height, width) != tuple(expected_size):
        raise bad_input.BadInput("image_wrong_size", f"image is {height}x{width} (HxW), expected "
                       f"{expected_size[0]}x{expected_size[1]}")
      if expected_size is None and min(height, width) < min_size:
        raise bad_input.BadInput("image_wrong_size", f"image is {height}x{width} (HxW), smaller than {min_size} pixels")
      # Decoding everything is what finds a file cut off mid-scan (a header-only check would not).
      image.load()
      return LoadedImage(pixels=_to_rgb(image), data=data, format=image.format or "",
                         plain_rgb=image.mode == "RGB")
  except bad_input.BadInput:
    raise
  except Image.UnidentifiedImageError as e:
    raise bad_input.BadInput("image_unreadable", f"not an image file PIL can identify ({len(data):,} bytes)") from e
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    if "truncated" in str(e).lower() or "premature" in str(e).lower():
      raise bad_input.BadInput("image_truncated", f"truncated image file ({e})") from e
    raise bad_input.BadInput("image_unreadable", f"cannot decode ({e.__class__.__name__}: {e})") from e


# np.load parses the .npy header with ast.literal_eval, which CPython 3.11 does
# not run safely from several threads at once ("SystemError: AST constructor
# recursion depth mismatch", about 1 file in 3,000 here): one header at a time.


_NPY_HEADER_LOCK = threading.Lock()


def read_label_map(path: bad_input.PathLike, num_classes: int, shapes: Sequence[Sequence[int]],
                   label_set: str = "") -> np.ndarray:
  """Reads a parsing map: a .npy integer array, or a single-channel (L or P mode) PNG.

  Args:
    path: .npy or .png file.
    num_classes: labels must lie in [0, num_classes).
    shapes: accepted (height, width) shapes (a trailing channel of 1 is dropped).
    label_set: name used in messages ("adgan8", "lip").

  Returns:
    (H, W) uint8 labels.

  Raises:
    bad_input.BadInput: "parsing_missing", "parsing_unreadable", "parsing_wrong_shape" or
      "parsing_bad_labels".
  """
  path = epath.Path(path)
  data = _read_bytes(path, "parsing_missing", "parsing_unreadable")
  if path.suffix.lower() == ".npy":
    try:
      with _NPY_HEADER_LOCK:
        labels = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, EOFError, OSError) as e:
      raise bad_input.BadInput("parsing_unreadable", f"not a readable .npy array ({e.__class__.__name__}: {e})") from e
  else:
    try:
      with Image.open(io.BytesIO(data)) as image:
        image.load()
        if image.mode not in ("L", "P", "I", "I;16"):
          raise bad_input.BadInput("parsing_unreadable", f"expected a single-channel label PNG (mode L or P), found "
                         f"mode {image.mode} (a colour visualisation rather than labels?)")
        labels = np.asarray(image)
    except bad_input.BadInput:
      raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
      raise bad_input.BadInput("parsing_unreadable", f"cannot decode ({e.__class__.__name__}: {e})") from e
  labels = np.asarray(labels)
  if labels.ndim == 3 and labels.shape[-1] == 1:
    labels = labels[..., 0]
  accepted = [tuple(int(v) for v in s) for s in shapes]
  if labels.ndim != 2 or labels.shape not in accepted:
    expected = " or ".join(f"{h}x{w}" for h, w in accepted)
    raise bad_input.BadInput("parsing_wrong_shape", f"parsing map has shape {labels.shape}, expected {expected}")
  if labels.dtype.kind == "f":
    if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
      raise bad_input.BadInput("parsing_bad_labels", "parsing map holds non-integer values")
  elif labels.dtype.kind not in "iub":
    raise bad_input.BadInput("parsing_unreadable", f"parsing map has dtype {labels.dtype}, expected integers")
  low, high = (labels.min(), labels.max()) if labels.size else (0, 0)
  if low < 0 or high >= num_classes:
    raise bad_input.BadInput("parsing_bad_labels", f"labels span [{low}, {high}], expected 0..{num_classes - 1} "
                   f"({label_set or 'label set'} has {num_classes} classes)")
  return labels.astype(np.uint8)


def encode_png(array: np.ndarray) -> bytes:
  """(H, W) or (H, W, 1) uint8 labels, or (H, W, 3) uint8 RGB -> PNG bytes."""
  array = np.asarray(array, np.uint8)
  if array.ndim == 3 and array.shape[-1] == 1:
    array = array[..., 0]
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format="PNG", compress_level=6)
  return buffer.getvalue()


def encode_jpeg(pixels: np.ndarray, quality: int = 95) -> bytes:
  """(H, W, 3) uint8 RGB -> JPEG bytes (4:4:4 at quality 95 unless told)."""
  buffer = io.BytesIO()
  Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="JPEG", quality=quality, subsampling=0)
  return buffer.getvalue()


def image_files(folder: bad_input.PathLike) -> list[str]:
  """Sorted names of the image files directly in `folder` ([] if it does not exist)."""
  folder = epath.Path(folder)
  if not folder.is_dir():
    return []
  return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())


def describe_dir(folder: bad_input.PathLike, limit: int = 12) -> str:
  """What a folder holds, for layout errors: 'a/, b.csv, ... (40 entries)'."""
  folder = epath.Path(folder)
  if not folder.exists():
    return "the directory does not exist"
  if not folder.is_dir():
    return "it is a file, not a directory"
  entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
  if not entries:
    return "nothing (empty directory)"
  shown = ", ".join(entries[:limit])
  return shown + (f", ... ({len(entries)} entries)" if len(entries) > limit else "")


def first_existing(root: bad_input.PathLike, candidates: Sequence[str]) -> epath.Path | None:
  """The first of root/candidate that exists, or None."""
  root = epath.Path(root)
  for candidate in candidates:
    if (root / candidate).exists():
      return root / candidate
  return None


def check_image_size_sample(folder: bad_input.PathLike, names: Sequence[str], expected_size: Sequence[int],
                            hint: str = "", sample: int = 5) -> None:
  """Raises bad_input.LayoutError when none of the first `sample` readable images has `expected_size`.

  One wrong image is bad input; a folder of wrong images is the wrong folder
  (the uncropped 256x256 files given for the 256x176 layout, say), and would
  otherwise end in an empty dataset after a full pass.
  """
  folder = epath.Path(folder)
  sizes = {}
  for name in names:
    try:
      with Image.open(io.BytesIO((folder / name).read_bytes())) as image:
        sizes[name] = image.size[::-1]
    except Exception:  # noqa: BLE001  (unreadable files are reported later, one by one)
      continue
    if len(sizes) >= sample:
      break
  if sizes and all(tuple(s) != tuple(expected_size) for s in sizes.values()):
    found = ", ".join(f"{n} is {h}x{w}" for n, (h, w) in list(sizes.items())[:3])
    raise bad_input.LayoutError(f"expected {expected_size[0]}x{expected_size[1]} (HxW) images in {folder}; found: "
                      f"{found}{'. ' + hint if hint else ''}")
