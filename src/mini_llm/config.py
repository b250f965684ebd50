"""Settings from the environment and an optional TOML file (env wins), validated once at start-up.

A setting is declared once, as a `Settings` field made by `_setting(variable, validator, default)`: its
file key is the field's name, at the file's top level or in the table it names (`[routing]`). One
validator reads both the variable's text and the file's value, so both get the same checks and the same
messages. The file's tables are decoded into msgspec Structs that refuse unknown keys: a misspelt key
stops start-up instead of being ignored in silence.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Final, Literal, TypeVar, cast
from urllib.parse import urlsplit

import msgspec

from mini_llm._flags import FlagError, parse_flag
from mini_llm.aliases import Alias, parse_aliases
from mini_llm.config_error import ConfigError, decode_table
from mini_llm.hosts import DEFAULT_PORTS, host_name, is_loopback
from mini_llm.providers import BUILTIN_PROVIDERS, MOCK, BuiltinProvider, Provider, WireProtocol

# The module's API; ConfigError is defined in config_error (which aliases needs too) and raised from here.
__all__ = [
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_BODY_DEADLINE",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_BREAKER_COOLDOWN",
    "DEFAULT_BREAKER_FAILURES",
    "DEFAULT_DRAIN_TIMEOUT",
    "DEFAULT_KEY_AUTH_COOLDOWN",
    "DEFAULT_KEY_RATE_LIMIT_COOLDOWN",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "DEFAULT_RETRIES",
    "DEFAULT_RETRY_AFTER_MAX",
    "DEFAULT_RETRY_BUDGET",
    "DEFAULT_STREAM_BUFFER_BYTES",
    "DEFAULT_UPSTREAM_IDLE_TIMEOUT",
    "DEFAULT_UPSTREAM_POOL_LIMIT",
    "DEFAULT_UPSTREAM_TIMEOUT",
    "MASK_MIN_LENGTH",
    "SHA256_PREFIX",
    "ConfigError",
    "LogFormat",
    "Settings",
    "UpstreamClient",
    "load_settings",
    "mask_key",
    "without_gateway_settings",
]

DEFAULT_PORT: Final = 3333
DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_UPSTREAM_TIMEOUT: Final = 300.0
# Each open stream holds a connection for its whole length: a sidecar carries thousands at once.
DEFAULT_UPSTREAM_POOL_LIMIT: Final = 10_000
DEFAULT_UPSTREAM_IDLE_TIMEOUT: Final = 30.0
DEFAULT_DRAIN_TIMEOUT: Final = 30.0
DEFAULT_BODY_TIMEOUT: Final = 30.0
DEFAULT_BODY_DEADLINE: Final = 120.0
DEFAULT_STREAM_BUFFER_BYTES: Final = 64 * 1024 * 1024
# The failover loop's defaults: attempts beyond the first per target, full-jitter backoff's base and cap,
# the longest retry-after waited out, the time allowed before the answer is committed, key cooldowns
# after a 401/403 and after a 429 without retry-after, and the circuit breaker's trip count and cooldown.
DEFAULT_RETRIES: Final = 2
DEFAULT_BACKOFF_BASE: Final = 0.25
DEFAULT_BACKOFF_MAX: Final = 8.0
DEFAULT_RETRY_AFTER_MAX: Final = 20.0
DEFAULT_RETRY_BUDGET: Final = 30.0
DEFAULT_KEY_AUTH_COOLDOWN: Final = 300.0
DEFAULT_KEY_RATE_LIMIT_COOLDOWN: Final = 10.0
DEFAULT_BREAKER_FAILURES: Final = 5
DEFAULT_BREAKER_COOLDOWN: Final = 30.0
_ROUTING: Final = "routing"  # the file table of the failover settings
# Keys shorter than this are shown as *** only: a prefix and the last 4 would give away too much of them.
MASK_MIN_LENGTH: Final = 20
# A gateway key entry with this prefix (any case) is the hex SHA-256 of the key, so the configuration holds
# no plaintext.
SHA256_PREFIX: Final = "sha256:"

# "fast": the gateway's own HTTP/1.1 client; "aiohttp": aiohttp's ClientSession.
UpstreamClient = Literal["fast", "aiohttp"]
_UPSTREAM_CLIENTS: Final[dict[str, UpstreamClient]] = {"fast": "fast", "aiohttp": "aiohttp"}
LogFormat = Literal["text", "json"]
_LOG_FORMATS: Final[dict[str, LogFormat]] = {"text": "text", "json": "json"}
_CUSTOM_PROTOCOLS: Final[dict[str, WireProtocol]] = {"openai": "openai", "anthropic": "anthropic"}

T = TypeVar("T")


# Validators: (the setting's name for errors, the raw value) -> the value. The raw value is the variable's
# text or the file's value in its TOML type, so each accepts both (`port = "4000"` works as `port = 4000`).


def _int_in(low: int, high: int) -> Callable[[str, Any], int]:
    def parse(setting: str, raw: Any) -> int:
        try:
            value = int(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ConfigError(setting, f"{raw!r} is not an integer in {low}..{high}")
        return value

    return parse


def _seconds(setting: str, raw: Any) -> float:
    try:
        value = float(raw) if not isinstance(raw, bool) else -1.0
    except (TypeError, ValueError):
        value = -1.0
    if not 0 <= value < 86400 * 7:
        raise ConfigError(setting, f"{raw!r} is not a number of seconds >= 0")
    return value


def _positive_seconds(setting: str, raw: Any) -> float:
    value = _seconds(setting, raw)
    if value == 0:
        raise ConfigError(setting, "must be greater than 0")
    return value


def _flag(setting: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    try:
        return parse_flag(setting, str(raw))
    except FlagError as exc:
        raise ConfigError(setting, "is not a boolean: use 1/true/yes/on or 0/false/no/off") from exc


def _host(setting: str, raw: Any) -> str:
    """The address to bind. granian binds IP addresses only and fails with a traceback on a name, so
    `localhost` means 127.0.0.1 (RFC 6761 6.3) and any other name is refused."""
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(setting, f"{raw!r} is not a host name or address")
    host = raw.strip()
    if host.lower() == "localhost":
        return "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(setting, f"{host!r} is not an IP address: bind an address such as 127.0.0.1 or ::") from None
    return host


def _one_of(choices: Mapping[str, T]) -> Callable[[str, Any], T]:
    """A parser for a setting that names one of `choices` (any case, surrounding spaces ignored)."""
    names = " or ".join(repr(name) for name in choices)

    def parse(setting: str, raw: Any) -> T:
        chosen = choices.get(raw.strip().lower()) if isinstance(raw, str) else None
        if chosen is None:
            raise ConfigError(setting, f"{raw!r} is not {names}")
        return chosen

    return parse


_upstream_client = _one_of(_UPSTREAM_CLIENTS)
_log_format = _one_of(_LOG_FORMATS)


def _url(setting: str, raw: Any) -> str:
    parts = urlsplit(raw) if isinstance(raw, str) and raw.isprintable() and " " not in raw else None
    if parts is not None and "@" in parts.netloc:
        # NOTE: the message never quotes the URL: it holds a credential. Credentials go in the key
        # settings (aiohttp would also refuse a URL login beside the Authorization header).
        raise ConfigError(setting, "must not carry a user name or password; put the key in the API key setting")
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(setting, f"{raw!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment:
        raise ConfigError(setting, f"{raw!r} must not have a query or fragment (paths are appended to it)")
    url: str = raw.rstrip("/")
    return url


def _key_list(setting: str, raw: Any, hint: str = "") -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(k, str) for k in items):
        raise ConfigError(setting, "must be a comma-separated string or a list of strings")
    keys = tuple(k.strip() for k in items)
    for index, key in enumerate(keys, 1):
        if not key:
            raise ConfigError(setting, f"entry {index} of {len(keys)} is empty")
        if not key.isascii() or not key.isprintable() or " " in key:
            # NOTE: the message never quotes the key itself.
            raise ConfigError(
                setting, f"entry {index} of {len(keys)} has spaces, control or non-ASCII characters{hint}"
            )
    return keys


def _client_key_digests(setting: str, raw: Any) -> tuple[bytes, ...]:
    """Plaintext keys are hashed here, so only digests stay in memory; `sha256:<hex>` entries already are one."""
    keys = _key_list(setting, raw)
    digests = []
    for index, key in enumerate(keys, 1):
        # `SHA256:` too: taken as plaintext, it would be a key nobody can present.
        if key[: len(SHA256_PREFIX)].lower() != SHA256_PREFIX:
            digests.append(hashlib.sha256(key.encode()).digest())
            continue
        try:
            digest = bytes.fromhex(key[len(SHA256_PREFIX) :])  # either case of hex digits
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            # NOTE: the message never quotes the entry (it may be a mistyped plaintext key).
            raise ConfigError(setting, f"entry {index} of {len(keys)} must be {SHA256_PREFIX} and 64 hex digits")
        digests.append(digest)
    return tuple(digests)


def _origin(setting: str, raw: str) -> str:
    """An origin as browsers send it (RFC 6454 6.2): lowercase scheme://host[:port], no default port."""
    parts = urlsplit(raw) if raw.isprintable() else None
    try:
        port = parts.port if parts is not None else None
    except ValueError:  # not a number, or out of range
        parts, port = None, None
    if (
        parts is None
        or parts.scheme not in DEFAULT_PORTS
        or not parts.hostname
        or host_name(parts.netloc) is None  # userinfo, or a character no host name has
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(setting, f"{raw!r} is not an origin such as https://app.example.com or http://localhost:5173")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, DEFAULT_PORTS[parts.scheme]) else "")


