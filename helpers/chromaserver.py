"""A local Chroma server for the lifetime of a `with` block: the same index code, talking HTTP as a shared team server would."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import ipaddress
import time
import warnings
from pathlib import Path
from typing import Iterator

from helpers.resources import die_with_parent

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def warn_if_exposed(host: str, port: int | None = None) -> str | None:
    """Warn (and return the text) when a server is bound to a non-loopback address: a Chroma
    server has no authentication, so anyone who can reach that address can read, change or
    delete the index."""
    if is_loopback(host):
        return None
    text = (f"the Chroma server listens on {host}:{port or '?'} with NO authentication: anyone who can reach "
            "this machine on that port can read, change or delete the index. Use it only on a network you "
            "trust (or behind a firewall / SSH tunnel); host='127.0.0.1' keeps it on this machine.")
    warnings.warn(text, UserWarning, stacklevel=3)
    return text



def _dies_with(parent: int):
    """For Popen's preexec_fn: the server gets SIGTERM when the process that started it ends, even by
    SIGKILL (Linux PR_SET_PDEATHSIG, as the mask workers: helpers.resources.die_with_parent), so a
    killed notebook kernel never leaves `chroma run` listening."""
    def child() -> None:
        die_with_parent()
        if os.getppid() != parent:  # the parent died before the request was made
            os._exit(1)
    return child


# `chroma run`, as the `chroma` command runs it, after `import helpers`, which keeps the 2-5 s import
# of rfc3987_syntax out (see helpers/__init__.py): the server starts in 3.8 s instead of 9.7 s.
_SERVE = "import sys, helpers; sys.argv[0] = 'chroma'; from chromadb.cli.cli import app; sys.exit(app())"


@contextlib.contextmanager
def chroma_server(path: Path | str, *, host: str = "127.0.0.1", port: int | None = None,
                  timeout: float = 60.0, log: Path | str | None = None) -> Iterator[tuple[str, int]]:
    """Run a real `chroma run` server on `path` for the length of a `with` block.

    Yields (host, port) once the server answers its heartbeat; always stops it afterwards.
    This is how a team shares one index: one machine runs `chroma run --path DIR --host
    0.0.0.0 --port 8000`, everyone sets `chroma_host` / `chroma_port` in workbook.toml.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    if port is None:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
    warn_if_exposed(host, port)
    log_path = Path(log) if log else Path(tempfile.mkstemp(prefix="chroma-server-", suffix=".log")[1])
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-c", _SERVE, "run", "--path", str(path), "--host", host,
                                 "--port", str(port)],
                                stdout=log_file, stderr=subprocess.STDOUT,
                                preexec_fn=_dies_with(os.getpid()) if sys.platform.startswith("linux") else None)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    chromadb.HttpClient(host=host, port=port,
                                        settings=ChromaSettings(anonymized_telemetry=False)).heartbeat()
                    break
                except Exception:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"the chroma server on {host}:{port} did not start; its log "
                                           f"({log_path}) ends with: {log_path.read_text()[-1500:]}") from None
                    time.sleep(0.3)
            yield host, port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
