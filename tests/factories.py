"""Small builders for test data, written through the real models."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from services import circulation as circ
from services.actor import Actor
from services.policy import LoanPolicy
from storage.db import Database
from storage.models import Channel, ClassMonitor, Copy, Endpoint, Reader, Record

# The school's default loan rules, as the services' tests lend and take back under.
POLICY = LoanPolicy()


@dataclass
class World:
    record_pks: dict[str, int]
    copy_ids: dict[str, int]
    reader_ids: dict[str, int]


def telegram_endpoint(reader_id: int, user_id: int, **fields: object) -> Endpoint:
    """A reader's own Telegram endpoint, as /bind makes it (the private chat is the user)."""
    return Endpoint(
        channel=Channel.TELEGRAM.value, address=str(user_id), reader_id=reader_id, **fields
    )


async def make_world(
    db: Database,
    *,
    records: dict[str, tuple[str, list[str]]] | None = None,
    readers: dict[str, tuple[str, str]] | None = None,
    monitors: dict[str, str] | None = None,
    clc: dict[str, str] | None = None,
) -> World:
    """records: record_id -> (title, barcodes); readers: card_no -> (name, role)."""
    records = records or {"r1": ("追风筝的人", ["B1"])}
    readers = readers or {"S1": ("张三", "student")}
    world = World({}, {}, {})
    async with db.transaction() as s:
        for record_id, (title, barcodes) in records.items():
            rec = Record(record_id=record_id, title=title, clc=(clc or {}).get(record_id))
            s.add(rec)
            await s.flush()
            world.record_pks[record_id] = rec.id
            for barcode in barcodes:
                copy = Copy(barcode=barcode, record_pk=rec.id)
                s.add(copy)
                await s.flush()
                world.copy_ids[barcode] = copy.id
        for card_no, (name, role) in readers.items():
            klass = "高一(1)班" if role == "student" else None
            reader = Reader(card_no=card_no, name=name, role=role, class_name=klass)
            s.add(reader)
            await s.flush()
            world.reader_ids[card_no] = reader.id
        for card_no, class_name in (monitors or {}).items():
            s.add(ClassMonitor(class_name=class_name, reader_id=world.reader_ids[card_no]))
    return world


async def lend(
    db: Database,
    card: str,
    barcode: str,
    *,
    now: datetime | None = None,
    policy: LoanPolicy = POLICY,
    actor: Actor | None = None,
) -> circ.CheckoutResult:
    """Lend the copy ``barcode`` to the reader with card ``card`` in a unit of work of its own,
    as ``actor`` (the desk at the server by default)."""
    async with db.transaction() as s:
        return await circ.checkout(
            s,
            card_no=card,
            barcode=barcode,
            policy=policy,
            actor=actor or Actor.cli(),
            now=now,
        )


async def give_back(
    db: Database,
    barcode: str,
    *,
    now: datetime | None = None,
    policy: LoanPolicy = POLICY,
    actor: Actor | None = None,
) -> circ.ReturnResult:
    """Take the copy ``barcode`` back in a unit of work of its own."""
    async with db.transaction() as s:
        return await circ.return_copy(
            s, actor=actor or Actor.cli(), barcode=barcode, policy=policy, now=now
        )


def sqlite_env(database: Path, **settings: str) -> dict[str, str]:
    """The environment of a `shuxiang` command on the SQLite file ``database`` (plus
    ``settings`` as SHUXIANG_* variables)."""
    return {
        "SHUXIANG_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "SHUXIANG_LOG_LEVEL": "WARNING",
        **{f"SHUXIANG_{name.upper()}": value for name, value in settings.items()},
    }


@functools.cache
def _command() -> Any:
    """`shuxiang` as a click command, built once per process: typer's CliRunner.invoke builds
    it again from the app's signatures on every call (a twentieth of the suite's CPU)."""
    import typer

    from bot.cli import app

    return typer.main.get_command(app)


def invoke(
    args: list[str],
    env: dict[str, str] | None = None,
    *,
    stdin: str | None = None,
    prog_name: str | None = None,
) -> tuple[int, str]:
    """Run a `shuxiang` command in process, as typer's CliRunner.invoke does (its isolation of
    stdin, stdout, stderr and the environment); (exit code, output). Any exception other than
    the command's exit is raised here, with its traceback."""
    from typer.testing import CliRunner

    command = _command()
    runner = CliRunner()
    with runner.isolation(input=stdin, env=env or {}) as (_, _, output):
        try:
            command.main(args=args, prog_name=prog_name or runner.get_default_prog_name(command))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
            if not isinstance(exit_.code, int | None):
                sys.stdout.write(f"{exit_.code}\n")
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        text = output.getvalue().decode(runner.charset, "replace").replace("\r\n", "\n")
    return code, text


def cli(args: list[str], env: dict[str, str], *, stdin: str | None = None) -> tuple[int, str]:
    """Run a `shuxiang` command in process; (exit code, output). A command that crashes (an
    exception other than its exit) raises it here, with its traceback."""
    return invoke(args, env, stdin=stdin)


def sample_school(database: Path, **settings: str) -> dict[str, str]:
    """The environment of a SQLite school at ``database`` with the sample catalogue and roster
    imported through the command line (plus ``settings`` as SHUXIANG_* variables)."""
    from sandbox.sample_data import CATALOGUE_CSV, READERS_CSV

    env = sqlite_env(database, **settings)
    assert cli(["import", "catalogue", str(CATALOGUE_CSV)], env)[0] == 0
    assert cli(["import", "readers", str(READERS_CSV)], env)[0] == 0
    return env
