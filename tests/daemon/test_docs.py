"""The documentation stays true of the code: every ``config.toml`` key in
docs/configuration.md with its type, default and environment variable, and every
``artdag`` command line shown in the README and the docs one the real CLI accepts."""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import pytest

from daemon.cli import main
from daemon.config import ENVIRONMENT, Config

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
DOCS_WITH_COMMANDS = [
    ROOT / "README.md",
    ROOT / "docs" / "guide.md",
    ROOT / "docs" / "operating.md",
    ROOT / "docs" / "recipes.md",
]
TOML_TYPES = {
    "str": "string",
    "int": "integer",
    "float": "float",
    "bool": "boolean",
    "tuple[str, ...]": "list",
}


def documented_keys() -> dict[tuple[str, str], tuple[str, str, str]]:
    """``(section, key) -> (type, default, environment)`` from the tables of the doc."""
    rows: dict[tuple[str, str], tuple[str, str, str]] = {}
    section = None
    for line in CONFIGURATION.read_text().splitlines():
        heading = re.match(r"### `\[(\w+)\]`", line)
        if heading:
            section = heading.group(1)
            continue
        row = re.match(r"\| `(\w+)` \| (\w+) \| (.*?) \| (.*?) \|", line)
        if row and section:
            rows[section, row.group(1)] = (row.group(2), row.group(3), row.group(4).strip("`"))
    return rows


def config_keys() -> dict[tuple[str, str], tuple[str, Any]]:
    """``(section, key) -> (type, default)`` of the real configuration."""
    defaults = Config()
    keys = {}
    for attribute in fields(Config):
        if attribute.name == "home":
            continue
        section = getattr(defaults, attribute.name)
        for key in fields(section):
            keys[section.SECTION, key.name] = (str(key.type), getattr(section, key.name))
    return keys


def shows_default(text: str, value: Any) -> bool:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`" in text
    if isinstance(value, int | float):
        return f"`{value:g}`" in text or f"`{int(value)}`" in text
    if isinstance(value, str):
        return f"`{value}`" in text if value else '`""`' in text
    if not value:
        return "`[]`" in text
    return all(f"`{item}`" in text or f'"{item}"' in text for item in value)


def test_every_config_key_is_documented_as_the_code_has_it() -> None:
    documented, real = documented_keys(), config_keys()
    assert sorted(documented) == sorted(real)
    environment = {target: variable for variable, target in ENVIRONMENT.items()}
    for key, (kind, default) in real.items():
        doc_kind, doc_default, doc_variable = documented[key]
        assert doc_kind == TOML_TYPES[kind], key
        assert shows_default(doc_default, default), (key, doc_default, default)
        assert doc_variable == environment.get(key, "—"), key


def command_lines() -> list[tuple[str, list[str]]]:
    """Every ``./artdag ...`` or ``artdag ...`` line of an indented or fenced example."""
    found = []
    for path in DOCS_WITH_COMMANDS:
        fenced = False
        for line in path.read_text().splitlines():
            if line.startswith("```"):
                fenced = not fenced
                continue
            if not (fenced or line.startswith("    ")):
                continue
            match = re.match(r"\s*(?:\./)?artdag ([a-z][\w-]*(?: .*)?)$", line)
            if match is None:
                continue
            text = match.group(1).split(" #")[0].split(" | ")[0].split(" > ")[0]
            text = re.sub(r"\[([^\]]*)\]", r"\1", text.rstrip(" \\"))  # [--run]: optional
            found.append((f"{path.name}: {line.strip()}", shlex.split(text)))
    return found


@pytest.mark.parametrize("where,words", command_lines(), ids=lambda v: str(v)[:60])
def test_documented_command_lines_parse(where: str, words: list[str]) -> None:
    """The command (and subcommand) exists and click accepts every option shown, without
    running it; placeholders like <CID> are arguments like any other."""
    command: click.Command = main
    context = click.Context(main, info_name="artdag")
    while isinstance(command, click.Group) and words and not words[0].startswith("-"):
        name = words.pop(0)
        sub = command.get_command(context, name)
        assert sub is not None, f"{where}: no command {name!r}"
        command = sub
    try:
        command.make_context(command.name, list(words), resilient_parsing=False)
    except click.exceptions.Exit:
        pass
    except click.UsageError as exc:
        pytest.fail(f"{where}: {exc}")
