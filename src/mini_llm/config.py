"""Settings from the environment and an optional TOML file (env wins), validated once at start-up."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

import msgspec

from mini_llm._flags import FlagError, parse_flag
from mini_llm.hosts import host_name, is_loopback
from mini_llm.providers import BUILTIN_PROVIDERS, MOCK, Provider

DEFAULT_PORT: Final = 3333
DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
DEFAULT_UPSTREAM_TIMEOUT: Final = 300.0
DEFAULT_DRAIN_TIMEOUT: Final = 30.0
DEFAULT_BODY_TIMEOUT: Final = 30.0
DEFAULT_BODY_DEADLINE: Final = 120.0
DEFAULT_STREAM_BUFFER_BYTES: Final = 64 * 1024 * 1024
TOP_LEVEL_KEYS: Final = frozenset(
    {
        "host",
        "port",
        "port_retries",
        "workers",
        "aliases",
        "max_body_bytes",
        "body_timeout",
        "body_deadline",
        "upstream_timeout",
        "log_requests",
        "no_extensions",
        "mock_token_delay",
        "drain_timeout",
        "drain_delay",
        "stream_buffer_bytes",
        "api_keys",
        "allow_unauthenticated",
        "allowed_origins",
        "allowed_hosts",
        "providers",
    }
)
BUILTIN_PROVIDER_KEYS: Final = frozenset({"api_key", "api_keys", "base_url", "models"})
# Keys shorter than this are shown as *** only: a prefix and the last 4 would give away too much of them.
MASK_MIN_LENGTH: Final = 20
CUSTOM_PROVIDER_KEYS: Final = BUILTIN_PROVIDER_KEYS | {"protocol"}
# A gateway key entry with this prefix (any case) is the hex SHA-256 of the key, so the configuration holds
# no plaintext.
SHA256_PREFIX: Final = "sha256:"
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}

T = TypeVar("T")


class ConfigError(ValueError):
    """Bad configuration; the message names the setting so start-up can print one clear line."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting


@dataclass(frozen=True, slots=True)
class Settings:
    """The whole effective configuration; immutable, parsed once per process."""

    host: str
    port: int
    port_retries: int
    workers: int
    aliases: Mapping[str, tuple[str, str]]
    max_body_bytes: int
    body_timeout: float
    body_deadline: float
    upstream_timeout: float
    log_requests: bool
    no_extensions: bool
    mock_token_delay: float
    drain_timeout: float
    drain_delay: float
    stream_buffer_bytes: int
    # SHA-256 digests of the keys clients must present; empty: no key needed. Not in repr.
    client_key_digests: tuple[bytes, ...] = field(repr=False)
    allow_unauthenticated: bool
    allowed_origins: tuple[str, ...]
    allowed_hosts: tuple[str, ...]
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
            ("host", self.host),
            ("port", str(self.port)),
            ("port_retries", str(self.port_retries)),
            ("workers", str(self.workers)),
            ("max_body_bytes", str(self.max_body_bytes)),
            ("body_timeout", f"{self.body_timeout:g}s"),
            ("body_deadline", f"{self.body_deadline:g}s"),
            ("upstream_timeout", f"{self.upstream_timeout:g}s"),
            ("log_requests", str(self.log_requests).lower()),
            ("no_extensions", str(self.no_extensions).lower()),
            ("mock_token_delay", f"{self.mock_token_delay:g}s"),
            ("drain_timeout", f"{self.drain_timeout:g}s"),
            ("drain_delay", f"{self.drain_delay:g}s"),
            ("stream_buffer_bytes", str(self.stream_buffer_bytes)),
            ("api_keys", _count(len(self.client_key_digests), "key")),
            ("allow_unauthenticated", str(self.allow_unauthenticated).lower()),
            ("allowed_origins", ", ".join(self.allowed_origins) or "none"),
            ("allowed_hosts", ", ".join(self.allowed_hosts) or "none"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"config file: {self.config_file or 'none (environment and defaults only)'}", ""]
        lines.append(f"{'setting':<{width}} {'value':<12} env var")
        lines += [f"{name:<{width}} {value:<12} MINI_LLM_{name.upper()}" for name, value in rows]
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
        lines += [f"  {alias} -> {provider}:{model}" for alias, (provider, model) in self.aliases.items()]
        return "\n".join(lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}" if number else "none"


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


