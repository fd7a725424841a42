"""The original-file modules of jaxpose.data (annotation_csv, bad_input, deepfashion_names, image_io,
letterbox, split_builder): the official CSV formats, the DeepFashion path rule, images,
parsing maps, the letterbox transform and the bad-input report (no TensorFlow involved)."""

import io
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
from jaxpose.data import deepfashion_names
from jaxpose.data import image_io
from jaxpose.data import letterbox
from jaxpose.data import split_builder
from jaxpose.data import keypoints as kp

Y = list(range(10, 28))
X = list(range(30, 48))


def _report() -> bad_input.BadInputReport:
  return bad_input.BadInputReport("test_dataset", "train")


def _row(name: str, ys=Y, xs=X) -> str:
  return f"{name}:{ys}:{xs}"


def test_original_file_modules_import_no_tensorflow():
  modules = "annotation_csv, bad_input, deepfashion_names, image_io, letterbox, split_builder"
  code = f"import sys; from jaxpose.data import {modules}; print('tensorflow' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_parse_coordinates_accepts_the_official_lists_and_rejects_the_rest():
  assert annotation_csv.parse_coordinates("[12, -1, 40]") == [12, -1, 40]
  assert annotation_csv.parse_coordinates(' "[1,2]" ') == [1, 2]
  # What the official resize script writes under numpy 2, and float-formatted integers.
  assert annotation_csv.parse_coordinates("[np.int64(12), np.int64(-1)]") == [12, -1]
  assert annotation_csv.parse_coordinates("[12.0, 3.]") == [12, 3]
  for bad, match in [("12, 13", "JSON list"), ("[12, nan]", "'nan'"), ("[12.5]", "'12.5'"), ("[a]", "'a'")]:
    with pytest.raises(bad_input.BadInput, match=match) as e:
      annotation_csv.parse_coordinates(bad)
    assert e.value.kind == "annotation_malformed_row"


def test_read_annotation_csv_keeps_good_rows_and_reports_each_bad_one(tmp_path):
  path = tmp_path / "fashion-resize-annotation-train.csv"
  lines = [
      "\ufeffname:keypoints_y:keypoints_x",  # a byte-order mark from a spreadsheet program
      _row("good1.jpg"),
      "",
      _row("commas.jpg").replace(":", ",", 2),  # wrong separator
      _row("short.jpg", Y[:17], X[:17]),  # 17 values
      _row("text.jpg").replace("[10,", "[ten,"),  # non-numeric
      _row("good2.jpg", [-1] * 18, [-1] * 18) + "\r",  # all missing, Windows line end
      _row("good1.jpg", [0] * 18, [0] * 18),  # repeated name: the first row wins
      _row("../escape.jpg"),
  ]
  path.write_text("\n".join(lines) + "\n")
  report = _report()
  rows = annotation_csv.read_annotation_csv(path, report)
  assert list(rows) == ["good1.jpg", "good2.jpg"]
  np.testing.assert_array_equal(rows["good1.jpg"].keypoints, np.stack([Y, X], -1))
  assert rows["good1.jpg"].keypoints.dtype == np.int32 and rows["good1.jpg"].line == 2
  assert (rows["good2.jpg"].keypoints == -1).all()
  assert report.counts() == {"annotation_duplicate_name": 1, "annotation_malformed_row": 4}
  messages = [m for _, m in report.problems]
  assert messages[0].startswith(f"{path}:4: expected 3 ':'-separated fields") and "image skipped" in messages[0]
  assert f"{path}:5: row of short.jpg: keypoints_y has 17 values, expected 18" in messages[1]
  assert "'ten'" in messages[2] and f"{path}:8: good1.jpg appears again (first at line 2)" in messages[3]
  assert set(report.skipped_images) == {"commas.jpg", "short.jpg", "text.jpg"}


def test_read_annotation_csv_takes_any_column_order_and_fails_at_once_on_a_foreign_header(tmp_path):
  path = tmp_path / "a.csv"
  path.write_text(f"keypoints_x:name:keypoints_y\n{X}:p.jpg:{Y}\n")
  rows = annotation_csv.read_annotation_csv(path, _report())
  np.testing.assert_array_equal(rows["p.jpg"].keypoints, np.stack([Y, X], -1))
  path.write_text(f"name,keypoints_y,keypoints_x\n{_row('p.jpg')}\n")
  with pytest.raises(bad_input.LayoutError, match="expected the header 'name:keypoints_y:keypoints_x'"):
    annotation_csv.read_annotation_csv(path, _report())
  with pytest.raises(bad_input.LayoutError, match="does not exist"):
    annotation_csv.check_annotation_header(tmp_path / "missing.csv")
  (tmp_path / "empty.csv").write_text("\n")
  with pytest.raises(bad_input.LayoutError, match="is empty"):
    annotation_csv.check_annotation_header(tmp_path / "empty.csv")


