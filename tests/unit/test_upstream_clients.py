"""UpstreamClients: one client per kind; the fast client loads a trust store only for a usable https provider."""

from __future__ import annotations

import asyncio
import ssl

from mini_llm.config import load_settings
from mini_llm.upstream.clients import UpstreamClients
from mini_llm.upstream.fast_client import FastClient
from mini_llm.upstream.mock_provider import MockProvider


def _opened(environ: dict[str, str]) -> UpstreamClients:
    clients = UpstreamClients(load_settings(environ).providers, load_settings(environ), environ)
    asyncio.run(clients.open())
    return clients


def test_each_kind_is_built_once_and_the_mock_answers_in_the_worker() -> None:
    clients = _opened({"OPENAI_API_KEY": "sk-test-key-0123456789", "ANTHROPIC_API_KEY": "sk-ant-test-0123456789"})
    assert isinstance(clients.by_provider["mock"], MockProvider)
    assert isinstance(clients.by_provider["openai"], FastClient)
    assert clients.by_provider["openai"] is clients.by_provider["anthropic"]
    assert clients.kinds == {name: "mock" if name == "mock" else "fast" for name in clients.by_provider}


def test_without_a_usable_https_provider_no_trust_store_is_loaded() -> None:
    """The embedded default (no keys: only the mock can answer) skips the ~25 ms the trust store costs."""
    client = _opened({}).by_provider["openai"]
    assert isinstance(client, FastClient)
    assert client._tls is None


def test_a_usable_https_provider_gets_the_verifying_context() -> None:
    client = _opened({"OPENAI_API_KEY": "sk-test-key-0123456789"}).by_provider["openai"]
    assert isinstance(client, FastClient)
    assert isinstance(client._tls, ssl.SSLContext)
    assert client._tls.verify_mode == ssl.CERT_REQUIRED and client._tls.check_hostname
