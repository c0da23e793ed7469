"""Run the user's ``fsanet`` command as a subprocess and read its ``--progress json`` events.

QGIS's own Python usually lacks torch, so the plugin never imports fsanet: it runs the
``fsanet`` of the user's environment, found by :func:`find_fsanet` from (1) the provider
setting, (2) the environment variable ``FSANET_EXECUTABLE``, (3) ``PATH``. :func:`run_fsanet`
polls the process (never blocks QGIS) and stops it with SIGTERM when the caller says so
(fsanet then keeps detect's resume journal, or saves train's ``last`` checkpoint).

No QGIS import here: the module is tested with any Python.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_VAR = "FSANET_EXECUTABLE"
INSTALL_HINT = ("install fsanet-geo in a Python environment with torch (pip install -e . in the repository) and "
                "set its fsanet in Settings > Options > Processing > Providers > FSANet, or FSANET_EXECUTABLE")
STOP_GRACE_S = 60.0
"""Seconds a cancelled fsanet gets to write its journal or checkpoint before it is killed."""


class FsanetMissing(RuntimeError):
    """No usable ``fsanet`` executable: the message says where the plugin looked and what to do."""


def find_fsanet(setting: str | None = None, environ: dict[str, str] | None = None) -> Path:
    """The ``fsanet`` to run: ``setting`` (the provider setting) if given, else ``$FSANET_EXECUTABLE``,
    else ``fsanet`` on ``PATH``. Raises :class:`FsanetMissing` naming the source that failed."""
    env = os.environ if environ is None else environ
    for source, value in (("the provider setting 'fsanet executable'", setting), (ENV_VAR, env.get(ENV_VAR))):
        if value and value.strip():
            path = Path(value.strip()).expanduser()
            if not path.is_file():
                raise FsanetMissing(f"fsanet not found: {source} names {path}, which does not exist")
            if not os.access(path, os.X_OK):
                raise FsanetMissing(f"fsanet not usable: {path} (from {source}) is not executable")
            return path
    found = shutil.which("fsanet", path=env.get("PATH"))
    if found is None:
        raise FsanetMissing(f"fsanet not found (no provider setting, no {ENV_VAR}, not on PATH): {INSTALL_HINT}")
    return Path(found)


@dataclass
class RunResult:
    """What one fsanet run did: exit code, whether it was cancelled, its JSON events, text lines
    on stderr, and stdout (model info's JSON)."""

    exit_code: int
    cancelled: bool
    events: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    stdout: str = ""

    def last(self, kind: str) -> dict[str, Any] | None:
        """The last event of ``kind`` (``done``, ``interrupted``, ...), or None."""
        return next((e for e in reversed(self.events) if e.get("event") == kind), None)

    def failure(self, exe: Path) -> str:
        """One message for a failed run: fsanet's ``error:`` line, or why the install looks broken."""
        errors = [line.split("error:", 1)[1].strip() for line in self.text if line.startswith("error:")]
        if errors:
            return errors[-1]
        joined = "\n".join(self.text)
        if "No such option: --progress" in joined:
            return f"{exe} is too old for this plugin (no --progress json): update fsanet-geo"
        last = self.text[-1] if self.text else "no output"
        return (f"fsanet at {exe} is broken or not an fsanet-geo install (exit code {self.exit_code}): {last}; "
                f"check it runs in a terminal: {exe} --version")


def child_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """QGIS's environment without what points Python at QGIS's own interpreter (PYTHONPATH,
    PYTHONHOME): the fsanet of another environment must start its own Python cleanly."""
    env = dict(os.environ if environ is None else environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _pump(stream: Any, name: str, lines: queue.Queue[tuple[str, str | None]]) -> None:
    for line in stream:
        lines.put((name, line.rstrip("\n")))
    lines.put((name, None))


def run_fsanet(
    exe: Path,
    args: list[str],
    *,
    on_event: Callable[[dict[str, Any]], None] = lambda event: None,
    on_text: Callable[[str], None] = lambda line: None,
    is_cancelled: Callable[[], bool] = lambda: False,
    poll_s: float = 0.1,
) -> RunResult:
    """Run ``exe ARGS``; each JSON line on stderr goes to ``on_event``, each other line to ``on_text``
    (both called on this thread). ``is_cancelled()`` is polled every ``poll_s`` seconds: when it
    turns True the process gets SIGTERM (killed after :data:`STOP_GRACE_S`). Raises
    :class:`FsanetMissing` when ``exe`` cannot be started."""
    try:
        proc = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                encoding="utf-8", errors="replace", env=child_environment())
    except OSError as exc:
        raise FsanetMissing(f"fsanet at {exe} cannot start: {exc}; {INSTALL_HINT}") from exc
    lines: queue.Queue[tuple[str, str | None]] = queue.Queue()
    readers = [threading.Thread(target=_pump, args=(s, n, lines), daemon=True)
               for s, n in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    for reader in readers:
        reader.start()
    result, stdout, open_streams, stop_at = RunResult(0, False), [], 2, None
    while open_streams:
        if stop_at is None and is_cancelled():
            result.cancelled, stop_at = True, time.monotonic() + STOP_GRACE_S
            _stop(proc, kill=False)
        elif stop_at is not None and time.monotonic() > stop_at:
            _stop(proc, kill=True)
        try:
            name, line = lines.get(timeout=poll_s)
        except queue.Empty:
            continue
        if line is None:
            open_streams -= 1
        elif name == "stdout":
            stdout.append(line)
        elif line.startswith("{"):
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict):
                result.events.append(event)
                on_event(event)
                continue
            result.text.append(line)
            on_text(line)
        elif line.strip():
            result.text.append(line)
            on_text(line)
    result.exit_code = proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    result.stdout = "\n".join(stdout)
    return result


def _stop(proc: subprocess.Popen[str], *, kill: bool) -> None:
    """SIGTERM (fsanet cleans up like after Ctrl-C), or SIGKILL after the grace period."""
    if proc.poll() is not None:
        return
    if kill:
        proc.kill()
    elif os.name == "posix":
        proc.send_signal(signal.SIGTERM)
    else:  # Windows has no SIGTERM: terminate() is a hard stop there
        proc.terminate()
