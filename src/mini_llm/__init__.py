"""mini-llm: a small, very fast LLM API gateway."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mini_llm.sdk import AsyncGateway, Gateway, GatewayStartError

__version__ = "0.1.0"
__all__ = ["AsyncGateway", "Gateway", "GatewayStartError", "__version__"]

_SDK_NAMES = frozenset({"AsyncGateway", "Gateway", "GatewayStartError"})


def __getattr__(name: str) -> Any:
    """Import the SDK on first use only: the gateway's workers and the CLI import this package too."""
    if name in _SDK_NAMES:
        from mini_llm import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
