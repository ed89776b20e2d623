"""A local Ray head for the tests and the benchmark that need one (tests/test_ray_jobs.py,
benchmarks/bench_ray.py): `ray start --head --block` on free ports with a temporary folder, in a
process group of its own, stopped by signalling that group, so that another Ray on the machine is never
touched (`ray stop` would stop every Ray of the user)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

WORKER_PORTS = range(10002, 20000)  # Ray's default range for its workers: the head's own ports stay out of it


def free_port() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in WORKER_PORTS:
            return port


def ray_command() -> str | None:
    """The `ray` script of this Python's environment, or None where Ray is not installed."""
    path = Path(sys.executable).with_name("ray")
    return str(path) if path.is_file() else shutil.which("ray")


class LocalHead:
    """`with LocalHead(num_cpus=2) as head:` ... `head.address` is the dashboard's http://127.0.0.1:PORT."""

    def __init__(self, num_cpus: int = 2, start_timeout_s: float = 120.0):
        self.num_cpus, self.start_timeout_s = num_cpus, start_timeout_s
        self.proc: subprocess.Popen | None = None
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
        self.address = ""

    def __enter__(self) -> LocalHead:
        ray = ray_command()
        if ray is None:
            raise RuntimeError("Ray is not installed here (pip install -r requirements-ray.txt).")
        dashboard = free_port()
        argv = [ray, "start", "--head", "--block", "--num-cpus", str(self.num_cpus), "--port", str(free_port()),
                "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard), "--include-dashboard", "true",
                "--ray-client-server-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
                "--temp-dir", self.temp, "--object-store-memory", str(100 * 2**20), "--disable-usage-stats"]
        # a training may wait for a CPU as long as a lesson lasts (Ray's default: 15 minutes, then it fails)
        env = dict(os.environ, RAY_JOB_START_TIMEOUT_SECONDS="86400", RAY_USAGE_STATS_ENABLED="0")
        env.pop("RAY_ADDRESS", None)
        self.log = open(Path(self.temp) / "head.log", "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.address = f"http://127.0.0.1:{dashboard}"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"ray start --head ended with exit code {self.proc.returncode}; see its log.")
            try:
                with urllib.request.urlopen(f"{self.address}/api/version", timeout=2) as r:
                    if r.status == 200 and self._cpus() >= self.num_cpus:  # its node has joined, CPUs and all
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"The local Ray head did not answer within {self.start_timeout_s:.0f} s.")

    def _cpus(self) -> float:
        from ray.util.state import list_nodes

        try:
            nodes = list_nodes(address=self.address, timeout=5, raise_on_missing_output=False)
        except Exception:  # noqa: BLE001 -- not up yet
            return 0.0
        return sum(float((n.resources_total or {}).get("CPU", 0)) for n in nodes if str(n.state) == "ALIVE")

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # ray start --block takes its processes down with it
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        if hasattr(self, "log"):
            self.log.close()
        shutil.rmtree(self.temp, ignore_errors=True)
