"""An interactive web demo: pick a person, pose them, swap their clothes, in the browser.

  pip install 'jaxpose[demo]'
  python -m jaxpose.demo --model synthetic-adgan --port 7860

`jaxpose.demo.backend` holds what the page does (framework-free, tested on its
own); `jaxpose.demo.app` is the Gradio page over it. Importing this package
does not import Gradio.
"""
