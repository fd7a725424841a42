"""SIGTERM during training: finish the current step, save a checkpoint, exit cleanly.

Preemptible clusters (Kubernetes, SLURM with --signal, spot instances) send
SIGTERM and give the job a grace period before SIGKILL. Without a handler the
run dies and loses every step since its last checkpoint; with one, the
training loop asks `TerminationWatch.should_stop(step)` after each step (a
Python flag: no device sync), saves the state it has, and raises `Terminated`
(outside the steps, before the first or during the final evaluation, SIGTERM
raises `Terminated` at once: there is nothing new to save);
`python -m jaxpose.main` then exits with status 143 (128 + SIGTERM, what job
controllers expect from a terminated process, so they restart it) after
logging how to resume. Re-running the same command resumes exactly.

Multi-host runs use JAX's preemption sync point instead of the flag, so that
all processes stop after the same step (each receives the signal at its own
moment).
"""

from __future__ import annotations

import signal
import threading
import time

from absl import logging

EXIT_STATUS = 128 + signal.SIGTERM


class Terminated(Exception):
  """Training stopped on SIGTERM after saving a checkpoint."""

  def __init__(self, step: int | None = None, checkpoint_dir: str | None = None):
    self.step = step
    self.checkpoint_dir = checkpoint_dir
    if step is None:
      super().__init__("stopped on SIGTERM outside the training steps (nothing new to save); re-run the same "
                       "command to resume from the latest checkpoint")
    else:
      super().__init__(f"stopped on SIGTERM after step {step}; saved {checkpoint_dir}. Re-run the same command "
                       "to resume from it.")


class TerminationWatch:
  """A context manager that turns SIGTERM into a request the training loop polls."""

  def __init__(self):
    # True while the training loop polls `should_stop`; otherwise SIGTERM raises
    # `Terminated` at once (nothing to save before the first step or after the last).
    self.deferring = False
    self._requested_at: float | None = None
    self._previous = None
    self._installed = False
    self._multihost = False

  def __enter__(self) -> "TerminationWatch":
    import jax  # pylint: disable=g-import-not-at-top
    self._multihost = jax.process_count() > 1
    # Signal handlers can only be installed from the main thread; multi-host runs
    # leave SIGTERM to JAX's preemption notifier.
    if not self._multihost and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)
      self._installed = True
    return self

  def __exit__(self, *exc) -> None:
    if self._installed:
      signal.signal(signal.SIGTERM, self._previous)
      self._installed = False

  def _on_signal(self, signum, frame) -> None:
    del signum, frame
    if not self.deferring:
      raise Terminated()
    if self._requested_at is None:
      self._requested_at = time.time()
      # Only a flag here: the loop saves after the step in flight.
      logging.warning("SIGTERM received: saving a checkpoint after the current step, then exiting")

  def request(self) -> None:
    """Asks the loop to stop as SIGTERM would (for callers that have their own signal plumbing)."""
    self._on_signal(signal.SIGTERM, None)

  def should_stop(self, step: int) -> bool:
    if self._multihost:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      try:
        return bool(multihost_utils.reached_preemption_sync_point(step))
      except RuntimeError:  # the preemption service is off
        return False
    return self._requested_at is not None
