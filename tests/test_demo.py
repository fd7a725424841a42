"""The web demo (python -m jaxpose.demo), served on a free local port and driven like its users do:
through its HTTP API (gradio_client) and in headless Chromium (Selenium). One app start for the module."""

import os
import socket

import numpy as np
from PIL import Image
import pytest

import demo_browser
import jaxpose
from jaxpose.data import keypoints as kp
from jaxpose.data import pair_source
from jaxpose.demo import app as demo_app
from jaxpose.demo import backend as backend_lib

from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tiny_adgan_run, tiny_data_dir):
  """(url, app) of the demo over the tiny ADGAN run, its gallery from the test split."""
  app = demo_app.start(tiny_adgan_run, port=_free_port(), data_dir=tiny_data_dir, gallery_size=6, block=False)
  try:
    yield app.local_url, app
  finally:
    app.close()


@pytest.fixture(scope="module")
def client(served):
  return Client(served[0], verbose=False, download_files=True)


@pytest.fixture(scope="module")
def reference(served, tiny_adgan_run, tiny_data_dir):
  """The Python API over the same run, and the gallery's people read from the test split by the index in their name."""
  images = pair_source("synthetic_people/tiny", "test", tiny_data_dir).images
  people = []
  for name in [p.name for p in served[1].backend.people]:
    record = images[int(name.split(":")[0])]
    assert name.endswith(record["name"].decode() if isinstance(record["name"], bytes) else str(record["name"]))
    people.append((name, record["image"], record["parsing"][..., 0], record["keypoints"]))
  return jaxpose.load(tiny_adgan_run), people


def _table(keypoints):
  return {"headers": demo_app.JOINT_HEADERS, "data": backend_lib.Backend.rows_from_keypoints(keypoints),
          "metadata": None}


def _call(client, pipe, person, keypoints, image_file=None, parsing_file=None, labels="lip", **donors):
  donor_args = [donors.get(c, demo_app.KEEP_OWN) for c in pipe.components]
  return client.predict(person, image_file, parsing_file, labels, _table(keypoints), *donor_args,
                        api_name="/generate")


def _png(path) -> np.ndarray:
  return np.asarray(Image.open(path))


def test_transfer_through_the_http_api_is_the_python_api(client, reference):
  pipe, people = reference
  (name, image, parsing, _), (_, _, _, target) = people[0], people[1]
  person_view, pose_view, shown, download, timing = _call(client, pipe, name, target)
  expected = pipe.transfer(image, parsing, target)
  np.testing.assert_array_equal(_png(download), expected)
  scale = _png(shown).shape[0] // expected.shape[0]
  assert scale > 1, "the page enlarges the small picture"
  np.testing.assert_array_equal(_png(shown), np.repeat(np.repeat(expected, scale, 0), scale, 1))
  np.testing.assert_array_equal(_png(person_view)[::scale, ::scale], image)
  assert _png(pose_view).shape == _png(shown).shape and _png(pose_view).any()
  assert "ms** for this request (pose transfer" in timing


def test_two_component_swap_through_the_http_api_is_the_python_api(client, reference):
  pipe, people = reference
  (name, image, parsing, _), (_, _, _, target) = people[0], people[1]
  (upper_name, upper_image, upper_parsing, _), (hair_name, hair_image, hair_parsing, _) = people[3], people[4]
  *_, download, timing = _call(client, pipe, name, target, upper_clothes=upper_name, hair=hair_name)
  expected = pipe.swap(image, parsing, target, {"upper_clothes": (upper_image, upper_parsing),
                                                "hair": (hair_image, hair_parsing)})
  np.testing.assert_array_equal(_png(download), expected)
  assert not np.array_equal(expected, pipe.transfer(image, parsing, target)), "the donors change the picture"
  assert f"upper_clothes from {upper_name}" in timing and f"hair from {hair_name}" in timing


