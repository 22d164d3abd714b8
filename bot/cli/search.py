"""``shuxiang search``: search the catalogue from the command line.

``shuxiang search QUERY`` prints a readable list. ``shuxiang search --json`` without QUERY reads
one query per line from stdin and writes one JSON object per line, in order, flushed per line:
``{"query", "results": [{"record_id", "title", "author", "score"}], "took_ms", "cpu_ms",
"suggestions": [{"record_id", "title", "author", "isbn"}]}`` ("did you mean", when nothing
matched). Other programs (the benchmark, scripts) rely on that contract; ``took_ms`` is the time
the search took inside this process, measured after jieba and the library dictionary were loaded;
``cpu_ms`` the processor time it used (all threads: on a busy machine it stays what the search
costs while ``took_ms`` grows with the wait).
"""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Annotated, Any

import typer

from bot.cli.runtime import configure_logging, run_with_db, settings_or_exit
from services.i18n import t
from services.titles import book_name
from storage.db import Database

# Warm-up queries: one per code path, so the first real query pays no first-use costs.
_WARM_UP_QUERIES = ("预热", "yure", "9787544270878", "I247.5", "I247.5/Y75")


def _year(pub_date: str | None) -> str | None:
    return pub_date[:4] if pub_date and pub_date[:4].isdigit() else None


def _render(result: Any) -> str:
    if result.kind == "empty":
        return t("cli_search.empty")
    if not result.hits:
        lines = [t("cli_search.miss", query=result.query)]
        if result.suggestions:
            lines.append(t("search_suggest.did_you_mean"))
        for s in result.suggestions:
            author = f" {s.author}" if s.author else ""
            isbn = s.isbn if result.kind == "isbn" and s.isbn else ""
            lines.append(t("search_suggest.suggestion", title=s.title, author=author, isbn=isbn))
        return "\n".join(line.rstrip() for line in lines)
    key = "cli_search.class_header" if result.kind == "clc" else "cli_search.header"
    header = t(key, query=result.query, total=result.total)
    lines = [header]
    for n, hit in enumerate(result.hits, 1):
        lines.append(
            f"{n}. {book_name(hit.title, hit.subtitle)}" + (f"  {hit.author}" if hit.author else "")
        )
        details = []
        year = _year(hit.pub_date)
        if hit.publisher or year:
            details.append(" ".join(part for part in (hit.publisher, year) if part))
        if hit.call_number:
            details.append(t("cli_search.call_number", call_number=hit.call_number))
        details.append(t("cli_search.available", on_shelf=hit.on_shelf, copies=hit.copies))
        lines.append("   " + " · ".join(details))
    return "\n".join(lines)


def _json_line(query: str, result: Any, took_ms: float, cpu_ms: float) -> str:
    return json.dumps(
        {
            "query": query,
            "results": [
                {
                    "record_id": hit.record_id,
                    "title": hit.title,
                    "author": hit.author,
                    "score": hit.score,
                }
                for hit in result.hits
            ],
            "took_ms": round(took_ms, 3),
            "cpu_ms": round(cpu_ms, 3),
            "suggestions": [
                {"record_id": s.record_id, "title": s.title, "author": s.author, "isbn": s.isbn}
                for s in result.suggestions
            ],
        },
        ensure_ascii=False,
    )


def _utf8(stream: IO[str]) -> None:
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(encoding="utf-8", errors="replace")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""

    @app.command("search", help=t("cli_search.help"))
    def search_command(
        query: Annotated[str | None, typer.Argument(help=t("cli_search.help_query"))] = None,
        as_json: Annotated[bool, typer.Option("--json", help=t("cli_search.help_json"))] = False,
        limit: Annotated[
            int, typer.Option("--limit", min=1, max=200, help=t("cli_search.help_limit"))
        ] = 10,
        offset: Annotated[
            int, typer.Option("--offset", min=0, help=t("cli_search.help_offset"))
        ] = 0,
    ) -> None:
        """Search the catalogue; with --json and no QUERY, one JSON line per stdin line."""
        settings = settings_or_exit()
        configure_logging(settings)
        engine = settings.search_engine()
        _utf8(sys.stdout)
        _utf8(sys.stdin)

        async def run_one(db: Database, text: str) -> tuple[Any, float, float]:
            started, cpu = time.perf_counter(), time.process_time()
            async with db.transaction(read_only=True) as session:
                result = await engine.search(session, text, limit=limit, offset=offset)
            took_ms = (time.perf_counter() - started) * 1000
            return result, took_ms, (time.process_time() - cpu) * 1000

        def emit(text: str, result: Any, took_ms: float, cpu_ms: float) -> None:
            out = _json_line(text, result, took_ms, cpu_ms) if as_json else _render(result)
            sys.stdout.write(out + "\n")
            sys.stdout.flush()

        async def body(db: Database) -> None:
            async with db.transaction(read_only=True) as session:
                await engine.warm_up(session)
            for text in _WARM_UP_QUERIES:
                await run_one(db, text)
            if query is not None:
                emit(query, *await run_one(db, query))
                return
            while True:
                line = sys.stdin.readline()
                if not line:
                    break
                text = line.rstrip("\r\n")
                emit(text, *await run_one(db, text))

        run_with_db(settings, body)
