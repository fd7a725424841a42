"""One writer per run directory: the lock `<workdir>/run.lock`.

    with run_lock.hold(workdir, "train"):
      ...  # checkpoints, metrics, samples

Two trainings sharing a --workdir overwrite each other's checkpoints and
metrics without either noticing, so every mode that writes into a run
directory (training, --mode=evaluate) holds this lock while it runs, and a
second run is refused at once with a message naming the holder (host, pid,
start time, command).

How: process 0 of a run takes an exclusive `fcntl.flock` on `run.lock` and
writes its holder into the file. The kernel drops a flock when its process
ends in any way (exit, exception, SIGKILL, a crash), so a file that still names
a holder while nobody holds the flock is a stale lock: its process is gone, and
the next run takes it over with a log line naming it. The file is never
deleted (deleting a locked file lets a third process lock a new inode); a clean
release empties it. The other processes of a multi-host run never touch the
file: they receive process 0's verdict by a broadcast, so all processes of one
run share the lock and a refused run stops on every host at once.

Where flock is not supported (some network filesystems) the holder's liveness
is judged from the file: a holder on this host whose pid is gone is stale; one
on another host is trusted, and the message says to delete `run.lock` if that
run is known to be over. Object-store paths (gs://...) are not locked.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time
from typing import Iterator

from absl import logging

LOCK_NAME = "run.lock"


class RunDirectoryInUse(RuntimeError):
  """Another live run holds the run directory."""


class RunDirectoryNotWritable(PermissionError):
  """The run directory cannot be written (read-only filesystem, permissions)."""


def _describe(holder: dict) -> str:
  when = holder.get("started", "?")
  command = holder.get("command", "")
  return (f"{holder.get('mode', 'a run')} started {when} by pid {holder.get('pid', '?')} on host "
          f"{holder.get('host', '?')}" + (f" (command: {command})" if command else ""))


def _holder(mode: str) -> dict:
  return {
      "host": socket.gethostname(),
      "pid": os.getpid(),
      "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
      "mode": mode,
      "command": " ".join(sys.argv)[:400],
  }


def _read_holder(fd: int) -> dict | None:
  os.lseek(fd, 0, os.SEEK_SET)
  text = os.read(fd, 1 << 16).decode("utf-8", "replace").strip()
  if not text:
    return None
  try:
    holder = json.loads(text)
  except json.JSONDecodeError:
    return {"mode": "an unknown writer", "command": text[:200]}
  return holder if isinstance(holder, dict) else None


def _write_holder(fd: int, holder: dict) -> None:
  os.ftruncate(fd, 0)
  os.lseek(fd, 0, os.SEEK_SET)
  os.write(fd, (json.dumps(holder) + "\n").encode("utf-8"))
  os.fsync(fd)


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  return True


class RunLock:
  """The held lock of one run directory (process 0's side); `release()` frees it."""

  def __init__(self, path: str, fd: int | None, holder: dict):
    self.path = path
    self.holder = holder
    self._fd = fd

  def release(self) -> None:
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)
      fcntl.flock(self._fd, fcntl.LOCK_UN)
    except OSError:
      pass  # the kernel drops the flock with the descriptor anyway
    finally:
      os.close(self._fd)
      self._fd = None


def _not_writable(workdir: str, mode: str, error: OSError) -> RunDirectoryNotWritable:
  return RunDirectoryNotWritable(
      f"cannot write in the run directory {workdir} ({error.strerror or error}): --mode={mode} writes there "
      "(its lock, checkpoints, metrics). Make it writable, or copy the run to a writable place and point "
      "--workdir at the copy.")


def acquire(workdir: str, mode: str) -> RunLock:
  """Takes `<workdir>/run.lock` for this process (process 0 of a run); see the module docstring.

  Raises:
    RunDirectoryInUse: a live process holds it (the message names host, pid, start time).
    RunDirectoryNotWritable: the directory cannot be created or written.
  """
  try:
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
      raise _not_writable(workdir, mode, e) from None
    raise
  holder = _holder(mode)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      flock_works = True
    except BlockingIOError:
      # Held: the holder writes its name right after locking; give it a moment.
      previous = None
      for _ in range(20):
        previous = _read_holder(fd)
        if previous:
          break
        time.sleep(0.05)
      raise RunDirectoryInUse(
          f"{workdir} is in use by another jaxpose run: {_describe(previous or {})}. One run directory "
          "takes one run at a time: wait for that run to finish, stop it, or choose another --workdir. "
          "(A lock whose process has ended is taken over automatically.)")
    except OSError as e:
      if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
        raise
      flock_works = False
    previous = _read_holder(fd)
    if previous and not flock_works:
      same_host = previous.get("host") == holder["host"]
      if not same_host or _pid_alive(int(previous.get("pid", -1))):
        raise RunDirectoryInUse(
            f"{workdir} is in use by another jaxpose run: {_describe(previous)}. This filesystem does not "
            f"support file locks, so jaxpose cannot tell whether that run is still alive: if it is over, "
            f"delete {path} and start again.")
    if previous:
      logging.warning("Took over the lock of %s: its holder, %s, has ended without releasing it.", workdir,
                      _describe(previous))
    try:
      _write_holder(fd, holder)
    except OSError as e:
      if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.EBADF):
        raise _not_writable(workdir, mode, e) from None
      raise
  except BaseException:
    os.close(fd)
    raise
  logging.info("Holding %s (%s)", path, _describe(holder))
  return RunLock(path, fd, holder)


def _broadcast_verdict(error: str) -> str:
  """Process 0's error text (or "") to every process of a multi-host run."""
  import jax  # pylint: disable=g-import-not-at-top
  if jax.process_count() == 1:
    return error
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  buffer = np.zeros(2048, np.uint8)
  encoded = error.encode("utf-8")[:2048]
  buffer[:len(encoded)] = np.frombuffer(encoded, np.uint8)
  received = np.asarray(multihost_utils.broadcast_one_to_all(buffer))
  return bytes(received).rstrip(b"\0").decode("utf-8", "replace")


@contextlib.contextmanager
def hold(workdir: str, mode: str) -> Iterator[RunLock | None]:
  """Holds the run directory's lock for the `with` block (all processes of a multi-host run call this).

  Yields the lock on process 0, None elsewhere (and on object stores, which are not locked).
  """
  import jax  # pylint: disable=g-import-not-at-top
  if "://" in workdir:
    logging.warning("%s is not a local path: the run-directory lock is not taken; make sure no other run "
                    "uses it", workdir)
    yield None
    return
  lock, failure = None, None
  if jax.process_index() == 0:
    try:
      lock = acquire(workdir, mode)
    except (RunDirectoryInUse, RunDirectoryNotWritable) as e:
      failure = e
  verdict = _broadcast_verdict(f"{type(failure).__name__}:{failure}" if failure else "")
  if failure is not None:
    raise failure
  if verdict:  # another process of this run: stop with process 0's reason
    kind, _, message = verdict.partition(":")
    raise (RunDirectoryNotWritable if kind == "RunDirectoryNotWritable" else RunDirectoryInUse)(
        f"process 0 of this run reports: {message}")
  try:
    yield lock
  finally:
    if lock is not None:
      lock.release()