class _Source:
    """Looks a setting up in the env first, then in the config file, and names it in errors."""

    def __init__(self, env: Mapping[str, str], file: Mapping[str, Any], prefix: str) -> None:
        self.env = env
        self.file = file
        self.prefix = prefix  # names a file key in errors: "config file X: " or "config file X: providers.openai."

    def get(self, env_name: str, file_key: str, parse: Callable[[str, Any], T], default: T) -> T:
        if env_name in self.env:
            return parse(env_name, self.env[env_name])
        if file_key in self.file:
            return parse(self.prefix + file_key, self.file[file_key])
        return default


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
    if not isinstance(raw, str) or not raw.strip():
        raise ConfigError(setting, f"{raw!r} is not a host name or address")
    return raw.strip()


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
        or parts.scheme not in _DEFAULT_PORTS
        or not parts.hostname
        or host_name(parts.netloc) is None  # userinfo, or a character no host name has
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(setting, f"{raw!r} is not an origin such as https://app.example.com or http://localhost:5173")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, _DEFAULT_PORTS[parts.scheme]) else "")


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


def _known_keys(setting: str, table: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """A misspelt key in the file would otherwise be ignored in silence."""
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(setting, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError("MINI_LLM_CONFIG", f"cannot read {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("MINI_LLM_CONFIG", f"{path} is not valid TOML: {exc}") from exc


def _table(source: _Source, key: str) -> Mapping[str, Any]:
    value = source.file.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(source.prefix + key, "must be a table")
    return value


def _provider_keys(sub: _Source, env_prefix: str) -> tuple[str, ...]:
    """`<PREFIX>_API_KEYS` or `<PREFIX>_API_KEY`, else the file's `api_keys` or `api_key`: one form only.

    Both forms at once is an error: picking one in silence would leave the other's keys unused, unnoticed.
    """
    for source, many, one in (
        (sub.env, f"{env_prefix}_API_KEYS", f"{env_prefix}_API_KEY"),
        (sub.file, "api_keys", "api_key"),
    ):
        prefix = "" if source is sub.env else sub.prefix
        if many in source and one in source:
            raise ConfigError(prefix + many, f"set either {many} or {one}, not both")
        for name in (many, one):
            if name in source:
                return _key_list(prefix + name, source[name])
    return ()


def _providers(source: _Source) -> dict[str, Provider]:
    declared = _table(source, "providers")
    providers: dict[str, Provider] = {}
    for builtin in BUILTIN_PROVIDERS:
        prefix = builtin.name.upper()
        entry = declared.get(builtin.name, {})
        if not isinstance(entry, dict):
            raise ConfigError(f"{source.prefix}providers.{builtin.name}", "must be a table")
        _known_keys(f"{source.prefix}providers.{builtin.name}", entry, BUILTIN_PROVIDER_KEYS)
        sub = _Source(source.env, entry, f"{source.prefix}providers.{builtin.name}.")
        keys = _provider_keys(sub, prefix)
        providers[builtin.name] = Provider(
            name=builtin.name,
            protocol=builtin.protocol,
            base_url=sub.get(f"{prefix}_BASE_URL", "base_url", _url, builtin.base_url),
            keys=keys,
            key_setting=f"{prefix}_API_KEY or {prefix}_API_KEYS",
            models=_models(sub.prefix + "models", entry.get("models", [])),
        )
    for name, entry in declared.items():
        if name in providers:
            continue
        setting = f"{source.prefix}providers.{name}"
        if name == MOCK or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(setting, "provider names are letters, digits, - and _, and not 'mock'")
        if not isinstance(entry, dict) or "base_url" not in entry:
            raise ConfigError(setting, "needs a base_url")
        _known_keys(setting, entry, CUSTOM_PROVIDER_KEYS)
        # Custom providers take keys from the file only (an empty env: no variable names them).
        keys = _provider_keys(_Source({}, entry, setting + "."), name.upper())
        protocol = entry.get("protocol", "openai")
        if protocol not in ("openai", "anthropic"):
            raise ConfigError(f"{setting}.protocol", f"{protocol!r} is not 'openai' or 'anthropic'")
        providers[name] = Provider(
            name=name,
            protocol=protocol,
            base_url=_url(f"{setting}.base_url", entry["base_url"]),
            keys=keys,
            key_setting=f"{setting}.api_keys",
            key_required=False,
            models=_models(f"{setting}.models", entry.get("models", [])),
        )
    providers[MOCK] = Provider(MOCK, "mock", "builtin:mock", (), "", key_required=False, models=(MOCK,))
    return providers


def _aliases(source: _Source, providers: Mapping[str, Provider]) -> dict[str, tuple[str, str]]:
    raw: Any
    if "MINI_LLM_MODEL_ALIASES" in source.env:
        setting = "MINI_LLM_MODEL_ALIASES"
        try:
            raw = msgspec.json.decode(source.env[setting] or "{}")
        except msgspec.DecodeError as exc:
            raise ConfigError(setting, f"is not valid JSON ({exc})") from exc
    else:
        setting = f"{source.prefix}aliases"
        raw = _table(source, "aliases")
    if not isinstance(raw, dict):
        raise ConfigError(setting, 'must be a JSON object {"alias": "provider:model"}')
    aliases: dict[str, tuple[str, str]] = {}
    for alias, target in raw.items():
        provider, sep, model = target.partition(":") if isinstance(target, str) else ("", "", "")
        if not alias or not sep or not model:
            raise ConfigError(setting, f"alias {alias!r} must map to 'provider:model', got {target!r}")
        if provider not in providers:
            known = ", ".join(sorted(providers))
            raise ConfigError(setting, f"alias {alias!r} names unknown provider {provider!r} (known: {known})")
        aliases[alias] = (provider, model)
    return aliases


def load_settings(env: Mapping[str, str], config_path: str | None = None) -> Settings:
    """Parse everything up front, so a bad setting stops start-up rather than a request."""
    path = env.get("MINI_LLM_CONFIG") or config_path
    file = _read_file(path) if path else {}
    _known_keys(f"config file {path}", file, TOP_LEVEL_KEYS)
    source = _Source(env, file, f"config file {path}: ")
    providers = _providers(source)
    return Settings(
        host=source.get("MINI_LLM_HOST", "host", _host, "127.0.0.1"),
        port=source.get("MINI_LLM_PORT", "port", _int_in(0, 65535), DEFAULT_PORT),
        port_retries=source.get("MINI_LLM_PORT_RETRIES", "port_retries", _int_in(0, 1000), 10),
        workers=source.get("MINI_LLM_WORKERS", "workers", _int_in(1, 256), 1),
        aliases=_aliases(source, providers),
        max_body_bytes=source.get(
            "MINI_LLM_MAX_BODY_BYTES", "max_body_bytes", _int_in(1, 2**40), DEFAULT_MAX_BODY_BYTES
        ),
        body_timeout=source.get("MINI_LLM_BODY_TIMEOUT", "body_timeout", _positive_seconds, DEFAULT_BODY_TIMEOUT),
        body_deadline=source.get("MINI_LLM_BODY_DEADLINE", "body_deadline", _positive_seconds, DEFAULT_BODY_DEADLINE),
        upstream_timeout=source.get(
            "MINI_LLM_UPSTREAM_TIMEOUT", "upstream_timeout", _positive_seconds, DEFAULT_UPSTREAM_TIMEOUT
        ),
        log_requests=source.get("MINI_LLM_LOG_REQUESTS", "log_requests", _flag, False),
        no_extensions=source.get("MINI_LLM_NO_EXTENSIONS", "no_extensions", _flag, False),
        mock_token_delay=source.get("MINI_LLM_MOCK_TOKEN_DELAY", "mock_token_delay", _seconds, 0.0),
        drain_timeout=source.get("MINI_LLM_DRAIN_TIMEOUT", "drain_timeout", _positive_seconds, DEFAULT_DRAIN_TIMEOUT),
        drain_delay=source.get("MINI_LLM_DRAIN_DELAY", "drain_delay", _seconds, 0.0),
        stream_buffer_bytes=source.get(
            "MINI_LLM_STREAM_BUFFER_BYTES", "stream_buffer_bytes", _int_in(1, 2**40), DEFAULT_STREAM_BUFFER_BYTES
        ),
        client_key_digests=source.get("MINI_LLM_API_KEYS", "api_keys", _client_key_digests, ()),
        allow_unauthenticated=source.get("MINI_LLM_ALLOW_UNAUTHENTICATED", "allow_unauthenticated", _flag, False),
        allowed_origins=source.get("MINI_LLM_ALLOWED_ORIGINS", "allowed_origins", _origins, ()),
        allowed_hosts=source.get("MINI_LLM_ALLOWED_HOSTS", "allowed_hosts", _host_names, ()),
        providers=providers,
        config_file=path,
    )
