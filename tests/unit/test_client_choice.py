"""client_for: the mock; aiohttp for a provider behind an env proxy (aiohttp trust_env rules); else the setting."""

from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import hypothesis
import pytest
from aiohttp.helpers import get_env_proxy_for_url, strip_auth_from_url
from hypothesis import strategies as st
from yarl import URL

from mini_llm.config import Settings, load_settings
from mini_llm.providers import Provider
from mini_llm.upstream.choice import EnvProxy, client_for, explain_client, proxy_for

PROXY = "http://proxy.test:3128"
PROXY_WITH_LOGIN = "http://gateway-user:hunter2secret@proxy.test:3128"


def provider(base_url: str, name: str = "custom") -> Provider:
    return Provider(name, "openai", base_url, (), f"providers.{name}.api_keys", key_required=False)


def defaults(env: dict[str, str] | None = None) -> Settings:
    return load_settings(env or {})


class TestClientFor:
    def test_the_builtin_mock_is_the_mock_whatever_the_proxies(self) -> None:
        settings = defaults()
        environ = {"HTTPS_PROXY": PROXY, "HTTP_PROXY": PROXY}
        assert client_for(settings.providers["mock"], settings, environ) == "mock"

    @pytest.mark.parametrize(("setting", "client"), [(None, "fast"), ("fast", "fast"), ("aiohttp", "aiohttp")])
    def test_without_a_proxy_the_setting_decides(self, setting: str | None, client: str) -> None:
        settings = defaults({"MINI_LLM_UPSTREAM_CLIENT": setting} if setting else {})
        for configured in settings.providers.values():
            if configured.name != "mock":
                assert client_for(configured, settings, {}) == client

    def test_a_proxied_provider_goes_through_aiohttp_whatever_the_setting(self) -> None:
        settings = defaults({"MINI_LLM_UPSTREAM_CLIENT": "fast"})
        assert client_for(settings.providers["openai"], settings, {"HTTPS_PROXY": PROXY}) == "aiohttp"

    def test_the_proxy_is_per_scheme(self) -> None:
        settings = defaults()
        local = provider("http://127.0.0.1:8000/v1")
        assert client_for(local, settings, {"HTTPS_PROXY": PROXY}) == "fast"
        assert client_for(local, settings, {"HTTP_PROXY": PROXY}) == "aiohttp"
        assert client_for(settings.providers["openai"], settings, {"HTTP_PROXY": PROXY}) == "fast"

    def test_it_reads_the_mapping_it_is_given_not_os_environ(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("HTTPS_PROXY", PROXY)
        settings = defaults()
        assert client_for(settings.providers["openai"], settings, {}) == "fast"


class TestProxyFor:
    URL = "https://api.example.com/v1"

    @pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "Https_Proxy"])
    def test_any_case_of_the_name(self, name: str) -> None:
        assert proxy_for(self.URL, {name: PROXY}) == EnvProxy(name, PROXY)

    def test_a_lowercase_name_wins(self) -> None:
        environ = {"https_proxy": "http://lower.test:1", "HTTPS_PROXY": "http://upper.test:2"}
        assert proxy_for(self.URL, environ) == EnvProxy("https_proxy", "http://lower.test:1")

    def test_an_empty_lowercase_name_removes_the_proxy(self) -> None:
        assert proxy_for(self.URL, {"HTTPS_PROXY": PROXY, "https_proxy": ""}) is None

    def test_an_empty_uppercase_name_does_not(self) -> None:
        assert proxy_for(self.URL, {"https_proxy": PROXY, "HTTPS_PROXY": ""}) == EnvProxy("https_proxy", PROXY)

    def test_all_proxy_is_not_read(self) -> None:
        # aiohttp takes the http, https, ws and wss proxies only.
        assert proxy_for(self.URL, {"ALL_PROXY": PROXY, "all_proxy": PROXY}) is None

    def test_an_https_proxy_url_is_ignored(self) -> None:
        # aiohttp speaks plain HTTP to a proxy and ignores an https:// one with a warning.
        assert proxy_for(self.URL, {"HTTPS_PROXY": "https://proxy.test:443"}) is None

    def test_under_cgi_only_the_lowercase_http_proxy_counts(self) -> None:
        url = "http://api.example.com/v1"
        assert proxy_for(url, {"REQUEST_METHOD": "GET", "HTTP_PROXY": PROXY}) is None
        assert proxy_for(url, {"REQUEST_METHOD": "GET", "http_proxy": PROXY}) == EnvProxy("http_proxy", PROXY)
        assert proxy_for(self.URL, {"REQUEST_METHOD": "GET", "HTTPS_PROXY": PROXY}) is not None

    @pytest.mark.parametrize(
        "no_proxy",
        ["*", "api.example.com", "example.com", ".example.com", "other.test, EXAMPLE.COM", " .api.example.com "],
    )
    def test_no_proxy_bypasses_names_and_domain_suffixes(self, no_proxy: str) -> None:
        assert proxy_for(self.URL, {"HTTPS_PROXY": PROXY, "NO_PROXY": no_proxy}) is None

    @pytest.mark.parametrize("no_proxy", ["", "ample.com", "api.example.co", "api.example.com.evil", ",,"])
    def test_no_proxy_matches_whole_labels_only(self, no_proxy: str) -> None:
        assert proxy_for(self.URL, {"HTTPS_PROXY": PROXY, "NO_PROXY": no_proxy}) is not None

    def test_a_lone_dot_matches_a_host_written_with_the_root_dot(self) -> None:
        environ = {"HTTP_PROXY": PROXY, "NO_PROXY": "."}
        assert proxy_for("http://host.example.com./v1", environ) is None
        assert proxy_for("http://host.example.com/v1", environ) is not None

    def test_an_ipv6_host_loses_its_last_group_as_if_it_were_a_port(self) -> None:
        # urllib splits a "port" off the bare address aiohttp hands it: fe80::1 is also matched as "fe80:".
        assert proxy_for("http://[fe80::1]:8000/v1", {"HTTP_PROXY": PROXY, "NO_PROXY": "fe80:"}) is None

    def test_a_punycode_host_is_matched_in_its_unicode_form_as_aiohttp_does(self) -> None:
        url = "https://xn--bcher-kva.example/v1"
        assert proxy_for(url, {"HTTPS_PROXY": PROXY, "NO_PROXY": "bücher.example"}) is None
        assert proxy_for(url, {"HTTPS_PROXY": PROXY, "NO_PROXY": "xn--bcher-kva.example"}) is not None