# Browsers send an internationalised name as its A-label (RFC 5891 4.4): a Unicode one would never match.
_PUNYCODE_HINT: Final = "; write an internationalised host name in its punycode (xn--) form"


def _origins(setting: str, raw: Any) -> tuple[str, ...]:
    return tuple(_origin(setting, entry) for entry in _key_list(setting, raw, _PUNYCODE_HINT))


def _host_names(setting: str, raw: Any) -> tuple[str, ...]:
    """Host names or addresses; a port is allowed and ignored (a Host matches on any port)."""
    entries = _key_list(setting, raw, _PUNYCODE_HINT)
    names = tuple(host_name(entry) for entry in entries)
    for index, name in enumerate(names, 1):
        if name is None:
            raise ConfigError(setting, f"entry {index} of {len(names)} is not a host name or IP address")
    return tuple(name for name in names if name is not None)


def _models(setting: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        raise ConfigError(setting, "must be a list of strings (model names)")
    return tuple(raw)


# How `config check` shows a value.


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}" if number else "none"


def _in_seconds(value: float) -> str:
    return f"{value:g}s"


def _lower(value: bool) -> str:
    return str(value).lower()


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(values) or "none"


def _key_count(digests: tuple[bytes, ...]) -> str:
    return _count(len(digests), "key")


