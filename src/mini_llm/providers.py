"""The provider table: name, wire protocol, base URL, auth style and keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

WireProtocol = Literal["openai", "anthropic", "mock"]

MOCK: Final = "mock"
DEFAULT_ANTHROPIC_VERSION: Final = "2023-06-01"


@dataclass(frozen=True, slots=True)
class BuiltinProvider:
    name: str
    protocol: WireProtocol
    base_url: str


# Base URLs follow the official SDKs: OpenAI-style ones include /v1, Anthropic's does not.
BUILTIN_PROVIDERS: Final = (
    BuiltinProvider("openai", "openai", "https://api.openai.com/v1"),
    BuiltinProvider("anthropic", "anthropic", "https://api.anthropic.com"),
    BuiltinProvider("nebius", "openai", "https://api.tokenfactory.nebius.com/v1"),
    BuiltinProvider("deepinfra", "openai", "https://api.deepinfra.com/v1/openai"),
)


@dataclass(frozen=True, slots=True)
class Provider:
    """A configured provider; `key_setting` names where its keys come from, for error messages."""

    name: str
    protocol: WireProtocol
    base_url: str
    keys: tuple[str, ...]
    key_setting: str
    key_required: bool = True
    models: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """Whether requests can go to it: it has keys, or needs none (a local server, the mock)."""
        return bool(self.keys) or not self.key_required

    def speaks(self, protocol: WireProtocol) -> bool:
        return self.protocol in (protocol, MOCK)

    def url(self, path: str) -> str:
        """Join the base URL and an endpoint path such as `/chat/completions`."""
        return self.base_url.rstrip("/") + path

    def __repr__(self) -> str:
        # NOTE: never print keys, not even in a debug repr.
        return f"Provider(name={self.name!r}, protocol={self.protocol!r}, keys={len(self.keys)})"


# One place a request may go: a provider and the model name it is sent as. A plan is a tuple of them.
Hop = tuple[Provider, str]


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes: the provider, the upstream model name and the key to use.

    `secret` is the key's bytes, what the response scrub masks (None without a key).
    """

    provider: Provider
    model: str
    key: str | None = field(repr=False)  # never in a repr, log or traceback
    secret: bytes | None = field(repr=False)  # required: a Target without it would go unscrubbed
