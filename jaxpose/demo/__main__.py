"""`python -m jaxpose.demo`: serve the web demo (see jaxpose.demo.app)."""

from __future__ import annotations

from jaxpose.demo import app

if __name__ == "__main__":
  app.main()