def test_pairs_csv_and_resolving_pairs_against_what_was_stored(tmp_path):
  path = tmp_path / "pairs.csv"
  # pandas' index column is tolerated; a row with one field is reported.
  path.write_text(",from,to\n0,a.jpg,b.jpg\n1,b.jpg,a.jpg\n2,a.jpg\n3,a.jpg,bad.jpg\n4,c.jpg,a.jpg\n5,b.jpg,b.jpg\n")
  report = _report()
  pairs = annotation_csv.read_pairs_csv(path, report)
  assert [(p.source, p.target, p.line) for p in pairs][:2] == [("a.jpg", "b.jpg", 2), ("b.jpg", "a.jpg", 3)]
  assert report.counts() == {"pairs_malformed_row": 1}
  report.stored_images = ["b.jpg", "a.jpg"]
  report.skipped_images = {"bad.jpg": "image_truncated"}
  indices = annotation_csv.resolve_pairs(pairs, report, path, "annotation.csv")
  assert indices.dtype == np.int64 and indices.tolist() == [[1, 0], [0, 1], [0, 0]]
  assert report.num_pairs == 3
  assert report.counts() == {"pair_image_skipped": 1, "pair_unknown_image": 1, "pairs_malformed_row": 1}
  assert any("image bad.jpg was skipped (image_truncated)" in m for _, m in report.problems)
  assert any(f"{path}:6: pair c.jpg -> a.jpg: image c.jpg is in no row of annotation.csv" in m
             for _, m in report.problems)
  path.write_text("source;target\na;b\n")
  with pytest.raises(bad_input.LayoutError, match="expected the header 'from,to'"):
    annotation_csv.read_pairs_csv(path, _report())


def test_joints_outside_the_image_are_dropped_and_the_crop_keeps_missing_joints():
  points = np.full((18, 2), -1, np.int32)
  points[0] = (0, 0)
  points[1] = (255, 175)
  points[2] = (256, 10)  # below
  points[3] = (10, -5)  # left
  points[4] = (100, -1)  # only x missing
  out, dropped = annotation_csv.drop_outside_joints(points, 256, 176)
  assert out[:2].tolist() == [[0, 0], [255, 175]] and (out[2:] == -1).all()
  assert dropped == ["right_shoulder at (y=256, x=10)", "right_elbow at (y=10, x=-5)", "right_wrist at (y=100, x=-1)"]
  uncropped = np.full((18, 2), -1, np.int32)
  uncropped[0] = (50, 40)
  uncropped[1] = (60, 215)
  uncropped[2] = (70, 39)
  uncropped[3] = (80, 216)
  cropped, dropped = annotation_csv.drop_outside_joints(annotation_csv.crop_keypoints_x(uncropped, 40), 256, 176)
  assert cropped[:2].tolist() == [[50, 0], [60, 175]] and (cropped[2:] == -1).all() and len(dropped) == 2


def test_deepfashion_parsing_path_follows_the_official_layout():
  assert (deepfashion_names.deepfashion_parsing_path("fashionWOMENBlouses_Shirtsid0000635004_1front.jpg")
          == "semantic_merge3/WOMEN/Blouses_Shirts/id_00006350/04_1_front.npy")
  assert (deepfashion_names.deepfashion_parsing_path("fashionMENDenimid0000008001_1front.jpg")
          == "semantic_merge3/MEN/Denim/id_00000080/01_1_front.npy")
  # Def-GAN's names: "fasion" and no underscore in the category; the table restores it.
  assert (deepfashion_names.deepfashion_parsing_path("fasionMENSweatshirtsHoodiesid0000107902_7additional.jpg")
          == "semantic_merge3/MEN/Sweatshirts_Hoodies/id_00001079/02_7_additional.npy")
  for name in ("img_0001.jpg", "fashionKIDSDenimid0000008001_1front.jpg", "fashionMENDenimid000080_1front.jpg"):
    with pytest.raises(bad_input.BadInput, match="cannot locate the parsing map") as e:
      deepfashion_names.deepfashion_parsing_path(name)
    assert e.value.kind == "parsing_path_unknown"
  assert sum(len(c) for c in deepfashion_names.INSHOP_CATEGORIES.values()) == 23


