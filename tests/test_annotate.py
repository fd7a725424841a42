"""python -m jaxpose.annotate end to end: a folder of photos -> the official annotation CSV."""

import io

import numpy as np
from PIL import Image

from jaxpose import annotate
from jaxpose.data import annotation_csv
from jaxpose.data import bad_input
import torch_writer
from test_openpose import TOY_LAYERS, random_state_dict


def _write_photo(path, seed, size=(24, 16)):
  pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3)).astype(np.uint8)
  Image.fromarray(pixels).save(path)


def test_annotates_a_folder_reports_the_corrupt_image_and_continues_a_run(tmp_path, capsys):
  photos = tmp_path / "photos"
  photos.mkdir()
  _write_photo(photos / "alice.png", 0)
  _write_photo(photos / "bob.jpg", 1)
  buffer = io.BytesIO()
  Image.fromarray(np.zeros((24, 16, 3), np.uint8)).save(buffer, format="JPEG")
  (photos / "carol.jpg").write_bytes(buffer.getvalue()[:60])  # cut off mid-file
  (photos / "notes.txt").write_text("not an image")
  weights = tmp_path / "body_pose_model.pth"
  torch_writer.save_state_dict(random_state_dict(TOY_LAYERS, seed=9), weights)
  output = tmp_path / "out" / "keypoints.csv"
  argv = ["--images", str(photos), "--weights", str(weights), "--output", str(output), "--protocol", "patn",
          "--no_progress"]

  assert annotate.main(argv) == 0
  printed = capsys.readouterr().out
  report = bad_input.BadInputReport(dataset="test", split="annotate")
  rows = annotation_csv.read_annotation_csv(output, report)
  assert list(rows) == ["alice.png", "bob.jpg"] and not report.problems
  for row in rows.values():
    assert row.keypoints.shape == (18, 2)
    present = np.all(row.keypoints != -1, axis=1)
    assert np.all(row.keypoints[present] >= 0) and np.all(row.keypoints[present] < (24, 16))
  assert output.read_text().splitlines()[0] == "name:keypoints_y:keypoints_x"
  assert "Wrote 2 rows" in printed
  assert "1 images skipped (image_truncated 1)" in printed or "1 images skipped (image_unreadable 1)" in printed
  assert "carol.jpg:" in printed

  # A second run continues the file: nothing is annotated twice, the bad image is reported again.
  assert annotate.main(argv) == 0
  printed = capsys.readouterr().out
  assert "Wrote 0 rows" in printed and "2 images were already in" in printed and "carol.jpg" in printed
  assert len(output.read_text().splitlines()) == 3


def test_names_the_csv_cannot_hold_and_an_empty_result_are_reported(tmp_path):
  class Nobody:
    def keypoints(self, image):
      return np.full((18, 2), -1)

  photos = tmp_path / "photos"
  photos.mkdir()
  _write_photo(photos / "a:b.png", 0)
  _write_photo(photos / "ok.png", 1)
  output = tmp_path / "k.csv"
  summary = annotate.annotate_folder(str(photos), Nobody(), str(output), progress=False)
  assert summary.written == 1 and summary.people_found == 0
  assert [(name, kind) for name, kind, _ in summary.skipped] == [("a:b.png", "bad_name")]
  lines = "\n".join(summary.lines(str(output)))
  assert "nobody found in 1 (all joints -1)" in lines and "rename the file" in lines
  assert output.read_text().splitlines()[1] == "ok.png:[" + ", ".join(["-1"] * 18) + "]:[" + ", ".join(["-1"] * 18) + "]"
