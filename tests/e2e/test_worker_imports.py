"""A worker imports aiohttp only when a provider of its goes through it: aiohttp costs start-up time.

What a worker imported is read from outside, in the files Linux maps into it (/proc/PID/maps):
aiohttp's compiled modules are mapped once it is imported, and never unmapped. The worker is
read after it has served a request through its client, so an import at request time counts too.
"""

from __future__ import annotations

from tests.e2e.conftest import gateway_env
from tests.e2e.fake_upstream import FakeUpstream
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.http_client import request
from tests.e2e.worker_memory import worker_pid

CHAT = b'{"model":"fast","messages":[{"role":"user","content":"x"}]}'
# aiohttp and the compiled libraries that come with it, as folders of an installed package.
AIOHTTP_STACK = ("/aiohttp/", "/yarl/", "/multidict/", "/propcache/", "/frozenlist/")


def _mapped_files(pid: int) -> set[str]:
    """The paths of the files mapped into the process (the sixth column, where there is one)."""
    with open(f"/proc/{pid}/maps") as maps:
        fields = [line.split(maxsplit=5) for line in maps]
    return {columns[5].strip() for columns in fields if len(columns) == 6}


def _aiohttp_in_worker(upstream: FakeUpstream, client: str) -> set[str]:
    """The aiohttp stack's files mapped into the worker of a gateway on `client`, after a chat completion through it."""
    gateway = GatewayProcess(gateway_env(upstream, MINI_LLM_UPSTREAM_CLIENT=client)).start()
    try:
        assert request(gateway.url, "GET", "/health").json()["upstream_clients"]["openai"] == client
        before = len(upstream.seen)
        answer = request(gateway.url, "POST", "/v1/chat/completions", CHAT, {"Content-Type": "application/json"})
        assert answer.status == 200, answer.body
        assert len(upstream.seen) == before + 1  # it went to the provider, through the client
        return {path for path in _mapped_files(worker_pid(gateway)) if any(part in path for part in AIOHTTP_STACK)}
    finally:
        gateway.stop()


def test_a_worker_on_the_fast_client_never_imports_aiohttp(upstream: FakeUpstream) -> None:
    assert _aiohttp_in_worker(upstream, "fast") == set()


def test_a_worker_on_aiohttp_has_its_compiled_parser_loaded(upstream: FakeUpstream) -> None:
    """The control: the observation sees aiohttp where it is imported (its C HTTP parser, as installed)."""
    assert any("/aiohttp/_http_parser" in path for path in _aiohttp_in_worker(upstream, "aiohttp"))
