"""Both parser twins agree on any response and any cut, and how a response is cut never changes its outcome."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mini_llm.hotpath.errors import HTTPParseError
from tests.hotpath.http_cases import Generated, ParserFactory, ParserLike, cut, responses, run

if TYPE_CHECKING:
    from conftest import HotPathImpl

HEAD_LIMITS = st.sampled_from([16, 40, 64, 256, 65536])
FIELD_LIMITS = st.sampled_from([0, 1, 3, 100])
POSITIONS = st.lists(st.integers(min_value=0), max_size=8)

Trace = list[tuple[str, object]]


def trace(parser: ParserLike, chunks: list[bytes], eof: bool) -> Trace:
    """Each call's result (or error) and the parser's state after it, for a step-by-step comparison."""
    steps: Trace = []
    calls = [(chunk, False) for chunk in chunks] + ([(b"", True)] if eof else [])
    for chunk, is_eof in calls:
        try:
            result: object = parser.feed_eof() if is_eof else parser.feed(chunk)
        except HTTPParseError as exc:
            result = f"error: {exc}"
        state = (parser.status, parser.reason, list(parser.headers), parser.head_complete, parser.done, parser.trailing)
        steps.append(
            (repr(result), (*state, parser.keep_alive, parser.content_length, parser.chunked, parser.buffered))
        )
    return steps


def make(factory: ParserFactory, generated: Generated, max_head: int, max_fields: int) -> ParserLike:
    return factory(head_request=generated.head_request, max_head_bytes=max_head, max_headers=max_fields)


@pytest.mark.cython
@settings(max_examples=600, deadline=None)
@given(generated=responses, positions=POSITIONS, max_head=HEAD_LIMITS, max_fields=FIELD_LIMITS)
def test_http_twins_agree(
    hotpath_twins: tuple[HotPathImpl, HotPathImpl],
    generated: Generated,
    positions: list[int],
    max_head: int,
    max_fields: int,
) -> None:
    compiled, pure = hotpath_twins
    chunks = cut(generated.data, positions)
    expect = trace(make(pure.ResponseParser, generated, max_head, max_fields), chunks, generated.eof)
    assert trace(make(compiled.ResponseParser, generated, max_head, max_fields), chunks, generated.eof) == expect


@pytest.mark.cython
@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300), positions=POSITIONS, eof=st.booleans())
def test_http_twins_agree_on_noise(
    hotpath_twins: tuple[HotPathImpl, HotPathImpl], data: bytes, positions: list[int], eof: bool
) -> None:
    compiled, pure = hotpath_twins
    chunks = cut(b"HTTP/1.1 200 OK\r\n" + data, positions)
    assert trace(compiled.ResponseParser(), chunks, eof) == trace(pure.ResponseParser(), chunks, eof)


@settings(max_examples=300, deadline=None)
@given(generated=responses, positions=POSITIONS, max_head=HEAD_LIMITS, max_fields=FIELD_LIMITS)
def test_http_cutting_never_changes_the_outcome(
    hotpath_impl: HotPathImpl, generated: Generated, positions: list[int], max_head: int, max_fields: int
) -> None:
    case = generated.case(max_head, max_fields)
    whole = run(hotpath_impl.ResponseParser, case, [generated.data]).comparable()
    assert run(hotpath_impl.ResponseParser, case, cut(generated.data, positions)).comparable() == whole
    data = generated.data
    assert run(hotpath_impl.ResponseParser, case, [data[i : i + 1] for i in range(len(data))]).comparable() == whole


@pytest.mark.cython
def test_http_twins_export_the_same_api(hotpath_twins: tuple[HotPathImpl, HotPathImpl]) -> None:
    compiled, pure = (twin.ResponseParser for twin in hotpath_twins)
    c_module, py_module = inspect.getmodule(compiled), inspect.getmodule(pure)
    assert c_module is not None
    assert py_module is not None
    assert c_module is not py_module
    assert c_module.__all__ == py_module.__all__
    assert c_module.MAX_CHUNK_LINE == py_module.MAX_CHUNK_LINE
    public = {name for name in dir(pure) if not name.startswith("_")}
    assert {name for name in dir(compiled) if not name.startswith("_")} == public
    for name in sorted(public):
        c_attr, py_attr = inspect.getattr_static(compiled, name), inspect.getattr_static(pure, name)
        assert inspect.isdatadescriptor(c_attr) == inspect.isdatadescriptor(py_attr), name
        if not inspect.isdatadescriptor(py_attr):
            c_params = inspect.signature(getattr(compiled, name)).parameters.values()
            py_params = inspect.signature(getattr(pure, name)).parameters.values()
            assert [(p.name, p.kind) for p in c_params] == [(p.name, p.kind) for p in py_params], name
