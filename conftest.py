"""Shared by tests/ and benchmarks/: the --no-extensions switch and the `hotpath_impl` twin fixture."""

from __future__ import annotations

import argparse
import importlib
import os
from dataclasses import dataclass

import pytest

from mini_llm._flags import parse_flag
from mini_llm.hotpath import _buffer_py, _http_py, _sse_py

TWIN_MODULES = {
    "cython": ("mini_llm.hotpath._sse_c", "mini_llm.hotpath._buffer_c", "mini_llm.hotpath._http_c"),
    "python": ("mini_llm.hotpath._sse_py", "mini_llm.hotpath._buffer_py", "mini_llm.hotpath._http_py"),
}


@dataclass(frozen=True)
class HotPathImpl:
    """One twin's classes, named explicitly so a test never runs on whatever happened to import.

    Typed with the pure twin's classes, which the compiled ones mirror (checked by stubtest and
    tests/hotpath/test_parity.py).
    """

    name: str
    SSESplitter: type[_sse_py.SSESplitter]
    SSEEvent: type[_sse_py.SSEEvent]
    BodyBuffer: type[_buffer_py.BodyBuffer]
    ResponseParser: type[_http_py.ResponseParser]


def pytest_addoption(parser: pytest.Parser) -> None:
    # BooleanOptionalAction derives `--no-extensions` from `--extensions` (an option spelled
    # `--no-extensions` itself would store False when given).
    disabled = parse_flag("MINI_LLM_NO_EXTENSIONS", os.environ.get("MINI_LLM_NO_EXTENSIONS"))
    parser.addoption(
        "--extensions",
        action=argparse.BooleanOptionalAction,
        default=not disabled,
        help="test the compiled hot path too; --no-extensions deselects it (default: MINI_LLM_NO_EXTENSIONS)",
    )


def extensions_disabled(config: pytest.Config) -> bool:
    return not config.getoption("--extensions")


def load_twin(name: str) -> HotPathImpl:
    """Import one twin by module name; an ImportError propagates so a missing build is an error."""
    sse_name, buffer_name, http_name = TWIN_MODULES[name]
    sse = importlib.import_module(sse_name)
    buffer = importlib.import_module(buffer_name)
    http = importlib.import_module(http_name)
    return HotPathImpl(name, sse.SSESplitter, sse.SSEEvent, buffer.BodyBuffer, http.ResponseParser)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Deselect rather than skip (multidict's pattern): a pure run reports what it left out.
    if not extensions_disabled(config):
        return
    deselected = [item for item in items if item.get_closest_marker("cython")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("cython")]


@pytest.fixture(
    scope="session",
    params=[pytest.param("cython", marks=pytest.mark.cython), "python"],
    ids=["cython", "python"],
)
def hotpath_impl(request: pytest.FixtureRequest) -> HotPathImpl:
    name: str = request.param
    if name == "cython" and extensions_disabled(request.config):
        pytest.fail("the compiled twin was requested although --no-extensions is on")
    try:
        return load_twin(name)
    except ImportError as exc:
        pytest.fail(
            f"the {name} hot path does not import ({exc}): build it with "
            "`python setup.py build_ext --inplace` or pass --no-extensions"
        )


@pytest.fixture(scope="session")
def hotpath_twins(request: pytest.FixtureRequest) -> tuple[HotPathImpl, HotPathImpl]:
    """The compiled and the pure twin together, for tests comparing them; mark such tests `cython`."""
    if extensions_disabled(request.config):
        pytest.fail("hotpath_twins needs the compiled twin: mark the test `cython` so it is deselected")
    try:
        return load_twin("cython"), load_twin("python")
    except ImportError as exc:
        pytest.fail(f"the compiled hot path does not import ({exc}): build it or pass --no-extensions")
