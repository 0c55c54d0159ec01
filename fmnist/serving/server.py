"""Start the real app (python app.py) on a free loopback port, for the tests and the benchmarks that talk to it,
and stop it after. app_dir: another checkout's app (a before/after comparison), run with this Python."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(log_path, app_dir=None, started: list | None = None, **env_overrides):
    """Yields the app's URL once it answers; started, when given, receives the app's process."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "FMNIST_HUB_REPO"}
    env |= {
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **env_overrides,
    }
    with open(log_path, "w") as log:
        app_dir = Path(app_dir or ROOT)
        proc = subprocess.Popen(
            [sys.executable, str(app_dir / "app.py")], cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        if started is not None:
            started.append(proc)
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app.py exited with {proc.returncode}:\n" + open(log_path).read()[-3000:])
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    proc.kill()
                    tail = open(log_path).read()[-3000:]
                    raise RuntimeError("app.py did not answer within 180 s:\n" + tail) from None
                time.sleep(0.5)
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