def test_uploads_are_the_python_api_and_bad_ones_get_clear_messages(client, reference, tmp_path):
  pipe, people = reference
  (_, image, parsing, _), (_, _, _, target) = people[2], people[1]
  Image.fromarray(image).save(tmp_path / "me.png")
  Image.fromarray(parsing.astype(np.uint8)).save(tmp_path / "me_parsing.png")
  me, me_parsing = handle_file(str(tmp_path / "me.png")), handle_file(str(tmp_path / "me_parsing.png"))
  *_, download, _ = _call(client, pipe, demo_app.UPLOADED, target, me, me_parsing)
  np.testing.assert_array_equal(_png(download), pipe.transfer(image, parsing, target))

  (tmp_path / "notes.png").write_text("not a picture")
  wide = np.zeros((parsing.shape[0], parsing.shape[1] + 4), np.uint8)
  Image.fromarray(wide).save(tmp_path / "wide.png")
  Image.fromarray(np.full_like(parsing, 25, dtype=np.uint8)).save(tmp_path / "labels25.png")
  Image.fromarray(image).save(tmp_path / "coloured.png")
  bad = {
      "not an image": (handle_file(str(tmp_path / "notes.png")), me_parsing, "lip", "is not a picture PIL can read"),
      "wrong size": (me, handle_file(str(tmp_path / "wide.png")), "lip", "label map the size of its picture"),
      "labels out of range": (me, handle_file(str(tmp_path / "labels25.png")), "lip", r"labels span \[25, 25\]"),
      "ADGAN-8 maps hold 0..7": (me, me_parsing, "adgan8", "8 classes"),
      "a coloured parsing": (me, handle_file(str(tmp_path / "coloured.png")), "lip", "one-channel label PNG"),
      "no parsing map": (me, None, "lip", "needs the person's parsing map"),
  }
  for what, (picture, labels_map, label_set, message) in bad.items():
    with pytest.raises(AppError, match=message):
      _call(client, pipe, demo_app.UPLOADED, target, picture, labels_map, label_set)
  bad_joint = np.array(target)
  bad_joint[kp.KEYPOINT_INDEX["neck"]] = (500, 3)
  with pytest.raises(AppError, match=r"\['neck'\] lie outside"):
    _call(client, pipe, people[0][0], bad_joint)
  # Still serving, and still right.
  *_, download, _ = _call(client, pipe, people[0][0], target)
  np.testing.assert_array_equal(_png(download), pipe.transfer(people[0][1], people[0][2], target))


def test_the_joint_table_is_read_by_joint_name_and_bad_values_are_named(served, reference):
  backend = served[1].backend
  target = reference[1][1][3]
  rows = backend.rows_from_keypoints(target)
  np.testing.assert_array_equal(backend.keypoints_from_rows(sorted(rows, key=lambda r: r[1])), target)
  rows[3][2] = "left"
  with pytest.raises(ValueError, match="joint right_elbow: x='left' is not a number"):
    backend.keypoints_from_rows(rows)
  with pytest.raises(ValueError, match="expected 18 joints"):
    backend.keypoints_from_rows(rows[:17])