def _jpeg(pixels, quality=90) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
  return buffer.getvalue()


def test_read_image_reports_missing_unreadable_truncated_and_wrong_sized_files(tmp_path):
  yy, xx = np.mgrid[0:32, 0:24]
  pixels = np.stack([yy * 7, xx * 9, yy + xx], -1).astype(np.uint8)  # smooth: JPEG keeps it closely
  good = tmp_path / "good.jpg"
  good.write_bytes(_jpeg(pixels))
  image = image_io.read_image(good, (32, 24))
  assert image.format == "JPEG" and image.plain_rgb and image.data == good.read_bytes()
  assert image.pixels.shape == (32, 24, 3) and np.abs(image.pixels.astype(int) - pixels).mean() < 3
  cases = {
      "missing.jpg": (None, "image_missing"),
      "empty.jpg": (b"", "image_truncated"),
      "html.jpg": (b"<html>Forbidden</html>", "image_unreadable"),
      "cut.jpg": (good.read_bytes()[:len(good.read_bytes()) // 2], "image_truncated"),
      "small.jpg": (_jpeg(pixels[:16, :12]), "image_wrong_size"),
  }
  for name, (data, kind) in cases.items():
    if data is not None:
      (tmp_path / name).write_bytes(data)
    with pytest.raises(bad_input.BadInput) as e:
      image_io.read_image(tmp_path / name, (32, 24))
    assert e.value.kind == kind, (name, e.value.reason)
  with pytest.raises(bad_input.BadInput, match=r"16x12 \(HxW\), expected 32x24"):
    image_io.read_image(tmp_path / "small.jpg", (32, 24))
  with pytest.raises(bad_input.BadInput, match="smaller than 20 pixels"):
    image_io.read_image(tmp_path / "small.jpg", min_size=20)
  (tmp_path / "folder.jpg").mkdir()
  with pytest.raises(bad_input.BadInput) as e:
    image_io.read_image(tmp_path / "folder.jpg")
  assert e.value.kind == "image_unreadable"


def test_read_image_converts_transparent_and_grey_images_to_rgb(tmp_path):
  rgba = np.zeros((20, 20, 4), np.uint8)
  rgba[5:15, 5:15] = (200, 10, 10, 255)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
  image = image_io.read_image(tmp_path / "a.png")
  assert not image.plain_rgb and image.format == "PNG"
  assert image.pixels[0, 0].tolist() == [255, 255, 255] and image.pixels[10, 10].tolist() == [200, 10, 10]
  Image.fromarray(np.full((20, 20), 77, np.uint8), "L").save(tmp_path / "g.jpg", format="JPEG")
  grey = image_io.read_image(tmp_path / "g.jpg", (20, 20))
  assert grey.pixels.shape == (20, 20, 3) and not grey.plain_rgb


def test_read_label_map_checks_format_shape_and_label_range(tmp_path):
  labels = np.arange(12, dtype=np.int64).reshape(3, 4) % 8
  np.save(tmp_path / "m.npy", labels)
  out = image_io.read_label_map(tmp_path / "m.npy", 8, [(3, 4)])
  assert out.dtype == np.uint8 and out.tolist() == labels.tolist()
  np.save(tmp_path / "channel.npy", labels[..., None].astype(np.float64))
  assert image_io.read_label_map(tmp_path / "channel.npy", 8, [(3, 4)]).tolist() == labels.tolist()
  Image.fromarray(labels.astype(np.uint8), "L").save(tmp_path / "l.png")
  palette = Image.fromarray(labels.astype(np.uint8), "P")
  palette.putpalette([v for i in range(256) for v in (i, 0, 0)])
  palette.save(tmp_path / "p.png")
  for name in ("l.png", "p.png"):
    assert image_io.read_label_map(tmp_path / name, 8, [(5, 5), (3, 4)]).tolist() == labels.tolist()
  Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
  np.save(tmp_path / "frac.npy", labels + 0.5)
  np.save(tmp_path / "big.npy", labels + 5)
  (tmp_path / "junk.npy").write_bytes(b"not numpy")
  cases = [("missing.npy", "parsing_missing", "file not found"),
           ("rgb.png", "parsing_unreadable", "mode RGB"),
           ("junk.npy", "parsing_unreadable", "not a readable .npy"),
           ("frac.npy", "parsing_bad_labels", "non-integer"),
           ("big.npy", "parsing_bad_labels", r"labels span \[5, 12\], expected 0..7 \(adgan8 has 8")]
  for name, kind, match in cases:
    with pytest.raises(bad_input.BadInput, match=match) as e:
      image_io.read_label_map(tmp_path / name, 8, [(3, 4)], "adgan8")
    assert e.value.kind == kind
  with pytest.raises(bad_input.BadInput, match=r"shape \(3, 4\), expected 256x176 or 256x256") as e:
    image_io.read_label_map(tmp_path / "m.npy", 8, [(256, 176), (256, 256)])
  assert e.value.kind == "parsing_wrong_shape"


def test_png_encoding_round_trips():
  labels = np.random.default_rng(1).integers(0, 20, (9, 7)).astype(np.uint8)
  assert np.asarray(Image.open(io.BytesIO(image_io.encode_png(labels[..., None])))).tolist() == labels.tolist()
  pixels = np.random.default_rng(2).integers(0, 255, (9, 7, 3)).astype(np.uint8)
  np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(image_io.encode_png(pixels)))), pixels)


