"""The command line's own words in Chinese: usage lines, help sections, ``--help``, and the
errors typer raises before a command runs (a missing option, a value that is not a number).

Why this way: typer 0.29 vendors click (``typer._click``) with its English written in place as
f-strings, so a gettext catalogue cannot reach most of it (only typer's own few ``_()`` calls
would be translated, and gettext would also depend on the terminal's LANG). Instead the root
command is a ``ChineseGroup``: every command under it gets a context whose help formatter writes
the headings, placeholders and ``[default: …]`` notes from the locale catalogue, and its
``main`` catches click's exceptions and prints them from the catalogue by their type and
fields, never by parsing the English. An English detail we have no words for is kept as it is
rather than dropped. Nothing global is patched: only the command objects typer builds for one
run.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from typer import _click
from typer._click import exceptions as click_errors
from typer.core import TyperGroup
from typer.exceptions import Abort

from services.i18n import catalogue, t

# typer's type checks (pydantic's messages) and path checks: English pattern → catalogue key.
VALUE_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"Input should be a valid integer"), "cli_chrome.not_int"),
    (re.compile(r"Input should be a valid (number|decimal)"), "cli_chrome.not_number"),
    (re.compile(r"Input should be a valid boolean"), "cli_chrome.not_bool"),
    (re.compile(r"Input should be greater than or equal to (?P<limit>\S+)"), "cli_chrome.at_least"),
    (re.compile(r"Input should be less than or equal to (?P<limit>\S+)"), "cli_chrome.at_most"),
    (re.compile(r"Input should be greater than (?P<limit>\S+)"), "cli_chrome.more_than"),
    (re.compile(r"Input should be less than (?P<limit>\S+)"), "cli_chrome.less_than"),
    (re.compile(r"Value (?P<value>.+) is not a valid (int|integer)\b"), "cli_chrome.not_int"),
    (re.compile(r"(?P<value>.+) is not one of (?P<choices>.+)\.$"), "cli_chrome.not_one_of"),
    (re.compile(r"^\w+ (?P<path>'.+') does not exist\."), "cli_chrome.path_missing"),
    (re.compile(r"^\w+ (?P<path>'.+') is a file\."), "cli_chrome.path_is_file"),
    (re.compile(r"^\w+ (?P<path>'.+') is a directory\."), "cli_chrome.path_is_dir"),
    (re.compile(r"^\w+ (?P<path>'.+') is not readable\."), "cli_chrome.path_not_readable"),
    (re.compile(r"^\w+ (?P<path>'.+') is not writable\."), "cli_chrome.path_not_writable"),
)
NO_SUCH_COMMAND = re.compile(
    r"No such command '(?P<name>[^']*)'\.(?: Did you mean (?P<near>.+)\?)?"
)
EXTRA_ARGS = re.compile(r"Got unexpected extra argument(?:\(s\)|s?) \((?P<args>.*)\)")
NEEDS_VALUES = re.compile(r"Option '(?P<name>[^']+)' requires (?:an argument|(?P<count>\d+) arg)")
NO_VALUE = re.compile(r"Option '(?P<name>[^']+)' does not take a value")
ARG_VALUES = re.compile(r"Argument '(?P<name>[^']+)' takes (?P<count>\d+) values")
# Placeholders in usage lines and option lists: [OPTIONS], COMMAND [ARGS]..., <int>, {card_no}.
PLACEHOLDER = re.compile(r"\b(OPTIONS|COMMAND|ARGS)\b|<(?P<type>[a-z][a-z ]*)>|\{(?P<arg>\w+)\}")
# An argument's row in the help: "card_no <文本>".
ARG_TERM = re.compile(r"^(?P<arg>\w+)(?= <|$)")
NOTE = re.compile(r"\s*\[(?P<notes>[^\[\]]*)\]$")


def _word(key: str) -> str | None:
    """The catalogue's word for ``cli_chrome.<key>``, None when it has none."""
    return catalogue().get(f"cli_chrome.{key}")


def arg_name(name: str) -> str:
    """An argument's name in Chinese (card_no → 证号) when the catalogue has one."""
    return _word(f"arg_{name}") or name


def _arg_term(match: re.Match[str]) -> str:
    return arg_name(match["arg"])


def placeholders(text: str) -> str:
    def swap(match: re.Match[str]) -> str:
        if match["type"]:
            return f"<{_word('type_' + match['type']) or match['type']}>"
        if match["arg"]:
            return f"<{arg_name(match['arg'])}>"
        return _word(f"word_{match[0]}") or match[0]

    return PLACEHOLDER.sub(swap, text)


def option_help(text: str) -> str:
    """The help column: click's own help option, and the ``[default: 5; required]`` notes."""
    if text.strip() == "Show this message and exit.":
        return t("cli_chrome.help_option")
    note = NOTE.search(text)
    if note is None:
        return text
    words = []
    for part in note["notes"].split("; "):
        if part == "required":
            words.append(t("cli_chrome.required"))
        elif part.startswith("default: "):
            words.append(t("cli_chrome.default", value=part.removeprefix("default: ")))
        elif part.startswith("env var: "):
            words.append(t("cli_chrome.env_var", value=part.removeprefix("env var: ")))
        else:
            words.append(part)
    return f"{text[: note.start()]}  [{'；'.join(words)}]"