def test_a_browser_moves_a_joint_runs_a_transfer_and_sees_the_result(served, tmp_path):
  url, app = served
  driver = demo_browser.browser()  # fails (no skip) saying how to install Chromium when it is missing
  try:
    demo_browser.open_page(driver, url)
    before = demo_browser.joint_row(driver, "neck")
    demo_browser.click_pose(driver, 0.75, 0.25)  # the chosen joint (neck) goes where the click is
    height, width = app.backend.size
    demo_browser._wait(lambda: demo_browser.joint_row(driver, "neck") != before, 30, "the moved joint")
    y, x = (int(v) for v in demo_browser.joint_row(driver, "neck")[1:])
    assert abs(y - 0.75 * height) <= 2 and abs(x - 0.25 * width) <= 2, (y, x)
    timing = demo_browser.generate(driver)
    assert "ms for this request (pose transfer" in timing
    shot = demo_browser.screenshot(driver, str(tmp_path / "demo.png"))
    picture = _png(shot)
    assert picture.shape[0] > 900 and picture.std() > 10, "a rendered page, not a blank one"
    if os.environ.get("JAXPOSE_DEMO_SCREENSHOT"):
      Image.fromarray(picture).save(os.environ["JAXPOSE_DEMO_SCREENSHOT"])
    # A bad upload: the page says what is wrong, and the person switches to the upload.
    (tmp_path / "notes.png").write_text("not a picture")
    Image.fromarray(np.zeros((height, width), np.uint8)).save(tmp_path / "parsing.png")
    demo_browser.upload(driver, "upload_picture", str(tmp_path / "notes.png"))
    demo_browser.upload(driver, "upload_parsing", str(tmp_path / "parsing.png"))
    message = demo_browser.page_says(driver, "is not a picture PIL can read")
    assert "notes.png" in message and "expected a PNG or JPEG" in message
  finally:
    driver.quit()


def test_systems_without_a_style_code_hide_the_swap_controls(tiny_patn_run, reference):
  pipe = jaxpose.load(tiny_patn_run)
  people = [backend_lib.Person(n, im, p, "lip", k) for n, im, p, k in reference[1][:2]]
  backend = backend_lib.Backend(pipe, people)
  page = demo_app.build(backend)
  swap_column = [b for b in page.blocks.values() if type(b).__name__ == "Column" and not b.visible]
  assert backend.components == () and len(swap_column) == 1
  out = backend.generate(people[0], people[1].keypoints)
  np.testing.assert_array_equal(out.image, pipe.transfer(people[0].image, people[0].parsing, people[1].keypoints,
                                                         source_keypoints=people[0].keypoints))
  with pytest.raises(ValueError, match="no per-component style code"):
    backend.generate(people[0], people[1].keypoints, {"hair": people[1]})


def test_an_uploads_joints_are_detected_when_a_detector_is_configured(tiny_patn_run, reference, tmp_path):
  """With --pose_weights an upload's joints come from the detector (letterboxed with the picture), and PATN
  reads them as the source pose."""
  pipe = jaxpose.load(tiny_patn_run)
  _, image, parsing, own = reference[1][0]
  target = reference[1][1][3]
  # Twice the model's size: the page letterboxes the picture, its parsing and the detected joints once, on upload.
  big, big_parsing = (np.repeat(np.repeat(a, 2, 0), 2, 1) for a in (image, parsing))
  Image.fromarray(big).save(tmp_path / "big.png")
  Image.fromarray(big_parsing).save(tmp_path / "big_parsing.png")
  twice = lambda joints: np.where(joints >= 0, joints * 2, -1)  # noqa: E731
  seen = []

  def detect(picture):
    seen.append(picture.shape)
    return twice(own)  # what a detector finds in the big picture

  backend = backend_lib.Backend(pipe, [], detect)
  person = backend.upload(str(tmp_path / "big.png"), str(tmp_path / "big_parsing.png"))
  assert seen == [big.shape]
  np.testing.assert_array_equal(person.keypoints, own)
  # The same as the Python API given the big picture and joints in its pixels.
  np.testing.assert_array_equal(backend.generate(person, target).image,
                                pipe.transfer(big, big_parsing, twice(target), source_keypoints=twice(own)))
  without = backend_lib.Backend(pipe, []).upload(str(tmp_path / "big.png"), str(tmp_path / "big_parsing.png"))
  assert not kp.is_present(without.keypoints).any()


def test_the_command_line_says_why_it_cannot_serve_a_model(capsys):
  with pytest.raises(SystemExit) as exit_info:
    demo_app.main(["--model", "no/such/run", "--port", str(_free_port())])
  assert exit_info.value.code == 2
  assert "cannot serve --model no/such/run: no/such/run is neither shipped weights" in capsys.readouterr().err
