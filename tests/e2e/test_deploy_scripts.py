"""deploy/up.sh and deploy/down.sh on this machine's nginx, without systemd, with a stand-in for
the ``shuxiang`` command (it answers ``db upgrade`` and serves /healthz and the webhook path
checking the secret header), so the script's own work runs in seconds: the env file, the nginx
site rendered from its template and reloaded, as many workers as the machine's cores call for
(told the script by an ``nproc`` of the test's) started one at a time with pid files, a re-run
with fewer workers stopping the extra ones, and down.sh undoing it all. The bot itself
behind the same scripts: benchmarks/cluster.py and the README's deployment section.

Runs as root only, where Debian's nginx, redis-server and postgresql are installed (the script
would install them otherwise; ``make test`` installs nginx) and PostgreSQL and Redis answer;
skipped otherwise, failed under SHUXIANG_TESTS_REQUIRE_ALL=1 (CI). It starts nginx if it is not
running and leaves it running, with its own site removed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import resource_missing

ROOT = Path(__file__).resolve().parents[2]
BASH = shutil.which("bash") or "/bin/bash"

STAND_IN = textwrap.dedent(
    '''
    """The shuxiang command's stand-in: `db upgrade`, `run --webhook --listen HOST:PORT`."""
    import http.server, json, os, signal, sys

    if sys.argv[1:3] == ["db", "upgrade"]:
        sys.exit(0)
    host, _, port = sys.argv[sys.argv.index("--listen") + 1].rpartition(":")
    secret = os.environ["SHUXIANG_WEBHOOK_SECRET"]
    path = os.environ["SHUXIANG_WEBHOOK_PATH"]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/healthz":
                self.answer(200, {"ok": True, "port": int(port)})
            else:
                self.answer(404, {})

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != path:
                self.answer(404, {})
            elif self.headers.get("X-Telegram-Bot-Api-Secret-Token") != secret:
                self.answer(403, {})
            else:
                self.answer(200, {"port": int(port), "cwd": os.getcwd()})

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server.serve_forever()
    '''
)


def command(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A command of this machine's (absolute path), its output kept."""
    exe = shutil.which(argv[0])
    if exe is None:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]}: not found")
    return subprocess.run(  # noqa: S603 (our own scripts and the system's tools)
        [exe, *argv[1:]], env=env, capture_output=True, text=True, check=False
    )


def script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return command(BASH, str(ROOT / "deploy" / name), env=env)


def installed(package: str) -> bool:
    done = command("dpkg-query", "-W", "-f=${Status}", package)
    return done.stdout.strip() == "install ok installed"


def answers(*argv: str) -> bool:
    return command(*argv).returncode == 0


def free_ports(n: int) -> int:
    """The first of ``n`` consecutive ports free on 127.0.0.1."""
    for base in range(28100, 29900, 10):
        taken = False
        for port in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    taken = True
                    break
        if not taken:
            return base
    pytest.skip("no free ports")


def fetch(
    url: str, *, data: bytes | None = None, secret: str | None = None
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 (http://127.0.0.1 only)
        url, data=data, method="POST" if data is not None else "GET"
    )
    if secret is not None:
        request.add_header("X-Telegram-Bot-Api-Secret-Token", secret)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 (our own URL)
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, {}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child's child, not reaped yet) counts as gone.
    status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return status != "Z"


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[dict[str, str]]:
    if os.geteuid() != 0:
        resource_missing("deploy/up.sh writes nginx's site: root only")
    if not all(installed(p) for p in ("nginx", "redis-server", "postgresql")):
        resource_missing(
            "Debian's nginx, redis-server and postgresql are not all installed (make test "
            "installs nginx)"
        )
    if not (
        answers("pg_isready", "-h", "127.0.0.1", "-q")
        and answers("redis-cli", "-h", "127.0.0.1", "ping")
    ):
        resource_missing("PostgreSQL or Redis does not answer on 127.0.0.1")
    stand_in = tmp_path / "shuxiang-stand-in.py"
    stand_in.write_text(STAND_IN, encoding="utf-8")
    # A machine of five cores, whatever this one has: four workers by default (a core left to
    # PostgreSQL).
    machine = tmp_path / "machine"
    machine.mkdir()
    (machine / "nproc").write_text("#!/bin/sh\necho 5\n", encoding="utf-8")
    (machine / "nproc").chmod(0o755)
    base = free_ports(5)
    site = f"shuxiang-test-{os.getpid()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SHUXIANG_") and k != "WORKERS"},
        "PATH": f"{machine}{os.pathsep}{os.environ['PATH']}",
        "BASE_PORT": str(base + 1),
        "NGINX_LISTEN": f"127.0.0.1:{base}",
        "SITE": site,
        "CONF_DIR": str(tmp_path / "conf"),
        "STATE_DIR": str(tmp_path / "state"),
        "RUN_DIR": str(tmp_path / "run"),
        "LOG_DIR": str(tmp_path / "log"),
        "USE_SYSTEMD": "0",
        "APP_CMD": f"{sys.executable} {stand_in}",
        "SHUXIANG_BOT_TOKEN": "123456:DEPLOY-TEST",
        "SHUXIANG_WEBHOOK_URL": f"http://127.0.0.1:{base}/hook",
        # Given, so that the script creates no role or database of its own.
        "SHUXIANG_DATABASE_URL": "postgresql://nobody@127.0.0.1:5432/nothing",
    }
    yield env
    script("down.sh", env)


def test_up_twice_then_down(deployment: dict[str, str], tmp_path: Path) -> None:
    env = deployment
    nginx = f"http://{env['NGINX_LISTEN']}"
    ports = [int(env["BASE_PORT"]) + i for i in range(4)]
    first = ports[0]
    up = script("up.sh", env)
    assert up.returncode == 0, up.stdout + up.stderr

    env_file = tmp_path / "conf" / "env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = dict(line.split("=", 1) for line in env_file.read_text(encoding="utf-8").splitlines())
    secret = written["SHUXIANG_WEBHOOK_SECRET"].strip('"')
    assert len(secret) == 64 and written["SHUXIANG_BOT_TOKEN"] == '"123456:DEPLOY-TEST"'
    assert Path(f"/etc/nginx/sites-enabled/{env['SITE']}").exists()
    assert answers("nginx", "-t", "-q")

    status, health = fetch(f"{nginx}/healthz")
    assert status == 200 and health["ok"] is True
    assert fetch(f"{nginx}/hook", data=b"{}")[0] == 403
    assert fetch(f"{nginx}/hook", data=b"{}", secret="wrong")[0] == 403
    status, body = fetch(f"{nginx}/hook", data=b"{}", secret=secret)
    assert status == 200 and body["port"] in ports
    assert body["cwd"] == str(tmp_path / "state")
    assert fetch(f"{nginx}/elsewhere", data=b"{}", secret=secret)[0] == 404
    pids = {port: int((tmp_path / "run" / f"worker-{port}.pid").read_text()) for port in ports}
    assert all(alive(pid) for pid in pids.values())
    assert not (tmp_path / "run" / f"worker-{ports[-1] + 1}.pid").exists()

    # Again with one worker: the first restarted, the others stopped, the env file kept.
    again = script("up.sh", {**env, "WORKERS": "1"})
    assert again.returncode == 0, again.stdout + again.stderr
    assert not any(alive(pid) for pid in pids.values())
    assert not any((tmp_path / "run" / f"worker-{port}.pid").exists() for port in ports[1:])
    restarted = int((tmp_path / "run" / f"worker-{first}.pid").read_text())
    assert alive(restarted)
    assert f"SHUXIANG_WEBHOOK_SECRET={written['SHUXIANG_WEBHOOK_SECRET']}" in env_file.read_text(
        encoding="utf-8"
    )
    status, body = fetch(f"{nginx}/hook", data=b"{}", secret=secret)
    assert status == 200 and body["port"] == first

    down = script("down.sh", env)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not alive(restarted)
    assert not list((tmp_path / "run").glob("worker-*.pid"))
    assert not Path(f"/etc/nginx/sites-available/{env['SITE']}").exists()
    assert not Path(f"/etc/nginx/sites-enabled/{env['SITE']}").exists()
