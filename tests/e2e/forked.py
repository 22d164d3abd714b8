"""`shuxiang …` as real processes without paying Python's imports for each one.

Importing aiogram's types costs seconds of CPU (pydantic builds some 300 models), and the
process tests start a dozen `shuxiang run`s. A fork server imports the bot once; each run is a
child forked from it before any event loop, thread or connection exists, with the test's own
environment, argv, and stdout/stderr going to a file. The child is the real command line
(``bot.cli.main``): its settings are read from the environment it was given, its exit code is
what ``main`` exits with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

SERVER = """
import json, os, signal, sys
import bot.app, bot.cli, bot.cli.run  # the imports every child would repeat
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.environ.clear()
        os.environ.update(job["env"])
        out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        quiet = os.open(os.devnull, os.O_RDONLY)
        os.dup2(quiet, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        sys.argv = job["argv"]
        code = 1
        try:
            bot.cli.main()
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            with open(job["out"] + ".rc", "w") as rc:
                rc.write(str(code))
            os._exit(code)
    print(pid, flush=True)
"""


class ForkedProcess:
    """The little of asyncio.subprocess.Process the tests use, for a forked child."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.returncode: int | None = None

    def send_signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    async def wait(self) -> None:
        """Until the child is gone (the fork server's kernel-reaped child leaves no zombie)."""
        while True:  # another process: nothing here can signal its end
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return
            await asyncio.sleep(0.02)

    async def communicate(self) -> tuple[bytes, None]:
        """Wait until the child has exited; its output (stdout and stderr together)."""
        rc = self.out.with_name(self.out.name + ".rc")
        # Another process's file: nothing in this loop can signal it.
        while not rc.exists() or not rc.read_text():  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        self.returncode = int(rc.read_text())
        return self.out.read_bytes(), None


class ForkServer:
    """One per test session (a plain subprocess, so no event loop owns it)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.runs = 0
        # Our own interpreter running our own script.
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def run(self, argv: list[str], env: dict[str, str]) -> ForkedProcess:
        """Start ``shuxiang *argv`` with exactly ``env`` as its environment."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.runs += 1
        out = self.folder / f"run-{self.runs}.out"
        job = {"argv": ["shuxiang", *argv], "env": env, "out": str(out)}
        self.process.stdin.write(json.dumps(job).encode() + b"\n")
        self.process.stdin.flush()
        return ForkedProcess(int(self.process.stdout.readline()), out)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
