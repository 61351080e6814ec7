"""The embedded server: `riskserve serve` (the same server) in a child process of this interpreter."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A running `riskserve serve` in a child process (`python -m riskserve serve`). Use `Server.start(...)`, then
    `session()`; `stop()` (or the `with` block's end) stops it gracefully (SIGTERM)."""

    def __init__(self, process: subprocess.Popen, url: str, token: str, data_dir: Path, log: Path, temporary):
        self.process = process
        self.url = url
        self.token = token
        self.data_dir = data_dir
        self.log_path = log
        self._temporary = temporary

    @classmethod
    def start(cls, data_dir=None, *, port: Optional[int] = None, host: str = "127.0.0.1",
              token: Optional[str] = None, env: Optional[Dict[str, str]] = None, timeout: float = 60.0) -> "Server":
        """Starts a server on `host:port` (a free port when none) with its data in `data_dir` (a temporary folder,
        removed at stop, when none). `token` becomes the administrator's bearer token on a first start (a random one
        when none); on a data directory that already has an administrator pass the token it was made with."""
        temporary = None
        if data_dir is None:
            temporary = tempfile.TemporaryDirectory(prefix="riskserve-")
            data_dir = temporary.name
        data_dir = Path(data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        port = port or _free_port()
        token = token or os.environ.get("RISKSERVE_ADMIN_TOKEN") or "rsk_" + secrets.token_urlsafe(24)
        environment = {**os.environ, **(env or {}), "RISKSERVE_ADMIN_TOKEN": token}
        log = data_dir / "server.log"
        log_file = open(log, "ab")
        process = subprocess.Popen(
            [sys.executable, "-m", "riskserve", "serve", "--listen", f"{host}:{port}", "--data-dir", str(data_dir)],
            stdout=log_file, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
        log_file.close()
        server = cls(process, f"http://{host}:{port}", token, data_dir, log, temporary)
        server._wait_listening(timeout)
        return server

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "riskserve listening" in self.log():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped with status {self.process.returncode} before listening:\n"
                                   + self.log()[-4000:])
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"the server did not listen within {timeout} s:\n" + self.log()[-4000:])

    def log(self) -> str:
        """The server's output so far (stderr and stdout)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def session(self, token: Optional[str] = None):
        """A client session on this server, with the administrator's token unless another is given."""
        from riskserve.client import Session

        return Session(self.url, token or self.token)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30.0) -> int:
        """Stops the server gracefully (SIGTERM: in-flight requests finish), killing it after `timeout` seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None
        return self.process.returncode

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped ({self.process.returncode})"
        return f"<riskserve.Server {self.url} {state}, data in {self.data_dir}>"

    def _repr_html_(self) -> str:
        state = "running" if self.running else f"stopped ({self.process.returncode})"
        return (f"<div><b>riskserve.Server</b> <a href='{self.url}/api/v1/openapi.json'>{self.url}</a> "
                f"({state}, pid {self.process.pid}); data in <code>{self.data_dir}</code></div>")


