"""OpenAI's Responses API through the gateway: the official openai SDK against a fake provider, over real TCP.

What the provider receives is checked byte for byte: the method, the path and query as the client sent
them, no body (nor Content-Length) on a GET or DELETE, the client's body with only the model changed,
and the provider's key. The by-id routes go to the `openai` provider; ids and queries that could change
the path upstream are refused before anything is sent.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.e2e import responses_events
from tests.e2e.conftest import gateway_env
from tests.e2e.failover_gateway import Gateways, answered_by, attempts, on
from tests.e2e.fake_upstream import MISSING_RESPONSE, OPENAI_KEYS, FakeUpstream, Seen
from tests.e2e.gateway_process import GatewayProcess
from tests.e2e.raw_http import Answer, parse, request_bytes
from tests.e2e.raw_http import exchange as raw_exchange
from tests.e2e.raw_http import send as raw_send
from tests.e2e.scripted_provider import ScriptedProvider, frames

KEYS = {f"Bearer {key}" for key in OPENAI_KEYS}


class Recorder:
    """The requests the SDK sent, as httpx made them: the exact body bytes and URL."""

    def __init__(self) -> None:
        self.sent: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> None:
        request.read()
        self.sent.append(request)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(gateway: GatewayProcess, recorder: Recorder) -> Iterator[openai.OpenAI]:
    http = httpx2.Client(event_hooks={"request": [recorder]})
    with openai.OpenAI(base_url=gateway.url + "/v1", api_key="client-own-key", max_retries=0, http_client=http) as sdk:
        yield sdk


def _only_content_headers(seen: Seen) -> list[bytes]:
    """The framing and content headers the provider got, as on the wire (names lower-cased)."""
    names = (b"content-length", b"content-type", b"transfer-encoding")
    return [name.lower() for name, _ in seen.raw_headers if name.lower() in names]


def _assert_bodiless(seen: Seen, method: str, path: str) -> None:
    assert (seen.method, seen.path) == (method, path)
    assert seen.body == b""
    assert _only_content_headers(seen) == []  # RFC 9110 8.6: no Content-Length where no content is expected
    assert seen.headers["Authorization"] in KEYS


def test_create_sends_the_client_s_bytes_with_only_the_model_changed(
    client: openai.OpenAI, recorder: Recorder, upstream: FakeUpstream
) -> None:
    answer = client.responses.create(model="fast", input="hi", instructions="be brief")
    assert answer.output_text == "fake responses answer"
    assert answer.usage is not None and answer.usage.input_tokens == 11
    seen = upstream.last()
    assert (seen.method, seen.path, seen.query) == ("POST", "/v1/responses", "")
    sent = recorder.sent[-1].content
    assert b'"model":"fast"' in sent
    assert seen.body == sent.replace(b'"model":"fast"', b'"model":"gpt-4o-mini"')
    assert seen.headers["Authorization"] in KEYS
    assert "client-own-key" not in json.dumps(seen.headers)


def test_a_streamed_create_relays_every_event_in_order(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    events = list(client.responses.create(model="fast", input="hi", stream=True))
    expected = [json.loads(frame.split(b"data: ", 1)[1]) for frame in responses_events.stream_frames("gpt-4o-mini")]
    assert [event.type for event in events] == [event["type"] for event in expected]
    assert [event.sequence_number for event in events] == list(range(len(expected)))
    assert json.loads(upstream.last().body)["stream"] is True


def test_the_stream_helper_accumulates_the_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="fast", input="hi") as stream:
        deltas = [event.delta for event in stream if event.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "ok from responses"
    assert final.usage is not None and (final.usage.input_tokens, final.usage.output_tokens) == (11, 3)


def test_retrieve_is_a_get_with_the_client_s_query_and_no_body(
    client: openai.OpenAI, recorder: Recorder, upstream: FakeUpstream
) -> None:
    answer = client.responses.retrieve("resp_abc-1", include=["message.output_text.logprobs"], starting_after=2)
    assert (answer.id, answer.output_text) == ("resp_abc-1", "stored answer")
    seen = upstream.last()
    _assert_bodiless(seen, "GET", "/v1/responses/resp_abc-1")
    assert seen.query == recorder.sent[-1].url.query.decode()
    assert "include" in seen.query and "starting_after=2" in seen.query


def test_retrieving_with_stream_relays_the_stored_response_s_events(
    client: openai.OpenAI, upstream: FakeUpstream
) -> None:
    events = list(client.responses.retrieve("resp_bg", stream=True))
    assert [event.type for event in events][-1] == "response.completed"
    assert len(events) == len(responses_events.stream_frames("gpt-4o"))
    seen = upstream.last()
    _assert_bodiless(seen, "GET", "/v1/responses/resp_bg")
    assert seen.query == "stream=true"


def test_delete_is_a_delete_without_content(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    raw = client.responses.with_raw_response.delete("resp_abc")
    assert raw.status_code == 200
    _assert_bodiless(upstream.last(), "DELETE", "/v1/responses/resp_abc")
    # No model on a by-id route: the target is the provider alone.
    assert (raw.headers["x-mini-llm-target"], raw.headers["x-mini-llm-attempts"]) == ("openai", "1")


def test_cancel_is_a_post_to_the_cancel_path(client: openai.OpenAI, upstream: FakeUpstream) -> None:
    answer = client.responses.cancel("resp_abc")
    assert (answer.id, answer.status) == ("resp_abc", "cancelled")
    seen = upstream.last()
    assert (seen.method, seen.path) == ("POST", "/v1/responses/resp_abc/cancel")
    assert seen.headers["Authorization"] in KEYS


def test_input_items_pass_the_paging_query_on_as_sent(
    client: openai.OpenAI, recorder: Recorder, upstream: FakeUpstream
) -> None:
    page = client.responses.input_items.list(
        "resp_abc", limit=2, order="asc", after="msg_0", include=["message.input_image.image_url"]
    )
    sent_query = recorder.sent[-1].url.query.decode()
    assert [item.id for item in page.data] == ["msg_in"]
    seen = upstream.last()
    _assert_bodiless(seen, "GET", "/v1/responses/resp_abc/input_items")
    assert seen.query == sent_query
    assert {"limit=2", "order=asc", "after=msg_0"} <= set(sent_query.split("&"))


def test_input_tokens_are_routed_by_model_and_without_one_go_to_openai(
    client: openai.OpenAI, recorder: Recorder, upstream: FakeUpstream
) -> None:
    counted = client.responses.input_tokens.count(model="fast", input="hi")
    assert counted.input_tokens == 7
    seen = upstream.last()
    assert (seen.method, seen.path) == ("POST", "/v1/responses/input_tokens")
    assert seen.body == recorder.sent[-1].content.replace(b'"model":"fast"', b'"model":"gpt-4o-mini"')
    assert client.responses.input_tokens.count(input="hi").input_tokens == 7
    assert upstream.last().body == recorder.sent[-1].content  # no model: the body goes as it came
    assert upstream.last().headers["Authorization"] in KEYS


def test_compact_is_routed_by_model(client: openai.OpenAI, recorder: Recorder, upstream: FakeUpstream) -> None:
    compacted = client.responses.compact(model="fast", input="hi")
    assert (compacted.object, compacted.usage.input_tokens) == ("response.compaction", 11)
    seen = upstream.last()
    assert (seen.method, seen.path) == ("POST", "/v1/responses/compact")
    assert seen.body == recorder.sent[-1].content.replace(b'"model":"fast"', b'"model":"gpt-4o-mini"')


def test_the_provider_s_404_for_an_unknown_id_reaches_the_client(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(MISSING_RESPONSE)
    assert MISSING_RESPONSE in caught.value.message


def _raw(gateway: GatewayProcess, method: bytes, target: bytes, body: bytes = b"") -> Answer:
    return raw_send(gateway.url, method, target, [(b"Content-Type", b"application/json")], body)


@pytest.mark.parametrize(
    ("method", "target"),
    [
        (b"GET", b"/v1/responses/resp.1"),
        (b"POST", b"/v1/responses/resp%2Fcancel"),  # decoded, the cancel route of `resp`: the client meant an id
        (b"GET", b"/v1/responses/%2E%2E"),
        (b"GET", b"/v1/responses/..%2Fmodels"),
        (b"DELETE", b"/v1/responses/resp%00"),
        (b"GET", b"/v1/responses/r%65sp_1"),  # an id needs no escape: one sent escaped is refused, not guessed at
        (b"GET", b"/v1/responses/" + b"r" * 201),
        (b"GET", b"/v1/responses/resp_1?after={x}"),
        (b"GET", b"/v1/responses/resp_1?after=%22x%22|y"),
        (b"GET", b"/v1/responses/resp_1?a=b\\c"),
        (b"GET", b"/v1/responses/resp_1/input_items?a=%zz"),
        (b"GET", b"/v1/responses/resp_1?" + b"a" * 2049),
    ],
)
def test_ids_and_queries_that_could_change_the_path_upstream_are_refused(
    gateway: GatewayProcess, upstream: FakeUpstream, method: bytes, target: bytes
) -> None:
    before = len(upstream.seen)
    answer = _raw(gateway, method, target)
    invalid_query = b"?" in target
    assert answer.status == (400 if invalid_query else 404)
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == ("invalid_query" if invalid_query else "not_found")
    assert len(upstream.seen) == before


# Characters a path or query may hold, and many it may not: escapes, separators, quotes, space, controls.
_TRICKY = "aZ09_-.~%2Ff/?#&=+:@!$'()*,;[]\"<>{}|\\^` \t\x00\x7f"
_SENT_ID = re.compile(r"[A-Za-z0-9_-]{1,200}")


@settings(max_examples=150, deadline=None)
@given(
    method=st.sampled_from([b"GET", b"DELETE", b"POST"]),
    response_id=st.text(alphabet=_TRICKY, max_size=12),
    tail=st.sampled_from(["", "/cancel", "/input_items", "/other", "/"]),
    query=st.text(alphabet=_TRICKY, max_size=12),
)
def test_a_by_id_request_reaches_the_provider_exactly_as_sent_or_not_at_all(
    gateway: GatewayProcess, upstream: FakeUpstream, method: bytes, response_id: str, tail: str, query: str
) -> None:
    target = ("/v1/responses/" + response_id + tail + ("?" + query if query else "")).encode("latin-1")
    before = len(upstream.seen)
    answer = parse(raw_exchange(gateway.url, request_bytes(gateway.url, method, target, [], b"")))
    reached = upstream.seen[before:]
    if not reached:
        assert answer.status in (400, 404, 405), answer
        return
    assert 200 <= answer.status < 300
    # A `?` in the generated id starts the query: what must reach the provider is the target as the client sent it.
    path, _, sent_query = target.decode("latin-1").partition("?")
    response_id = path.removeprefix("/v1/responses/").removesuffix("/cancel").removesuffix("/input_items")
    assert _SENT_ID.fullmatch(response_id), path
    (seen,) = reached
    assert (seen.method.encode(), seen.path, seen.query) == (method, path, sent_query)


def test_a_body_sent_with_a_get_is_not_forwarded(gateway: GatewayProcess, upstream: FakeUpstream) -> None:
    smuggled = b"GET /v1/secret HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _raw(gateway, b"GET", b"/v1/responses/resp_body", smuggled)
    assert answer.status == 200
    _assert_bodiless(upstream.last(), "GET", "/v1/responses/resp_body")
    assert not [seen for seen in upstream.seen if seen.path == "/v1/secret"]


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        (b"POST", b"/v1/responses/resp_1", b"GET, DELETE"),
        (b"GET", b"/v1/responses/resp_1/cancel", b"POST"),
        (b"DELETE", b"/v1/responses/resp_1/input_items", b"GET"),
        (b"GET", b"/v1/responses/input_tokens", b"POST"),  # a fixed route, not the id `input_tokens`
        (b"DELETE", b"/v1/responses/compact", b"POST"),
        (b"GET", b"/v1/responses", b"POST"),
    ],
)
def test_a_method_a_route_does_not_serve_is_a_405_naming_the_ones_it_does(
    gateway: GatewayProcess, method: bytes, target: bytes, allow: bytes
) -> None:
    answer = _raw(gateway, method, target)
    assert answer.status == 405
    assert answer.headers[b"allow"] == allow
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_an_unknown_path_under_responses_is_a_404(gateway: GatewayProcess) -> None:
    answer = _raw(gateway, b"GET", b"/v1/responses/resp_1/other")
    assert answer.status == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_by_id_routes_need_the_openai_provider_s_key(upstream: FakeUpstream) -> None:
    env = gateway_env(upstream)
    del env["OPENAI_API_KEYS"]
    process = GatewayProcess(env).start()
    try:
        before = len(upstream.seen)
        for method, target in [(b"GET", b"/v1/responses/resp_1"), (b"POST", b"/v1/responses/resp_1/cancel")]:
            answer = _raw(process, method, target)
            assert answer.status == 400
            error = answer.json()["error"]
            assert error["code"] == "provider_not_configured"
            assert "OPENAI_API_KEY" in error["message"]
        assert len(upstream.seen) == before
    finally:
        process.stop()


def _stream_call(gateway: GatewayProcess, model: str) -> Answer:
    data = json.dumps({"model": model, "input": "hi", "stream": True}).encode()
    head = [(b"Content-Type", b"application/json")]
    return parse(raw_exchange(gateway.url, request_bytes(gateway.url, b"POST", b"/v1/responses", head, data), 30))


def test_a_first_event_error_falls_over_to_the_next_target(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = gateways.start([on(server, "a"), on(server, "b")], {"resp-chain": ["a:resp-first", "b:resp-second"]})
    server.script("resp-first", frames(responses_events.error_frame()))
    server.script("resp-second", frames(*responses_events.stream_frames("resp-second")))
    answer = _stream_call(gateway, "resp-chain")
    assert answer.status == 200
    assert answer.body == b"".join(responses_events.stream_frames("resp-second"))  # nothing of the failed one
    assert answered_by(answer) == "b:resp-second"
    assert attempts(answer) >= 2
    assert [seen.path for seen in server.seen("resp-first")][:1] == ["/v1/responses"]


@pytest.mark.parametrize("failure", ["error", "response.failed"])
def test_an_error_right_after_the_opening_state_falls_over_too(
    gateways: Gateways, server: ScriptedProvider, failure: str
) -> None:
    # OpenAI's streams open with response.created and response.in_progress before anything can fail: those
    # are the response's state, not an answer, so the error after them is still the stream's first event.
    gateway = gateways.start([on(server, "a"), on(server, "b")], {"resp-late": ["a:resp-late", "b:resp-fine"]})
    opening = responses_events.stream_frames("resp-late")[:2]
    if failure == "error":
        failed = responses_events.error_frame(sequence=2)
    else:
        failed = responses_events.failed_frame("resp-late", sequence=2)
    server.script("resp-late", frames(*opening, failed, pause=0.05))  # each event its own read
    server.script("resp-fine", frames(*responses_events.stream_frames("resp-fine")))
    answer = _stream_call(gateway, "resp-late")
    assert answer.status == 200
    assert answer.body == b"".join(responses_events.stream_frames("resp-fine"))
    assert answered_by(answer) == "b:resp-fine"
    assert attempts(answer) >= 2


def test_a_failure_of_the_request_itself_is_relayed_not_retried(gateways: Gateways, server: ScriptedProvider) -> None:
    # invalid_prompt fails on every target, billed on each: the client gets it at once.
    gateway = gateways.start([on(server, "a"), on(server, "b")], {"resp-bad": ["a:resp-bad", "b:resp-never"]})
    sent = [
        *responses_events.stream_frames("resp-bad")[:2],
        responses_events.failed_frame("resp-bad", 2, "invalid_prompt"),
    ]
    server.script("resp-bad", frames(*sent))
    answer = _stream_call(gateway, "resp-bad")
    assert answer.status == 200
    assert answer.body == b"".join(sent)
    assert (answered_by(answer), attempts(answer)) == ("a:resp-bad", 1)
    assert server.seen("resp-never") == []


def test_an_error_after_the_first_output_is_relayed_not_retried(gateways: Gateways, server: ScriptedProvider) -> None:
    gateway = gateways.start([on(server, "a"), on(server, "b")], {"resp-mid": ["a:resp-mid", "b:resp-unused"]})
    sent = [*responses_events.stream_frames("resp-mid")[:3], responses_events.error_frame(sequence=3)]
    server.script("resp-mid", frames(*sent, pause=0.05))
    answer = _stream_call(gateway, "resp-mid")
    assert answer.status == 200
    assert answer.body == b"".join(sent)  # committed at output_item.added: the provider's error goes out as it came
    assert answered_by(answer) == "a:resp-mid"
    assert server.seen("resp-unused") == []


def test_a_stream_cut_after_its_commit_ends_with_the_responses_error_event(
    gateways: Gateways, server: ScriptedProvider
) -> None:
    gateway = gateways.start([on(server, "a")], {"resp-cut": "a:resp-cut"})
    sent = responses_events.stream_frames("resp-cut")[:5]
    server.script("resp-cut", frames(*sent, cut=True))
    http = httpx2.Client()
    with (
        openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, http_client=http) as sdk,
        sdk.responses.stream(model="resp-cut", input="hi") as stream,
    ):
        events = list(stream)
        with pytest.raises(RuntimeError, match=r"response\.completed"):
            stream.get_final_response()
    assert [event.type for event in events[:-1]] == [json.loads(f.split(b"data: ", 1)[1])["type"] for f in sent]
    error = events[-1]
    assert error.type == "error"
    assert error.sequence_number == len(sent)  # the next number after the provider's last event
    assert error.code == "upstream_unreachable"


def test_usage_and_first_token_reach_the_access_log(upstream: FakeUpstream) -> None:
    process = GatewayProcess(gateway_env(upstream, MINI_LLM_LOG_FORMAT="json")).start()
    try:
        http = httpx2.Client()
        with openai.OpenAI(base_url=process.url + "/v1", api_key="x", max_retries=0, http_client=http) as sdk:
            with sdk.responses.stream(model="fast", input="hi") as stream:
                stream.get_final_response()
            sdk.responses.create(model="fast", input="hi")
            sdk.responses.retrieve("resp_abc")  # a stored response: its usage was counted when it was made
            with sdk.responses.retrieve("resp_abc", stream=True) as replay:
                list(replay)
        deadline = time.monotonic() + 5
        while process.log.count('"path":"/v1/responses') < 4 and time.monotonic() < deadline:
            time.sleep(0.02)  # each access line is written when its request is over
        lines = [json.loads(line) for line in process.lines if line.startswith("{") and '"path"' in line]
        streamed, whole = [line for line in lines if line["path"] == "/v1/responses"]
        retrieved, replayed = [line for line in lines if line["path"] == "/v1/responses/resp_abc"]
        assert (retrieved["status"], retrieved["input_tokens"], retrieved["output_tokens"]) == (200, None, None)
        assert (retrieved["provider"], retrieved["upstream_model"], retrieved["attempts"][0]["model"]) == (
            "openai",
            None,
            None,
        )
        assert (replayed["stream_outcome"], replayed["input_tokens"], replayed["ttft_ms"]) == ("complete", None, None)
        assert replayed["events"] > 0
        assert (streamed["input_tokens"], streamed["output_tokens"]) == (11, 3)
        assert streamed["ttft_ms"] is not None and streamed["stream_outcome"] == "complete"
        assert streamed["events"] == len(responses_events.stream_frames("gpt-4o-mini"))
        assert (whole["input_tokens"], whole["output_tokens"]) == (11, 3)
        assert whole["ttft_ms"] is None
    finally:
        process.stop()


@pytest.mark.parametrize("query", ["include[]=a", "a=%41", "b=%7e&c=%2F", "after=msg_0&limit=2&include[]=x.y"])
def test_a_by_id_query_reaches_the_provider_byte_for_byte(
    gateway: GatewayProcess, upstream: FakeUpstream, query: str
) -> None:
    # Both upstream clients (make test runs this file again with MINI_LLM_UPSTREAM_CLIENT=aiohttp).
    target = f"/v1/responses/resp_abc/input_items?{query}".encode()
    answer = parse(raw_exchange(gateway.url, request_bytes(gateway.url, b"GET", target, [], b"")))
    assert answer.status == 200
    assert upstream.last().query == query


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"'])
def test_a_cancel_with_a_body_that_is_no_json_object_is_refused(
    gateway: GatewayProcess, upstream: FakeUpstream, body: bytes
) -> None:
    before = len(upstream.seen)
    head = [(b"Content-Type", b"application/json")]
    answer = parse(
        raw_exchange(gateway.url, request_bytes(gateway.url, b"POST", b"/v1/responses/resp_abc/cancel", head, body))
    )
    assert answer.status == 400
    assert json.loads(answer.body)["error"]["type"] == "invalid_request_error"
    assert len(upstream.seen) == before  # nothing labelled JSON that is not went upstream