@pytest.mark.parametrize("source,target,resized,top,left", [
    ((240, 180), (256, 176), (235, 176), 10, 0),  # portrait, width-bound
    ((100, 200), (256, 176), (88, 176), 84, 0),  # landscape
    ((512, 176), (256, 176), (256, 88), 0, 44),  # tall: height-bound
    ((256, 176), (256, 176), (256, 176), 0, 0),  # same size: untouched
    ((64, 44), (128, 88), (128, 88), 0, 0),  # upscaling
])
def test_letterbox_geometry(source, target, resized, top, left):
  box = letterbox.Letterbox.fit(source, target)
  assert (box.resized_size, box.top, box.left) == (resized, top, left)


def test_letterbox_moves_pixels_labels_and_keypoints_together():
  h, w = 150, 100
  box = letterbox.Letterbox.fit((h, w), (128, 88))  # -> 128x85, 1 column of padding left
  assert box.resized_size == (128, 85) and box.left == 1
  # A blob of label 5 on white, with a keypoint at its centre and one outside the image.
  pixels = np.full((h, w, 3), 255, np.uint8)
  labels = np.zeros((h, w), np.uint8)
  pixels[60:90, 40:70] = (0, 0, 200)
  labels[60:90, 40:70] = 5
  points = np.full((18, 2), -1, np.int32)
  points[0] = (75, 55)
  points[1] = (149, 99)  # last pixel
  points[2] = (150, 10)  # outside
  image, parsing, moved = box.image(pixels), box.labels(labels), box.keypoints(points)
  assert image.shape == (128, 88, 3) and parsing.shape == (128, 88) and moved.dtype == np.int32
  y, x = moved[0]
  assert parsing[y, x] == 5 and image[y, x].tolist() == [0, 0, 200]
  assert moved[1].tolist() == [127, 85] and moved[2].tolist() == [-1, -1] and (moved[3:] == -1).all()
  # Padding: white (the border median) in the image, background in the parsing map.
  assert image[:, 0].tolist() == [[255, 255, 255]] * 128 and (parsing[:, 0] == 0).all()
  assert (parsing[:, 86:] == 0).all()
  assert box.image(pixels, pad_color=(1, 2, 3))[5, 0].tolist() == [1, 2, 3]
  # Same size: an exact copy.
  same = letterbox.Letterbox.fit((h, w), (h, w))
  np.testing.assert_array_equal(same.image(pixels), pixels)
  np.testing.assert_array_equal(same.labels(labels), labels)
  np.testing.assert_array_equal(same.keypoints(points)[:2], points[:2])


def test_letterbox_keypoints_always_land_inside_for_random_sizes():
  rng = np.random.default_rng(3)
  for _ in range(200):
    h, w = (int(v) for v in rng.integers(16, 700, 2))
    target = [(256, 176), (128, 88)][int(rng.integers(2))]
    box = letterbox.Letterbox.fit((h, w), target)
    points = np.stack([rng.integers(0, h, 18), rng.integers(0, w, 18)], -1)
    points[:2] = [(0, 0), (h - 1, w - 1)]
    moved = box.keypoints(points)
    kp.validate(moved, *target)
    assert kp.is_present(moved).all()
    nh, nw = box.resized_size
    assert (moved[:, 0] >= box.top).all() and (moved[:, 0] < box.top + nh).all()
    assert (moved[:, 1] >= box.left).all() and (moved[:, 1] < box.left + nw).all()


