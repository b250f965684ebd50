"""`mini-llm smoke`: a quick end-to-end check of a running gateway, model by model."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgspec

# Tiny requests: a smoke run against real providers should cost next to nothing.
_PROMPT = [{"role": "user", "content": "Say hi."}]
_MAX_TOKENS = 5
_MISMATCH = "protocol translation is not supported"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    model: str
    outcome: str  # "pass", "FAIL" or "n/a" (the model speaks the other protocol)
    detail: str
    ms: float


class _Failed(Exception):
    """A check's failure, with a message meant for the table."""


class Unreachable(Exception):
    """Nothing answers at the URL: one line says so, instead of a table of identical failures."""


def gateway_url(url: str) -> str:
    """The base URL without a trailing slash; ValueError (a usage error) unless it is http(s)://host[:port]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--url {url!r} is not an http(s) URL with a host")
    return url.rstrip("/")


async def _json(response: aiohttp.ClientResponse) -> Any:
    body = await response.read()
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise _Failed(f"HTTP {response.status}, not JSON: {body[:80]!r}") from exc


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any], stream: bool) -> str:
    """POST and return a short description of a good answer; raise _Failed otherwise."""
    async with session.post(url, json={**body, "stream": stream}) as response:
        if response.status != 200:
            error = await _json(response)
            inner = error.get("error", {}) if isinstance(error, dict) else {}
            # The OpenAI shape carries our code; the Anthropic shape has none, so match the message.
            if inner.get("code") == "protocol_mismatch" or _MISMATCH in str(inner.get("message", "")):
                return "n/a"
            raise _Failed(f"HTTP {response.status}: {str(inner.get('message', error))[:100]}")
        if not stream:
            answer = await _json(response)
            return f"{len(msgspec.json.encode(answer))} bytes"
        events = 0
        async for line in response.content:
            events += line.startswith(b"data:")
            if b'"error"' in line and line.startswith(b"data:"):
                raise _Failed(f"in-stream error: {line[:100]!r}")
        if not events:
            raise _Failed("stream had no events")
        return f"{events} events"


async def _check(name: str, model: str, run: Callable[[], Awaitable[str]]) -> Check:
    started = time.perf_counter()
    try:
        detail = await run()
        outcome = "n/a" if detail == "n/a" else "pass"
    except _Failed as exc:
        outcome, detail = "FAIL", str(exc)
    except (aiohttp.ClientError, TimeoutError) as exc:
        outcome, detail = "FAIL", f"{type(exc).__name__}: {exc}"[:120]
    return Check(
        name, model, outcome, detail if outcome != "n/a" else "other protocol", (time.perf_counter() - started) * 1000
    )


async def run_checks(
    base: str, models: list[str] | None, request_timeout: float, api_key: str | None = None
) -> tuple[str, list[Check]]:
    """Health, models, then chat and messages (stream and not) for each given model, or else for every
    model /v1/models lists: the configured aliases, the models providers declare, and `mock`.

    `api_key` is a gateway key (MINI_LLM_API_KEYS), sent as the OpenAI SDK sends its key.
    Raises Unreachable when the health request cannot connect at all.
    """
    limits = aiohttp.ClientTimeout(total=request_timeout)
    auth = {"Authorization": f"Bearer {api_key}"} if api_key else None
    async with aiohttp.ClientSession(timeout=limits, headers=auth) as session:
        hot_path = "?"

        async def health() -> str:
            nonlocal hot_path
            try:
                response = await session.get(base + "/health")
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                raise Unreachable(f"cannot reach the gateway at {base}: {str(exc) or type(exc).__name__}") from exc
            async with response:
                payload = await _json(response)
                if response.status != 200 or not isinstance(payload, dict) or payload.get("status") != "ok":
                    raise _Failed(f"HTTP {response.status}: {payload}")
                hot_path = str(payload.get("hot_path"))
                return f"hot path {hot_path}, providers {','.join(payload.get('providers', []))}"

        listed: list[str] = []

        async def list_models() -> str:
            async with session.get(base + "/v1/models") as response:
                payload = await _json(response)
                if response.status != 200:
                    raise _Failed(f"HTTP {response.status}")
                listed.extend(str(item["id"]) for item in payload.get("data", []))
                return f"{len(listed)} models"

        checks = [await _check("health", "-", health), await _check("models", "-", list_models)]
        for model in models or listed:
            # The same minimal body is valid for both protocols.
            body = {"model": model, "messages": _PROMPT, "max_tokens": _MAX_TOKENS}
            for name, path, stream in (
                ("chat", "/v1/chat/completions", False),
                ("chat stream", "/v1/chat/completions", True),
                ("messages", "/v1/messages", False),
                ("messages stream", "/v1/messages", True),
            ):
                checks.append(await _check(name, model, functools.partial(_post, session, base + path, body, stream)))
    return hot_path, checks


def report(url: str, hot_path: str, checks: list[Check]) -> str:
    rows = [f"mini-llm smoke: {url} (hot path: {hot_path})", ""]
    width = max(len(c.model) for c in checks)
    rows.append(f"{'check':<16} {'model':<{width}} {'result':<6} {'ms':>8}  detail")
    rows += [f"{c.name:<16} {c.model:<{width}} {c.outcome:<6} {c.ms:>8.1f}  {c.detail}" for c in checks]
    failed = sum(c.outcome == "FAIL" for c in checks)
    skipped = sum(c.outcome == "n/a" for c in checks)
    counts = f"{len(checks) - failed - skipped} passed, {skipped} n/a"
    rows += ["", f"{failed} failed, {counts}" if failed else f"all checks passed ({counts})"]
    return "\n".join(rows)


def smoke(url: str, models: list[str] | None, timeout: float, api_key: str | None = None) -> tuple[str, bool]:
    """Run the checks against the base URL `url`; returns the printable table and whether every check passed."""
    hot_path, checks = asyncio.run(run_checks(url, models, timeout, api_key))
    return report(url, hot_path, checks), all(c.outcome != "FAIL" for c in checks)