class _Setting(msgspec.Struct, frozen=True):
    """How one `Settings` field is read: its variable, its file key, its validator, and how it is shown."""

    env: str
    key: str  # "": the field's name
    table: str  # the file table the key sits in (`routing`); "": the file's top level
    parse: Callable[[str, Any], Any]
    show: Callable[[Any], str]


_SETTING: Final = "mini_llm.setting"  # the field metadata entry that holds a field's _Setting


def _setting(
    env: str,
    parse: Callable[[str, Any], T],
    default: T,
    *,
    show: Callable[[T], str] = str,
    key: str = "",
    table: str = "",
    in_repr: bool = True,
) -> T:
    """A `Settings` field read from the variable `env`, else from the file key (the field's name unless
    `key` says; in the table `table` if given), else `default`; `parse` checks either raw value.
    """
    return field(default=default, repr=in_repr, metadata={_SETTING: _Setting(env, key, table, parse, show)})


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The whole effective configuration; immutable, parsed once per process. Fields in `config check` order."""

    host: str = _setting("MINI_LLM_HOST", _host, "127.0.0.1")
    port: int = _setting("MINI_LLM_PORT", _int_in(0, 65535), DEFAULT_PORT)
    port_retries: int = _setting("MINI_LLM_PORT_RETRIES", _int_in(0, 1000), 10)
    workers: int = _setting("MINI_LLM_WORKERS", _int_in(1, 256), 1)
    max_body_bytes: int = _setting("MINI_LLM_MAX_BODY_BYTES", _int_in(1, 2**40), DEFAULT_MAX_BODY_BYTES)
    body_timeout: float = _setting("MINI_LLM_BODY_TIMEOUT", _positive_seconds, DEFAULT_BODY_TIMEOUT, show=_in_seconds)
    body_deadline: float = _setting(
        "MINI_LLM_BODY_DEADLINE", _positive_seconds, DEFAULT_BODY_DEADLINE, show=_in_seconds
    )
    upstream_timeout: float = _setting(
        "MINI_LLM_UPSTREAM_TIMEOUT", _positive_seconds, DEFAULT_UPSTREAM_TIMEOUT, show=_in_seconds
    )
    upstream_client: Literal["fast", "aiohttp"] = _setting("MINI_LLM_UPSTREAM_CLIENT", _upstream_client, "fast")
    upstream_pool_limit: int = _setting("MINI_LLM_UPSTREAM_POOL_LIMIT", _int_in(1, 65535), DEFAULT_UPSTREAM_POOL_LIMIT)
    upstream_idle_timeout: float = _setting(
        "MINI_LLM_UPSTREAM_IDLE_TIMEOUT", _positive_seconds, DEFAULT_UPSTREAM_IDLE_TIMEOUT, show=_in_seconds
    )
    log_requests: bool = _setting("MINI_LLM_LOG_REQUESTS", _flag, False, show=_lower)
    log_format: Literal["text", "json"] = _setting("MINI_LLM_LOG_FORMAT", _log_format, "text")
    metrics: bool = _setting("MINI_LLM_METRICS", _flag, True, show=_lower)
    no_extensions: bool = _setting("MINI_LLM_NO_EXTENSIONS", _flag, False, show=_lower)
    mock_token_delay: float = _setting("MINI_LLM_MOCK_TOKEN_DELAY", _seconds, 0.0, show=_in_seconds)
    drain_timeout: float = _setting(
        "MINI_LLM_DRAIN_TIMEOUT", _positive_seconds, DEFAULT_DRAIN_TIMEOUT, show=_in_seconds
    )
    drain_delay: float = _setting("MINI_LLM_DRAIN_DELAY", _seconds, 0.0, show=_in_seconds)
    stream_buffer_bytes: int = _setting("MINI_LLM_STREAM_BUFFER_BYTES", _int_in(1, 2**40), DEFAULT_STREAM_BUFFER_BYTES)
    # SHA-256 digests of the keys clients must present; empty: no key needed. Not in repr.
    client_key_digests: tuple[bytes, ...] = _setting(
        "MINI_LLM_API_KEYS", _client_key_digests, (), show=_key_count, key="api_keys", in_repr=False
    )
    allow_unauthenticated: bool = _setting("MINI_LLM_ALLOW_UNAUTHENTICATED", _flag, False, show=_lower)
    allowed_origins: tuple[str, ...] = _setting("MINI_LLM_ALLOWED_ORIGINS", _origins, (), show=_listed)
    allowed_hosts: tuple[str, ...] = _setting("MINI_LLM_ALLOWED_HOSTS", _host_names, (), show=_listed)
    # The failover loop's limits, under [routing] in the file.
    retries: int = _setting("MINI_LLM_RETRIES", _int_in(0, 10), DEFAULT_RETRIES, table=_ROUTING)
    backoff_base: float = _setting(
        "MINI_LLM_RETRY_BACKOFF_BASE", _positive_seconds, DEFAULT_BACKOFF_BASE, show=_in_seconds, table=_ROUTING
    )
    backoff_max: float = _setting(
        "MINI_LLM_RETRY_BACKOFF_MAX", _positive_seconds, DEFAULT_BACKOFF_MAX, show=_in_seconds, table=_ROUTING
    )
    retry_after_max: float = _setting(
        "MINI_LLM_RETRY_AFTER_MAX", _seconds, DEFAULT_RETRY_AFTER_MAX, show=_in_seconds, table=_ROUTING
    )
    retry_budget: float = _setting(
        "MINI_LLM_RETRY_BUDGET", _seconds, DEFAULT_RETRY_BUDGET, show=_in_seconds, key="budget", table=_ROUTING
    )
    key_auth_cooldown: float = _setting(
        "MINI_LLM_KEY_AUTH_COOLDOWN",
        _seconds,  # 0: keys never cool (a refused key is still skipped for the rest of that request)
        DEFAULT_KEY_AUTH_COOLDOWN,
        show=_in_seconds,
        key="auth_cooldown",
        table=_ROUTING,
    )
    key_rate_limit_cooldown: float = _setting(
        "MINI_LLM_KEY_RATE_LIMIT_COOLDOWN",
        _seconds,  # 0: keys never cool (a rate-limited key is tried again after a backoff, as a retry)
        DEFAULT_KEY_RATE_LIMIT_COOLDOWN,
        show=_in_seconds,
        key="rate_limit_cooldown",
        table=_ROUTING,
    )
    breaker_failures: int = _setting(
        "MINI_LLM_BREAKER_FAILURES", _int_in(0, 1000), DEFAULT_BREAKER_FAILURES, table=_ROUTING
    )
    breaker_cooldown: float = _setting(
        "MINI_LLM_BREAKER_COOLDOWN", _positive_seconds, DEFAULT_BREAKER_COOLDOWN, show=_in_seconds, table=_ROUTING
    )
    # Read by their own functions below: each spans several variables or depends on another setting.
    aliases: Mapping[str, Alias]
    providers: Mapping[str, Provider]
    config_file: str | None

    def summary(self) -> str:
        """One log line: provider key counts (never keys), aliases and limits."""
        parts = [
            f"{p.name}={len(p.keys)} key{'s' if len(p.keys) != 1 else ''}"
            for p in self.providers.values()
            if p.name != MOCK
        ]
        return (
            f"providers: {', '.join(parts)}, mock=built-in; aliases: {len(self.aliases)}; "
            f"workers: {self.workers}; max body: {self.max_body_bytes} bytes; "
            f"upstream timeout: {self.upstream_timeout:g}s; gateway API keys: {len(self.client_key_digests)}"
        )

    def check_exposure(self) -> str | None:
        """Refuse a bind beyond loopback that nobody authenticates; the warning to log when that is on purpose.

        Raises ConfigError (start-up exits 2) when the gateway would spend its provider keys for anyone on
        the network by accident; returns the warning when MINI_LLM_ALLOW_UNAUTHENTICATED says so; else None.
        """
        if self.client_key_digests or is_loopback(host_name(self.host)):
            return None
        if not self.allow_unauthenticated:
            raise ConfigError(
                "MINI_LLM_API_KEYS",
                f"required to serve on {self.host}, beyond loopback: set it (or api_keys in the config file), or "
                "MINI_LLM_ALLOW_UNAUTHENTICATED=1 if something in front of the gateway authenticates",
            )
        return (
            f"serving on {self.host} without gateway API keys (MINI_LLM_ALLOW_UNAUTHENTICATED=1): "
            "anyone who reaches this address spends the provider keys"
        )

    def describe(self) -> str:
        """Every effective setting with the variable that sets it, then providers (keys masked) and aliases.

        For `mini-llm config check`: what the gateway would run with, safe to paste into a bug report.
        """
        rows = [
            (_file_key(table, key), spec.show(getattr(self, name)), spec.env) for name, table, key, spec in _SETTINGS
        ]
        width = max(len(key) for key, _, _ in rows)
        lines = [f"config file: {self.config_file or 'none (environment and defaults only)'}", ""]
        lines.append(f"{'setting':<{width}} {'value':<12} env var")
        lines += [f"{key:<{width}} {value:<12} {env}" for key, value, env in rows]
        lines += ["", "providers:"]
        for provider in self.providers.values():
            if provider.name == MOCK:
                lines.append(f"  {MOCK:<10} built in, both protocols, no key needed")
                continue
            keys = ", ".join(mask_key(key) for key in provider.keys)
            if not keys:
                keys = f"none (set {provider.key_setting})" if provider.key_required else "none"
            lines.append(f"  {provider.name:<10} {provider.protocol} protocol, {provider.base_url}")
            lines.append(f"  {'':<10} keys: {keys}")
            if provider.models:
                lines.append(f"  {'':<10} models: {', '.join(provider.models)}")
        lines += ["", "aliases (MINI_LLM_MODEL_ALIASES):" if self.aliases else "aliases: none"]
        lines += [f"  {name} -> {alias.describe()}" for name, alias in self.aliases.items()]
        return "\n".join(lines)


# (attribute, file table, file key, how it is read) of every field declared with _setting, in declaration order.
_SETTINGS: Final = tuple(
    (f.name, f.metadata[_SETTING].table, f.metadata[_SETTING].key or f.name, f.metadata[_SETTING])
    for f in fields(Settings)
    if _SETTING in f.metadata
)


def _file_key(table: str, key: str) -> str:
    """How errors and `config check` name a file key: `port`, `routing.retries`."""
    return f"{table}.{key}" if table else key


def _file_struct(name: str, keys: list[str], base: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A table of the file with a field per key. Every field takes any value: the validators check it, with
    the same messages as for the variable."""
    fields_ = [(key, object, msgspec.UNSET) for key in keys]
    return msgspec.defstruct(name, fields_, bases=(base,), forbid_unknown_fields=True, frozen=True)


