"""`mini-llm serve`'s main process imports only what starting granian needs: every module costs cold start.

What the main process imported before it hands over to granian is read from CPython's own import
log (PYTHONPROFILEIMPORTTIME: one stderr line per module, in import order) up to the gateway's
start-up line, which the main process logs just before it starts granian; the worker, forked later,
logs its imports after that line. What the main process loaded once the gateway is up is read from
the files Linux maps into it (/proc/PID/maps). No timing is asserted: speed is measured in
benchmarks/e2e.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.fake_upstream import OPENAI_KEYS, FakeUpstream
from tests.e2e.gateway_process import GatewayProcess, write_config
from tests.e2e.http_client import request

# The line `mini-llm serve` logs right before it starts granian (cli._serve).
START_UP_LINE = re.compile(r" INFO mini_llm: mini-llm \S+, hot path: ")
# aiohttp and the packages that come with it; the developer tools and the SDK, which `serve` never runs;
# standard modules `serve` has no use for: the TOML parser without a config file, json without a
# ready file, and the HTTP/e-mail stack of urllib.
NOT_FOR_SERVE = (
    *("aiohttp", "yarl", "multidict", "propcache", "frozenlist", "aiosignal"),
    *("mini_llm.tools", "mini_llm.sdk", "mini_llm.upstream.aiohttp_client"),
    *("tomllib", "json", "http.client", "urllib.request", "email", "importlib.metadata"),
)
# Mapped files of that stack, and unicodedata: the idna codec's tables, which a getaddrinfo() on a
# str host imports (the readiness probe connects to the bound address, which needs no name lookup).
NOT_MAPPED = ("/aiohttp/", "/yarl/", "/multidict/", "/propcache/", "/frozenlist/", "/unicodedata.")
CLIENTS = pytest.mark.parametrize("client", ["fast", "aiohttp"])


def _serve(upstream: FakeUpstream, client: str, **extra: str) -> GatewayProcess:
    env = {
        "OPENAI_API_KEY": OPENAI_KEYS[0],
        "OPENAI_BASE_URL": f"{upstream.base}/v1",
        "MINI_LLM_UPSTREAM_CLIENT": client,
        "PYTHONPROFILEIMPORTTIME": "1",
        **extra,
    }
    gateway = GatewayProcess(env).start()
    assert request(gateway.url, "GET", "/health").json()["upstream_clients"]["openai"] == client
    return gateway


def _imported_before_granian(gateway: GatewayProcess) -> list[str]:
    """The modules the main process imported before its start-up line, in order."""
    lines = list(gateway.lines)
    end = next(index for index, line in enumerate(lines) if START_UP_LINE.search(line))
    rows = [line.split("|") for line in lines[:end] if line.startswith("import time:")]
    return [row[2].strip() for row in rows if len(row) == 3 and row[0].split(":")[1].strip().isdigit()]


def _unwanted(modules: list[str]) -> list[str]:
    return [name for name in modules if any(name == bad or name.startswith(f"{bad}.") for bad in NOT_FOR_SERVE)]


def _mapped_files(pid: int) -> set[str]:
    """The paths of the files mapped into the process (the sixth column, where there is one)."""
    with open(f"/proc/{pid}/maps") as maps:
        fields = [line.split(maxsplit=5) for line in maps]
    return {columns[5].strip() for columns in fields if len(columns) == 6}


@CLIENTS
def test_serve_imports_no_client_tool_or_unused_module_before_granian(upstream: FakeUpstream, client: str) -> None:
    gateway = _serve(upstream, client)
    try:
        modules = _imported_before_granian(gateway)
    finally:
        gateway.stop()
    assert {"mini_llm.config", "mini_llm.server", "granian"} <= set(modules), "the import log was not read"
    assert _unwanted(modules) == []


def test_a_config_file_brings_the_toml_parser_in(upstream: FakeUpstream) -> None:
    """The control: the import log shows a module that the settings really need."""
    config = write_config('[aliases]\nquick = "openai:gpt-4o-mini"\n')
    gateway = _serve(upstream, "fast", MINI_LLM_CONFIG=config)
    try:
        assert {name.partition(".")[0] for name in _unwanted(_imported_before_granian(gateway))} == {"tomllib"}
    finally:
        gateway.stop()


@CLIENTS
def test_the_running_main_process_maps_neither_aiohttp_nor_the_idna_tables(upstream: FakeUpstream, client: str) -> None:
    gateway = _serve(upstream, client)
    try:
        assert gateway.proc is not None
        mapped = _mapped_files(gateway.proc.pid)
    finally:
        gateway.stop()
    assert any("/granian/_granian" in path for path in mapped), "the mapped files were not read"
    assert {path for path in mapped if any(part in path for part in NOT_MAPPED)} == set()
