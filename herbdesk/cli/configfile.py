"""The `--config` TOML file: read and checked against what each table takes, before any use.

A wrong type, a misspelt key or an unknown table is a `ConfigError` whose one-line message
names the file, the table and the key (the CLI makes it a usage error, exit 2): a misspelt
key silently ignored would run with a default the user thinks they changed, and a wrong type
found later would be a traceback.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from herbdesk.monitor.alerts import ALERT_KEYS
from herbdesk.monitor.validation import ValidationConfig

# kind of value: "int", "number", "bool", "string", "strings" (a string or a list of them),
# "any" (checked where it is used, e.g. the [alerts] channels)
_KIND_NAMES = {
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "string": "a string",
    "strings": "a string or a list of strings",
}
_PY_KINDS = {int: "int", float: "number", bool: "bool", str: "string"}
SCHEMA: dict[str, dict[str, str]] = {
    "run": {
        "inputs": "strings",
        "engine": "string",
        "model": "string",
        "base_url": "string",
        "prompt_path": "string",
        "max_side": "int",
        "timeout_s": "number",
        "concurrency": "int",
        "limit": "int",
        "out_dir": "string",
        "max_attempts": "int",
        "requests_per_minute": "number",
        "budget_usd": "number",
    },
    "validation": {f.name: _PY_KINDS[type(f.default)] for f in fields(ValidationConfig)},
    "quality": {
        "require": "string",
        "catalog_pattern": "string",
        "gold": "string",
        "checklist": "string",
    },
    "alerts": {
        **dict.fromkeys(ALERT_KEYS, "any"),
        **dict.fromkeys(("stall_minutes", "rate_window_minutes", "retry_backoff_s"), "number"),
        "timeout_s": "number",
        "rate_limit": "int",
        "max_attempts": "int",
    },
}


class ConfigError(ValueError):
    """A config file that cannot be used, with a one-line message naming file and key."""


def _fits(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if isinstance(value, bool):  # TOML's true is no count and no rate
        return False
    if kind == "int":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, int | float)
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(v, str) for v in value)
    )


def _unknown(path: Path, where: str, key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return ConfigError(f"{path}: {where}{key}: unknown key ({hint}known: {', '.join(known)})")


def check_config(conf: dict[str, Any], path: Path) -> dict[str, Any]:
    """`conf` checked against SCHEMA; `inputs` given as one string becomes a list of one."""
    for table, value in conf.items():
        if table not in SCHEMA:
            if isinstance(value, dict):
                known = ", ".join(f"[{t}]" for t in SCHEMA)
                raise ConfigError(f"{path}: [{table}]: unknown table (known: {known})")
            raise _unknown(path, "", table, [f"[{t}]" for t in SCHEMA])
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: [{table}] must be a table, got {value!r}")
        kinds = SCHEMA[table]
        for key, item in value.items():
            if key not in kinds:
                raise _unknown(path, f"[{table}] ", key, list(kinds))
            kind = kinds[key]
            if not _fits(item, kind):
                raise ConfigError(
                    f"{path}: [{table}] {key}: expected {_KIND_NAMES[kind]}, got {item!r}"
                )
    run = conf.get("run")
    if isinstance(run, dict) and isinstance(run.get("inputs"), str):
        run["inputs"] = [run["inputs"]]
    return conf


def load_config(path: Path | None) -> dict[str, Any]:
    """The checked tables of the TOML file at `path` ({} without one); ConfigError if unusable."""
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            conf = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config {path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read config {path}: not valid TOML: {exc}") from exc
    return check_config(conf, path)
