"""Process and port helpers for the end-to-end suite. Everything binds 127.0.0.1; everything started is stopped
by its PID (``Procs.stop_all`` runs even when a test fails)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Sequence

import requests


def free_port() -> int:
    """A port that was free a moment ago (bind :0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60, proc: subprocess.Popen | None = None, ok=(200,)) -> None:
    """Polls ``url`` until it answers one of ``ok`` (generous timeout only to avoid hanging forever)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args!r} exited with {proc.returncode} before {url} was up")
        try:
            r = requests.get(url, timeout=2)
            if r.status_code in ok:
                return
            last = r.status_code
        except requests.RequestException as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{url} not up after {timeout}s (last: {last})")


class Procs:
    """Background processes started by a test session, each logging to its own file."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "ab")
        # own process group, so stop() also ends the children of this one process (and only those)
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
        log.close()
        proc.name = name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 20) -> None:
        """SIGTERM the process group of ``proc`` (by its PID), SIGKILL after ``timeout``."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            self.stop(proc)

    def log(self, name: str) -> str:
        p = self.logdir / f"{name}.log"
        return p.read_text(errors="replace") if p.exists() else ""


ALERTMANAGER_CONFIG = """\
route:
  receiver: 'null'
  group_wait: 1s
receivers:
  - name: 'null'
"""


class Alertmanager:
    """A real Alertmanager (Debian ``prometheus-alertmanager``) on loopback, clustering off."""

    BINARY = "prometheus-alertmanager"

    def __init__(self, procs: Procs, workdir: Path):
        self.procs = procs
        self.workdir = workdir
        self.port = free_port()
        self.proc = None

    @classmethod
    def available(cls) -> bool:
        import shutil

        return shutil.which(cls.BINARY) is not None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Alertmanager":
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "alertmanager.yml"
        cfg.write_text(ALERTMANAGER_CONFIG)
        self.proc = self.procs.spawn("alertmanager", [
            self.BINARY, f"--config.file={cfg}", f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",  # essential: no gossip on *:9094
        ])
        wait_http(self.url + "/-/ready", timeout=60, proc=self.proc)
        return self

    def alerts(self, alertname: str | None = None) -> list[dict]:
        params = {"filter": f'alertname="{alertname}"'} if alertname else {}
        r = requests.get(self.url + "/api/v2/alerts", params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def post_alert(self, labels: dict[str, str], annotations: dict[str, str] | None = None) -> None:
        """Posts one alert as a client would (used to prove the read-back path works)."""
        r = requests.post(self.url + "/api/v2/alerts",
                          json=[{"labels": labels, "annotations": annotations or {}}], timeout=10)
        r.raise_for_status()
