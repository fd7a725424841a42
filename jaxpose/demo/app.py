"""The web page: a Gradio app over `jaxpose.demo.backend.Backend`.

  python -m jaxpose.demo [--model synthetic-adgan|<run dir>|<weights dir>|<official .pth>] [--port 7860]

One page, three steps: the person (a gallery of the test split, or an upload
of a picture and its parsing map), the target pose (another person's, then
edited joint by joint: pick a joint and click where it goes on the stick
figure, or type its (y, x) in the table), and, for systems with a style code,
a donor per component. The result comes back next to its inputs with the
time the call took, and as a PNG at the model's size to download.

The HTTP API is the page's own: `/generate` takes what the page sends
(person, uploads, label set, joint table, one donor per component) and returns
what it shows. Gradio is an optional dependency (`pip install 'jaxpose[demo]'`);
it is imported here only. Everything is served from this machine: no fonts,
analytics or share links from elsewhere.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import os
import tempfile
from typing import Sequence

# Before gradio is imported: no telemetry, no hub look-ups; the demo runs offline.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from absl import logging  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

try:
  import gradio as gr  # noqa: E402
except ModuleNotFoundError as e:  # pragma: no cover - depends on the install
  raise ModuleNotFoundError("the web demo needs Gradio: pip install 'jaxpose[demo]'") from e

from jaxpose.data import keypoints as kp  # noqa: E402
from jaxpose.demo import backend as backend_lib  # noqa: E402

UPLOADED = backend_lib.UPLOADED_NAME
KEEP_OWN = "(keep own)"
JOINT_HEADERS = ["joint", "y", "x"]

CSS = """
.pixels img { image-rendering: pixelated; }
#timing { font-size: 1.1em; }
"""


def _png(directory: str, image: np.ndarray, stem: str) -> str:
  path = tempfile.NamedTemporaryFile(dir=directory, prefix=stem, suffix=".png", delete=False).name
  Image.fromarray(image).save(path)
  return path


def build(backend: backend_lib.Backend) -> gr.Blocks:
  """The page for one `Backend` (its pipeline already warmed up)."""
  names = [p.name for p in backend.people]
  scale = backend.display_scale
  height, width = backend.size
  outputs_dir = tempfile.mkdtemp(prefix="jaxpose_demo_")
  components = backend.components

  def show(image: np.ndarray) -> np.ndarray:
    return backend_lib.enlarge(image, scale)

  def who(name: str | None, image_file, parsing_file, labels) -> backend_lib.Person:
    if name == UPLOADED:
      return backend.upload(image_file, parsing_file, labels)
    if not name:
      raise ValueError("no person chosen: click one in the gallery or upload a picture")
    return backend.person(name)

  # ------------------------------------------------------------ handlers

  def on_gallery_select(evt: gr.SelectData):
    return gr.update(value=names[evt.index])

  def on_person(name, image_file, parsing_file, labels):
    if name == UPLOADED and (image_file is None or (parsing_file is None and backend.needs_parsing)):
      return None  # waiting for the files
    try:
      return show(who(name, image_file, parsing_file, labels).image)
    except ValueError as e:
      raise gr.Error(str(e), print_exception=False) from None

  def on_upload(image_file, parsing_file, labels):
    if image_file is None or (parsing_file is None and backend.needs_parsing):
      gr.Info("Upload both the picture and its parsing map." if backend.needs_parsing else "Upload the picture.")
      return gr.update(value=UPLOADED), None
    try:
      person = backend.upload(image_file, parsing_file, labels)
    except ValueError as e:
      raise gr.Error(str(e), print_exception=False) from None
    return gr.update(value=UPLOADED), show(person.image)

  def draw(rows):
    try:
      joints = backend.keypoints_from_rows(rows)
    except ValueError as e:
      gr.Warning(str(e))
      return gr.update()
    return backend_lib.pose_picture(joints, backend.size, scale)

  def on_pose_from(name, image_file, parsing_file, labels):
    if not name:
      return gr.update()
    try:
      return backend.rows_from_keypoints(who(name, image_file, parsing_file, labels).keypoints)
    except ValueError as e:
      raise gr.Error(str(e), print_exception=False) from None

  def on_pose_click(joint, rows, evt: gr.SelectData):
    rows = [list(r) for r in rows]
    x, y = evt.index[0] // scale, evt.index[1] // scale
    rows[kp.KEYPOINT_INDEX[joint]][1:] = [int(min(max(y, 0), height - 1)), int(min(max(x, 0), width - 1))]
    return rows

  def on_remove(joint, rows):
    rows = [list(r) for r in rows]
    rows[kp.KEYPOINT_INDEX[joint]][1:] = [kp.MISSING, kp.MISSING]
    return rows

  def generate(person, image_file, parsing_file, labels, joints, *donor_names):
    """What the Generate button (and the API's /generate) does: person name, uploads, label set, joint rows."""
    try:
      person = who(person, image_file, parsing_file, labels)
      joints = backend.keypoints_from_rows(joints)
      donors = {c: who(d, image_file, parsing_file, labels)
                for c, d in zip(components, donor_names) if d and d != KEEP_OWN}
      result = backend.generate(person, joints, donors)
    except ValueError as e:
      raise gr.Error(str(e), print_exception=False) from None
    what = ("pose transfer" if not result.swapped else
            "swap: " + ", ".join(f"{c} from {d}" for c, d in result.swapped.items()))
    timing = (f"**{result.seconds * 1000:.0f} ms** for this request ({what}; {backend.system_name} at "
              f"{height}x{width}, compiled once at start-up in {backend.compile_seconds:.1f} s)")
    return (show(person.image), backend_lib.pose_picture(joints, backend.size, scale), show(result.image),
            _png(outputs_dir, result.image, "jaxpose_result_"), timing)

  # The API names each donor parameter after its component (upper_clothes=...).
  generate.__signature__ = inspect.Signature(
      [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
       for n in ("person", "image_file", "parsing_file", "labels", "joints", *components)])

  # ------------------------------------------------------------ layout

  origin = backend.pipeline.origin
  first_pose = backend.people[1 if len(backend.people) > 1 else 0].keypoints if backend.people else (
      np.full((kp.NUM_KEYPOINTS, 2), kp.MISSING))
  # Shown, never edited; PNG (not Gradio's default WebP) so what comes back is exactly what was made.
  picture = functools.partial(gr.Image, format="png", interactive=False, buttons=["download", "fullscreen"])
  with gr.Blocks(title="jaxpose demo") as blocks:
    gr.Markdown(
        f"## jaxpose: pose-guided person image synthesis\n"
        f"**{backend.system_name}** at {height}x{width} from {origin}. Choose a person, a target pose"
        + (", and (optionally) other people's clothes or hair" if components else "")
        + ", then **Generate**.")
    with gr.Row():
      with gr.Column(scale=3):
        gr.Markdown("### 1. The person")
        gallery = gr.Gallery(value=[(show(p.image), p.name.split(":")[0]) for p in backend.people],
                             label="test split", columns=4, height=300, allow_preview=False, object_fit="contain",
                             visible=bool(names), elem_classes="pixels")
        person = gr.Dropdown(choices=names + [UPLOADED], value=names[0] if names else UPLOADED,
                             label="person (click one above, or upload below)", elem_id="person")
        with gr.Accordion("Upload your own picture", open=not names):
          image_file = gr.File(label="picture (PNG or JPEG, any size)", type="filepath", elem_id="upload_picture")
          parsing_file = gr.File(label="its parsing map (one-channel label PNG of the same size)"
                                 + ("" if backend.needs_parsing else f"; {backend.system_name} does not read it"),
                                 type="filepath", elem_id="upload_parsing")
          labels = gr.Radio(list(backend_lib.UPLOAD_LABELS), value="lip", label="label set of the parsing map")
        person_view = picture(value=show(backend.people[0].image) if backend.people else None,
                              label="as the model sees it", height=300,
                              elem_classes="pixels")
      with gr.Column(scale=3):
        gr.Markdown("### 2. The target pose")
        pose_choices = names + ([UPLOADED] if backend.detect_keypoints else [])
        pose_from = gr.Dropdown(choices=pose_choices, value=names[1 if len(names) > 1 else 0] if names else None,
                                label="take the pose of", visible=bool(pose_choices), elem_id="pose_from")
        pose_view = picture(value=backend_lib.pose_picture(first_pose, backend.size, scale),
                            label="target pose: click to move the chosen joint there", height=300,
                            elem_id="pose_view")
        with gr.Row():
          joint = gr.Dropdown(choices=list(kp.KEYPOINT_NAMES), value="neck", label="joint to move", scale=3,
                              elem_id="joint")
          remove = gr.Button("mark missing", scale=1)
        table = gr.Dataframe(value=backend.rows_from_keypoints(first_pose), headers=JOINT_HEADERS,
                             datatype=["str", "number", "number"], type="array", row_count=kp.NUM_KEYPOINTS,
                             column_count=3, interactive=True, max_height=260, elem_id="joints",
                             label=f"joints (y, x) in the {height}x{width} picture, -1 = missing")
      with gr.Column(scale=2, visible=bool(components)):
        gr.Markdown("### 3. Swap components")
        donor_choices = [KEEP_OWN] + names + [UPLOADED]
        donors = [gr.Dropdown(choices=donor_choices, value=KEEP_OWN, label=c.replace("_", " "), elem_id=f"donor_{c}")
                  for c in components]
    run = gr.Button("Generate", variant="primary")
    timing = gr.Markdown(f"The model was compiled once at start-up ({backend.compile_seconds:.1f} s); "
                         "each request runs the compiled function.", elem_id="timing")
    with gr.Row():
      out_person = picture(label="person", height=320, elem_classes="pixels")
      out_pose = picture(label="target pose", height=320)
      out_result = picture(label="result", height=320, elem_classes="pixels",
                           elem_id="result")
      download = gr.File(label=f"download the result ({height}x{width} PNG)", interactive=False)

    gallery.select(on_gallery_select, None, person, api_name=False)
    upload_inputs = [image_file, parsing_file, labels]
    person.change(on_person, [person, *upload_inputs], person_view, api_name=False)
    image_file.upload(on_upload, upload_inputs, [person, person_view], api_name=False)
    parsing_file.upload(on_upload, upload_inputs, [person, person_view], api_name=False)
    pose_from.change(on_pose_from, [pose_from, *upload_inputs], table, api_name=False)
    table.change(draw, table, pose_view, api_name=False)
    pose_view.select(on_pose_click, [joint, table], table, api_name=False)
    remove.click(on_remove, [joint, table], table, api_name=False)
    run.click(generate, [person, *upload_inputs, table, *donors], [out_person, out_pose, out_result, download, timing],
              api_name="generate")
  blocks.outputs_dir = outputs_dir
  return blocks


def start(model: str, *, port: int = 7860, host: str = "127.0.0.1", data_dir: str | None = None,
          gallery_size: int = 24, pose_weights: str | None = None, block: bool = True) -> gr.Blocks:
  """Loads `model`, compiles it (warm-up), and serves the page on host:port. Returns the running app.

  With `pose_weights` (OpenPose body weights, see `jaxpose.pose.PoseEstimator.from_file`)
  an uploaded picture's joints are detected: they become the person's source pose
  (PATN reads it) and a choice of target pose.
  """
  import jaxpose  # pylint: disable=g-import-not-at-top
  pipeline = jaxpose.load(model)
  people = backend_lib.test_split_people(pipeline, data_dir, gallery_size)
  detect = None
  if pose_weights:
    from jaxpose import pose  # pylint: disable=g-import-not-at-top
    detect = pose.PoseEstimator.from_file(pose_weights).keypoints
  backend = backend_lib.Backend(pipeline, people, detect)
  seconds = backend.warm_up()
  logging.info("%s: %d gallery people; compiled in %.1f s", pipeline, len(people), seconds)
  blocks = build(backend)
  blocks.backend = backend
  blocks.launch(server_name=host, server_port=port, prevent_thread_lock=not block, show_error=True, quiet=not block,
                footer_links=["api"], ssr_mode=False, css=CSS, theme=gr.themes.Default())
  return blocks


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(prog="python -m jaxpose.demo",
                                   description="Serve the jaxpose web demo on a local port.")
  parser.add_argument("--model", default="synthetic-adgan",
                      help="shipped weights name, a run or weights directory, or an official *_net_netG.pth")
  parser.add_argument("--port", type=int, default=7860)
  parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: the whole network)")
  parser.add_argument("--data_dir", default=None, help="TFDS data dir of the gallery (default: the run's)")
  parser.add_argument("--gallery_size", type=int, default=24)
  parser.add_argument("--pose_weights", default=None,
                      help="OpenPose body weights (body_pose_model.pth or pose_estimator.h5): detect uploads' joints")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.INFO)
  try:
    start(args.model, port=args.port, host=args.host, data_dir=args.data_dir, gallery_size=args.gallery_size,
          pose_weights=args.pose_weights)
  except (FileNotFoundError, ValueError) as e:
    parser.exit(2, f"{parser.prog}: cannot serve --model {args.model}: {e}\n")
