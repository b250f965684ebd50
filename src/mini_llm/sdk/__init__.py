"""Run mini-llm from Python: a gateway (or the mock provider) as a managed child process."""

from __future__ import annotations

from mini_llm.sdk._managed import AsyncGateway, Gateway, MockUpstream
from mini_llm.sdk._supervisor import GatewayStartError

__all__ = ["AsyncGateway", "Gateway", "GatewayStartError", "MockUpstream"]