class TestMaskedUrl:
    @pytest.mark.parametrize(
        ("url", "masked"),
        [
            (PROXY_WITH_LOGIN, "http://***@proxy.test:3128"),
            ("http://user@proxy.test:3128", "http://***@proxy.test:3128"),
            ("socks5h://u:p@proxy.test:1080", "socks5h://***@proxy.test:1080"),
            ("user:hunter2@proxy.test:3128", "***@proxy.test:3128"),
            ("http://user:pa@ss/word@proxy.test", "http://***@proxy.test"),
            ("us:er://pw@proxy.test", "***@proxy.test"),
            (PROXY, PROXY),
        ],
    )
    def test_credentials_never_show(self, url: str, masked: str) -> None:
        assert EnvProxy("HTTPS_PROXY", url).masked_url() == masked


class TestExplain:
    def test_a_proxied_provider_names_the_variable_and_the_masked_proxy(self) -> None:
        settings = defaults()
        text = explain_client(settings.providers["openai"], settings, {"HTTPS_PROXY": PROXY_WITH_LOGIN})
        assert text == "aiohttp: HTTPS_PROXY sends it through the proxy http://***@proxy.test:3128"

    def test_otherwise_the_setting_and_the_mock(self) -> None:
        settings = defaults({"MINI_LLM_UPSTREAM_CLIENT": "aiohttp"})
        assert explain_client(settings.providers["openai"], settings, {}) == "aiohttp (MINI_LLM_UPSTREAM_CLIENT)"
        assert explain_client(settings.providers["mock"], settings, {}) == "built in, no network"


# The oracle: aiohttp's own get_env_proxy_for_url, which reads os.environ, on the same environments.
_PROXY_NAMES = ["HTTP_PROXY", "http_proxy", "Http_Proxy", "HTTP_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"]
_PROXY_VALUES = ["", "http://p1.test:3128", "http://u:pw@p2.test:8080", "https://p3.test:443", "p4.test:3128"]
_NO_PROXY_NAMES = ["NO_PROXY", "no_proxy", "No_Proxy"]
_NO_PROXY_VALUES = [
    "",
    "*",
    "example.com",
    ".Example.COM",
    "api.example.com:443",
    "x.test, sub.example.com",
    ".",
    "::1",
    "fe80:",
    "bücher.example",
    "xn--bcher-kva.example",
]
_URLS = [
    "https://api.example.com/v1",
    "http://example.com",
    "https://sub.example.com:8443/v1",
    "http://127.0.0.1:8000/v1",
    "http://[::1]:8000/v1",
    "http://[fe80::1]/v1",
    "http://host.example.com./v1",
    "https://xn--bcher-kva.example/v1",
]


def aiohttp_proxy(url: str, environ: dict[str, str], netrc: Path) -> URL | None:
    with mock.patch.dict(os.environ, {**environ, "NETRC": str(netrc)}, clear=True):
        try:
            proxy, _ = get_env_proxy_for_url(URL(url))
        except LookupError:
            return None
    return proxy


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(
    proxies=st.dictionaries(st.sampled_from(_PROXY_NAMES), st.sampled_from(_PROXY_VALUES), max_size=4),
    no_proxy=st.dictionaries(st.sampled_from(_NO_PROXY_NAMES), st.sampled_from(_NO_PROXY_VALUES), max_size=2),
    cgi=st.booleans(),
    url=st.sampled_from(_URLS),
)
def test_the_same_proxy_as_aiohttp_with_trust_env(
    proxies: dict[str, str], no_proxy: dict[str, str], cgi: bool, url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    environ = {**proxies, **no_proxy, **({"REQUEST_METHOD": "POST"} if cgi else {})}
    ours = proxy_for(url, environ)
    netrc = tmp_path_factory.getbasetemp() / "empty.netrc"  # no proxy login from a real ~/.netrc
    netrc.touch()
    expected = aiohttp_proxy(url, environ, netrc)
    assert (None if ours is None else strip_auth_from_url(URL(ours.url))[0]) == expected