def test_holdout_is_deterministic_and_never_empties_a_split():
  names = [f"character{i:02d}" for i in range(25)]
  held = split_builder.holdout(names, 0.1)
  assert len(held) == 2 and held == split_builder.holdout(list(reversed(names)), 0.1)
  assert split_builder.holdout(["a", "b"], 0.1) in (["a"], ["b"])
  assert split_builder.holdout(["only"]) == []
  assert len(split_builder.holdout(["a", "b", "c"], 0.9)) == 2


def test_report_counts_summarises_and_caps_the_stored_list():
  report = bad_input.BadInputReport("ds/cfg", "train", max_listed=2)
  report.skip_image("a.jpg", "image_truncated", "/d/a.jpg", "truncated image file")
  report.skip_image("b.jpg", "image_missing", "/d/b.jpg", "file not found")
  report.add("keypoint_outside_image", "/d/ann.csv", "c.jpg: joint nose at (y=1, x=500)", line=3)
  report.add("pair_image_skipped", "/d/pairs.csv", "pair a -> c", line=2)
  report.stored_images = ["c.jpg"]
  report.num_pairs = 4
  meta = report.to_metadata()
  assert (meta["images"], meta["pairs"], meta["joints"], meta["rows"]) == (2, 1, 1, 0)
  assert meta["problems"] == ["/d/a.jpg: truncated image file; image skipped (and every pair naming it)",
                              "/d/b.jpg: file not found; image skipped (and every pair naming it)"]
  assert meta["problems_not_listed"] == 2
  summary = report.summary()
  assert summary.startswith("ds/cfg train: stored 1 images and 4 pairs; 2 images skipped")
  assert "1 joints marked missing (keypoint_outside_image 1)" in summary
  with pytest.raises(ValueError, match="unknown bad-input kind"):
    report.add("oops", "f", "r")
  metadata = {}
  split_builder.finish_split(report, metadata, np.array([[0, 0]]))
  assert metadata["pairs"]["train"] == [[0, 0]] and metadata["skipped"]["train"]["images"] == 2
  with pytest.raises(RuntimeError, match="not one valid image"):
    split_builder.finish_split(_report(), {}, np.zeros((0, 2)))


def test_person_records_keep_order_skip_bad_ones_and_report_notes(tmp_path):
  people = [split_builder.Person(name=f"p{i}.jpg", identity="x", image_path=tmp_path / f"p{i}.jpg",
                               keypoints=np.zeros((18, 2), np.int32), annotation_file=tmp_path / "a.csv", line=i + 2)
            for i in range(40)]

  def load(person):
    index = int(person.name[1:-4])
    if index % 7 == 3:
      raise bad_input.BadInput("image_truncated", "cut")
    notes = [("keypoint_outside_image", tmp_path / "a.csv", "nose")] if index == 5 else []
    return {"value": index}, notes

  for workers in (1, 4):
    report = _report()
    out = list(split_builder.person_records(people, load, report, workers=workers))
    kept = [i for i in range(40) if i % 7 != 3]
    assert [index for index, _ in out] == list(range(len(kept)))
    assert [record["value"] for _, record in out] == kept
    assert report.stored_images == [f"p{i}.jpg" for i in kept]
    assert report.counts() == {"image_truncated": 6, "keypoint_outside_image": 1}
    assert any(m.startswith(f"{tmp_path / 'a.csv'}:7: nose") for _, m in report.problems)
    assert report.skipped_images["p3.jpg"] == "image_truncated"


def test_format_annotation_row_is_what_the_reader_reads(tmp_path):
  keypoints = np.stack([np.arange(18) * 3, np.arange(18) * 2], -1)
  keypoints[4] = -1
  row = annotation_csv.format_annotation_row("a.jpg", keypoints)
  assert row.startswith("a.jpg:[0, 3, 6, 9, -1, ")
  path = tmp_path / "annotation.csv"
  path.write_text("name:keypoints_y:keypoints_x\n" + row + "\n")
  read = annotation_csv.read_annotation_csv(str(path), _report())
  np.testing.assert_array_equal(read["a.jpg"].keypoints, keypoints)