class ChineseFormatter(_click.HelpFormatter):
    def write_usage(self, prog: str, args: str = "", prefix: str | None = None) -> None:
        super().write_usage(
            prog, placeholders(args), t("cli_chrome.usage") if prefix is None else prefix
        )

    def write_heading(self, heading: str) -> None:
        word = _word(f"heading_{heading}") or heading
        self.write(f"{'':>{self.current_indent}}{t('cli_chrome.heading', heading=word)}\n")

    def write_dl(
        self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2
    ) -> None:
        rows = [
            (ARG_TERM.sub(_arg_term, placeholders(term)), option_help(text)) for term, text in rows
        ]
        super().write_dl(rows, col_max, col_spacing)


class ChineseContext(_click.Context):
    formatter_class = ChineseFormatter


def value_message(message: str) -> str:
    for pattern, key in VALUE_MESSAGES:
        found = pattern.search(message)
        if found:
            return t(key, **found.groupdict())
    return message


def _hint(error: click_errors.BadParameter) -> str | None:
    if error.param_hint is not None:
        hint = error.param_hint
        names = [hint] if isinstance(hint, str) else list(hint)
        return " / ".join(n if n.startswith("'") else f"'{n}'" for n in names)
    if error.param is not None:
        if error.param.param_type_name == "argument":
            return f"'{arg_name(error.param.name or '')}'"
        return str(error.param.get_error_hint())
    return None


def error_message(error: click_errors.ClickException) -> str:
    """click's message for ``error`` in Chinese, from its type and fields."""
    if isinstance(error, click_errors.MissingParameter):
        kind = error.param_type or (error.param.param_type_name if error.param else "parameter")
        return t("cli_chrome.missing", kind=_word(f"param_{kind}") or kind, name=_hint(error))
    if isinstance(error, click_errors.BadParameter):
        hint = _hint(error)
        message = value_message(error.message)
        if hint is None:
            return t("cli_chrome.bad_value_plain", message=message)
        return t("cli_chrome.bad_value", name=hint, message=message)
    if isinstance(error, click_errors.NoSuchOption):
        text = t("cli_chrome.no_such_option", name=error.option_name)
        if error.possibilities:
            options = "、".join(sorted(error.possibilities))
            text += t("cli_chrome.possible_options", options=options)
        return text
    if isinstance(error, click_errors.FileError):
        return t("cli_chrome.file_error", name=error.ui_filename, message=error.message)
    return usage_message(error.message)


def usage_message(message: str) -> str:
    """The other usage errors, which click words as plain text."""
    if message == "Missing command.":
        return t("cli_chrome.missing_command")
    for pattern, key in (
        (NO_SUCH_COMMAND, "cli_chrome.no_such_command"),
        (EXTRA_ARGS, "cli_chrome.extra_args"),
        (NO_VALUE, "cli_chrome.takes_no_value"),
        (ARG_VALUES, "cli_chrome.argument_values"),
    ):
        found = pattern.search(message)
        if found:
            fields = {k: v for k, v in found.groupdict().items() if k != "near"}
            text = t(key, **fields)
            if found.groupdict().get("near"):
                text += t("cli_chrome.did_you_mean", names=found["near"].replace(", ", "、"))
            return text
    found = NEEDS_VALUES.search(message)
    if found:
        if found["count"]:
            return t("cli_chrome.needs_values", name=found["name"], count=found["count"])
        return t("cli_chrome.needs_value", name=found["name"])
    return message


def show_error(error: click_errors.ClickException) -> None:
    """What ``error.show()`` prints, in Chinese: the usage line, where help is, the error."""
    ctx = getattr(error, "ctx", None)
    if isinstance(error, click_errors.NoArgsIsHelpError):
        typer.echo(error.format_message(), err=True)
        return
    if ctx is not None:
        lines = [ctx.get_usage()]
        if ctx.command.get_help_option(ctx) is not None:
            option = ctx.help_option_names[0]
            lines.append(t("cli_chrome.try_help", command=ctx.command_path, option=option))
        typer.echo("\n".join(lines) + "\n", err=True)
    typer.echo(t("cli_chrome.error", message=error_message(error)), err=True)


def _chinese_tree(command: _click.Command) -> None:
    """Every command under ``command`` formats its help and usage in Chinese."""
    command.context_class = ChineseContext
    for child in getattr(command, "commands", {}).values():
        _chinese_tree(child)


class ChineseGroup(TyperGroup):
    """The root ``shuxiang`` group: help and click's errors in Chinese (see the module doc)."""

    context_class = ChineseContext

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        _chinese_tree(self)
        try:
            result = super().main(
                args,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
        except click_errors.ClickException as error:
            if not standalone_mode:
                raise
            show_error(error)
            _exit(error.exit_code)
        except Abort:
            if not standalone_mode:
                raise
            typer.echo(t("cli_chrome.aborted"), err=True)
            _exit(1)
        if not standalone_mode:
            return result
        # Without standalone mode typer returns an Exit's code instead of exiting with it.
        _exit(result if isinstance(result, int) else 0)


def _exit(code: int) -> NoReturn:
    sys.exit(code)