class _FileTables(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The two tables of the file's top level that their own functions read; the validators check them."""

    aliases: object = msgspec.UNSET
    providers: object = msgspec.UNSET


# Each table of _setting fields (`[routing]`) with its Struct.
_SETTING_TABLES: Final = {
    table: _file_struct(f"{table.title()}Table", [key for _, t, key, _ in _SETTINGS if t == table], msgspec.Struct)
    for table in dict.fromkeys(table for _, table, _, _ in _SETTINGS if table)
}
# The file's top level: the two tables above, the tables of _setting fields, and its other _setting keys.
_FileSettings: Final = cast(
    "type[_FileTables]",
    _file_struct("FileSettings", [key for _, t, key, _ in _SETTINGS if not t] + list(_SETTING_TABLES), _FileTables),
)


class _ProviderTable(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`[providers.NAME]` of a built-in provider; the validators check the values."""

    api_key: object = msgspec.UNSET
    api_keys: object = msgspec.UNSET
    base_url: object = msgspec.UNSET
    models: object = msgspec.UNSET


class _CustomProviderTable(_ProviderTable, forbid_unknown_fields=True, frozen=True):
    """`[providers.NAME]` of a provider the file declares: the built-in keys and its wire protocol."""

    protocol: object = msgspec.UNSET


def mask_key(key: str) -> str:
    """Enough of a key to tell which one is configured (`sk-...abcd`), never enough to use it."""
    return f"{key[:3]}...{key[-4:]}" if len(key) >= MASK_MIN_LENGTH else "***"


def without_gateway_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` minus every variable that configures a gateway: MINI_LLM_* and the built-in providers'
    keys and URLs (OPENAI_*, ANTHROPIC_*, ...). The hot-path switch MINI_LLM_NO_EXTENSIONS stays, so
    a child started from a pure run is pure too. For children that must run on what they are given.
    """
    configuring = ("MINI_LLM_", *(f"{provider.name.upper()}_" for provider in BUILTIN_PROVIDERS))
    return {
        name: value
        for name, value in environ.items()
        if name == "MINI_LLM_NO_EXTENSIONS" or not name.startswith(configuring)
    }


def _read_file(path: str) -> dict[str, Any]:
    import tomllib  # here, not at the top: only a run with a config file pays for the parser's import

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("MINI_LLM_CONFIG", f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("MINI_LLM_CONFIG", f"{path} is not valid TOML: {exc}") from exc


def _one_form(prefix: str, many: tuple[str, object], one: tuple[str, object]) -> tuple[str, ...] | None:
    """The keys of whichever of the list and the single form is set (None: neither); both is an error.

    Picking one in silence would leave the other's keys unused, unnoticed.
    """
    (many_name, many_value), (one_name, one_value) = many, one
    if many_value is not msgspec.UNSET and one_value is not msgspec.UNSET:
        raise ConfigError(prefix + many_name, f"set either {many_name} or {one_name}, not both")
    for name, value in (many, one):
        if value is not msgspec.UNSET:
            return _key_list(prefix + name, value)
    return None


def _keys(env: Mapping[str, str], env_prefix: str, setting: str, table: _ProviderTable) -> tuple[str, ...]:
    """`<PREFIX>_API_KEYS` or `<PREFIX>_API_KEY`, else the table's `api_keys` or `api_key` (none: no keys)."""
    many, one = f"{env_prefix}_API_KEYS", f"{env_prefix}_API_KEY"
    from_env = _one_form("", (many, env.get(many, msgspec.UNSET)), (one, env.get(one, msgspec.UNSET)))
    if from_env is not None:
        return from_env
    return _one_form(f"{setting}.", ("api_keys", table.api_keys), ("api_key", table.api_key)) or ()


def _table_models(setting: str, table: _ProviderTable) -> tuple[str, ...]:
    return () if table.models is msgspec.UNSET else _models(f"{setting}.models", table.models)


def _builtin_provider(env: Mapping[str, str], setting: str, builtin: BuiltinProvider, entry: object) -> Provider:
    """`<NAME>_API_KEY(S)` and `<NAME>_BASE_URL` win over the `[providers.<name>]` table."""
    table = decode_table(setting, entry, _ProviderTable)
    prefix = builtin.name.upper()
    keys = _keys(env, prefix, setting, table)
    url_variable = f"{prefix}_BASE_URL"
    if url_variable in env:
        base_url = _url(url_variable, env[url_variable])
    elif table.base_url is not msgspec.UNSET:
        base_url = _url(f"{setting}.base_url", table.base_url)
    else:
        base_url = builtin.base_url
    return Provider(
        name=builtin.name,
        protocol=builtin.protocol,
        base_url=base_url,
        keys=keys,
        key_setting=f"{prefix}_API_KEY or {prefix}_API_KEYS",
        models=_table_models(setting, table),
    )


def _custom_provider(setting: str, name: str, entry: object) -> Provider:
    """A provider only the file declares: no variable names it, so its keys come from the file only."""
    if name == MOCK or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(setting, "provider names are letters, digits, - and _, and not 'mock'")
    if not isinstance(entry, dict) or "base_url" not in entry:
        raise ConfigError(setting, "needs a base_url")
    table = decode_table(setting, entry, _CustomProviderTable)
    keys = _keys({}, name.upper(), setting, table)
    raw_protocol = "openai" if table.protocol is msgspec.UNSET else table.protocol
    protocol = _CUSTOM_PROTOCOLS.get(raw_protocol) if isinstance(raw_protocol, str) else None
    if protocol is None:
        raise ConfigError(f"{setting}.protocol", f"{raw_protocol!r} is not 'openai' or 'anthropic'")
    return Provider(
        name=name,
        protocol=protocol,
        base_url=_url(f"{setting}.base_url", table.base_url),
        keys=keys,
        key_setting=f"{setting}.api_keys",
        key_required=False,
        models=_table_models(setting, table),
    )


def _providers(env: Mapping[str, str], prefix: str, raw: object) -> dict[str, Provider]:
    declared = {} if raw is msgspec.UNSET else raw
    if not isinstance(declared, dict):
        raise ConfigError(f"{prefix}providers", "must be a table")
    providers = {
        b.name: _builtin_provider(env, f"{prefix}providers.{b.name}", b, declared.get(b.name, {}))
        for b in BUILTIN_PROVIDERS
    }
    for name, entry in declared.items():
        if name not in providers:
            providers[name] = _custom_provider(f"{prefix}providers.{name}", name, entry)
    providers[MOCK] = Provider(MOCK, "mock", "builtin:mock", (), "", key_required=False, models=(MOCK,))
    return providers


def _aliases(
    env: Mapping[str, str], prefix: str, from_file: object, providers: Mapping[str, Provider]
) -> dict[str, Alias]:
    """MINI_LLM_MODEL_ALIASES (JSON) replaces the file's `[aliases]` table as a whole."""
    raw: Any
    if "MINI_LLM_MODEL_ALIASES" in env:
        setting = "MINI_LLM_MODEL_ALIASES"
        try:
            raw = msgspec.json.decode(env[setting] or "{}")
        except msgspec.DecodeError as exc:
            raise ConfigError(setting, f"is not valid JSON ({exc})") from exc
        if not isinstance(raw, dict):
            raise ConfigError(setting, 'must be a JSON object {"alias": "provider:model", ...}')
    else:
        setting = f"{prefix}aliases"
        raw = {} if from_file is msgspec.UNSET else from_file
    return parse_aliases(setting, raw, providers)


def _check_backoff(settings: Settings, sources: Mapping[str, str]) -> None:
    """A cap below the base leaves the base without effect: refuse the contradiction, naming what was set."""
    if settings.backoff_max < settings.backoff_base:
        setting = sources.get("backoff_max") or sources["backoff_base"]
        raise ConfigError(
            setting,
            f"the backoff cap {settings.backoff_max:g}s is below the backoff base {settings.backoff_base:g}s; "
            "the cap must be at least the base",
        )


def load_settings(env: Mapping[str, str], config_path: str | None = None) -> Settings:
    """Parse everything up front, so a bad setting stops start-up rather than a request."""
    path = env.get("MINI_LLM_CONFIG") or config_path
    file = decode_table(f"config file {path}", _read_file(path) if path else {}, _FileSettings)
    prefix = f"config file {path}: "
    tables: dict[str, object] = {"": file}
    for name, schema in _SETTING_TABLES.items():
        raw_table = getattr(file, name)
        tables[name] = decode_table(prefix + name, {} if raw_table is msgspec.UNSET else raw_table, schema)
    providers = _providers(env, prefix, file.providers)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}  # attribute -> the variable or file key it was read from
    for attribute, table, key, spec in _SETTINGS:
        if spec.env in env:
            sources[attribute] = spec.env
            values[attribute] = spec.parse(spec.env, env[spec.env])
        elif (raw := getattr(tables[table], key)) is not msgspec.UNSET:
            sources[attribute] = prefix + _file_key(table, key)
            values[attribute] = spec.parse(sources[attribute], raw)
    settings = Settings(
        **values,
        aliases=_aliases(env, prefix, file.aliases, providers),
        providers=providers,
        config_file=path,
    )
    _check_backoff(settings, sources)
    return settings
