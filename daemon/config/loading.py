"""Reading the configuration: ``$ARTDAG_HOME/config.toml`` with environment overrides.

Precedence, lowest first: built-in defaults, the TOML file, ``ARTDAG_*`` environment variables,
command-line flags. Every bad value is reported with the key or variable that holds it. The keys
are the fields of the section dataclasses (``daemon.config.sections``); this module only walks
them.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import Field, fields, replace
from pathlib import Path
from typing import Any

from daemon.config.config import Config
from daemon.config.sections import ConfigError

__all__ = ["ENVIRONMENT", "FLAGS", "load_config"]

# environment variable -> (section, key)
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "ARTDAG_USER": ("node", "user"),
    "ARTDAG_DOMAIN": ("node", "domain"),
    "ARTDAG_HOST": ("http", "host"),
    "ARTDAG_PORT": ("http", "port"),
    "ARTDAG_MAX_UPLOAD_BYTES": ("http", "max_upload_bytes"),
    "ARTDAG_TLS_CERT": ("http", "tls_cert"),
    "ARTDAG_TLS_KEY": ("http", "tls_key"),
    "ARTDAG_STORE": ("store", "backend"),
    "ARTDAG_KUBO_URL": ("store", "kubo_url"),
    "ARTDAG_SYNC": ("store", "sync"),
    "ARTDAG_CHUNK_SIZE": ("import", "chunk_size"),
    "ARTDAG_CID_VERSION": ("import", "cid_version"),
    "ARTDAG_RAW_LEAVES": ("import", "raw_leaves"),
    "ARTDAG_P2P": ("p2p", "enabled"),
    "ARTDAG_LISTEN": ("p2p", "listen"),
    "ARTDAG_BOOTSTRAP": ("p2p", "bootstrap"),
    "ARTDAG_MDNS": ("p2p", "mdns"),
    "ARTDAG_DHT": ("p2p", "dht"),
    "ARTDAG_ANCHOR_CALENDARS": ("anchor", "calendars"),
    "ARTDAG_ANCHOR_HEADER_SOURCE": ("anchor", "header_source"),
    "ARTDAG_VOLUNTEER": ("volunteer", "enabled"),
    "ARTDAG_MAX_JOBS": ("volunteer", "max_jobs"),
    "ARTDAG_IDLE_LOAD": ("volunteer", "idle_load"),
    "ARTDAG_ALLOWED_EFFECTS": ("volunteer", "allowed_effects"),
    "ARTDAG_REPLICAS": ("market", "replicas"),
    "ARTDAG_LEASE_SECONDS": ("market", "lease_seconds"),
    "ARTDAG_HEARTBEAT_SECONDS": ("market", "heartbeat_seconds"),
    "ARTDAG_OFFER_WAIT_SECONDS": ("market", "offer_wait_seconds"),
    "ARTDAG_ACTIVITYPUB": ("activitypub", "enabled"),
    "ARTDAG_AP_ALLOW_HTTP_LOOPBACK": ("activitypub", "allow_http_loopback"),
    "ARTDAG_AP_ALLOW_PRIVATE_FETCH": ("activitypub", "allow_private_fetch"),
    "ARTDAG_AP_BLOCKED_DOMAINS": ("activitypub", "blocked_domains"),
    "ARTDAG_AP_FIRST_KNOCK": ("activitypub", "first_knock"),
    "ARTDAG_FOLLOW_CREATORS": ("pinning", "follow_creators"),
    "ARTDAG_POPULAR_COUNT": ("pinning", "popular_count"),
    "ARTDAG_QUOTA_BYTES": ("pinning", "quota_bytes"),
    "ARTDAG_GC_INTERVAL_SECONDS": ("pinning", "gc_interval_seconds"),
    "ARTDAG_GC_GRACE_SECONDS": ("pinning", "gc_grace_seconds"),
    "ARTDAG_GATEWAY_REQUESTS_PER_MINUTE": ("gateway", "requests_per_minute"),
    "ARTDAG_METRICS_PUBLIC": ("metrics", "public"),
}

# load_config keyword (the command-line flag, ``--max-upload-bytes``) -> (section, key)
FLAGS: dict[str, tuple[str, str]] = {
    "host": ("http", "host"),
    "port": ("http", "port"),
    "max_upload_bytes": ("http", "max_upload_bytes"),
    "store": ("store", "backend"),
    "kubo_url": ("store", "kubo_url"),
    "p2p": ("p2p", "enabled"),
    "listen": ("p2p", "listen"),
    "bootstrap": ("p2p", "bootstrap"),
    "volunteer": ("volunteer", "enabled"),
}

_DEFAULTS = Config()
# toml section -> (Config attribute, {key: its dataclass field})
_FIELDS: dict[str, tuple[str, dict[str, Field[Any]]]] = {
    getattr(_DEFAULTS, f.name).SECTION: (
        f.name,
        {k.name: k for k in fields(getattr(_DEFAULTS, f.name))},
    )
    for f in fields(Config)
    if f.name != "home"
}


def _coerce(section: str, key: str, value: Any, where: str) -> Any:
    kind = _FIELDS[section][1][key].type
    if kind == "tuple[str, ...]":
        # TOML gives a list; an environment variable or flag gives comma-separated text.
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(i.strip() for i in items if i.strip())
    if kind == "bool":
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if kind == "float":
        if isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{where}: expected a finite number, got {value!r}")
        return number
    if isinstance(value, str) and key in getattr(_DEFAULTS, _FIELDS[section][0]).MAY_BE_EMPTY:
        return value.strip()
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: not valid TOML (nested too deeply)") from None
    except ValueError as exc:  # an integer over Python's 4300-digit conversion limit
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def load_config(
    home: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    tables: Mapping[str, Mapping[str, Any]] | None = None,
    **flags: Any,
) -> Config:
    """Defaults, then ``config.toml`` in ``home``, then ``ARTDAG_*`` variables, then ``tables``
    (TOML-shaped ``{section: {key: value}}``, named ``[section] key`` in errors: the web UI's
    settings form), then ``flags`` (the names in FLAGS, named ``--flag`` in errors)."""
    env = os.environ if environ is None else environ
    home_path = Path(home or env.get("ARTDAG_HOME") or Path.home() / ".artdag").expanduser()
    values: dict[str, dict[str, Any]] = {section: {} for section in _FIELDS}
    where: dict[tuple[str, str], str] = {}

    def put(section: str, key: str, value: Any, named: str) -> None:
        where[section, key] = named
        values[section][key] = _coerce(section, key, value, named)

    def put_table(document: Mapping[str, Any], source: str) -> None:
        prefix = f"{source}: " if source else ""
        for section, table in document.items():
            if section not in _FIELDS or not isinstance(table, Mapping):
                raise ConfigError(f"{prefix}unknown section [{section}]")
            for key, value in table.items():
                if key not in _FIELDS[section][1]:
                    raise ConfigError(f"{prefix}unknown key {key!r} in [{section}]")
                put(section, key, value, f"{source} [{section}] {key}".lstrip())

    path = home_path / "config.toml"
    if path.exists():
        put_table(_read_toml(path), str(path))
    for variable, (section, key) in ENVIRONMENT.items():
        if variable in env and env[variable] != "":
            put(section, key, env[variable], variable)
    put_table(tables or {}, "")
    for flag, value in flags.items():
        if flag == "home":
            if value is not None:
                home_path = Path(value)
            continue
        if flag not in FLAGS:
            raise TypeError(f"load_config() got an unexpected keyword argument {flag!r}")
        if value is not None:
            put(*FLAGS[flag], value, f"--{flag.replace('_', '-')}")
    sections: dict[str, Any] = {
        attr: replace(getattr(_DEFAULTS, attr), **values[section])
        for section, (attr, _) in _FIELDS.items()
    }
    config = replace(_DEFAULTS, home=home_path, **sections)
    return config.check(lambda section, key: where.get((section, key), f"[{section}] {key}"))
