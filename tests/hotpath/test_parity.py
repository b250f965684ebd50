"""The twins expose the same names and call signatures, so one test suite runs over both; stubtest covers the stubs."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from mini_llm.hotpath.errors import EventTooLarge

if TYPE_CHECKING:
    from conftest import HotPathImpl

CLASSES = ("SSESplitter", "SSEEvent", "BodyBuffer")
DUNDERS = ("__eq__", "__hash__", "__len__", "__repr__")


def public(obj: type | ModuleType) -> set[str]:
    return {name for name in dir(obj) if not name.startswith("_")}


@pytest.mark.cython
def test_modules_export_the_same_names(hotpath_twins: tuple[HotPathImpl, HotPathImpl]) -> None:
    compiled, pure = hotpath_twins
    for cls in CLASSES:
        c_module = inspect.getmodule(getattr(compiled, cls))
        py_module = inspect.getmodule(getattr(pure, cls))
        assert c_module is not None
        assert py_module is not None
        assert c_module is not py_module
        assert c_module.__all__ == py_module.__all__
        assert public(c_module) >= set(py_module.__all__)


@pytest.mark.cython
@pytest.mark.parametrize("cls", CLASSES)
def test_classes_have_the_same_members(hotpath_twins: tuple[HotPathImpl, HotPathImpl], cls: str) -> None:
    c_cls, py_cls = (getattr(twin, cls) for twin in hotpath_twins)
    assert public(c_cls) == public(py_cls)
    for name in DUNDERS:
        assert (getattr(c_cls, name, None) is None) == (getattr(py_cls, name, None) is None), name
    for name in sorted(public(py_cls)):
        c_attr, py_attr = inspect.getattr_static(c_cls, name), inspect.getattr_static(py_cls, name)
        if inspect.isdatadescriptor(py_attr):
            assert inspect.isdatadescriptor(c_attr), name
            continue
        c_params = inspect.signature(getattr(c_cls, name)).parameters.values()
        py_params = inspect.signature(getattr(py_cls, name)).parameters.values()
        assert [(p.name, p.kind) for p in c_params] == [(p.name, p.kind) for p in py_params], name


def test_constructors_take_the_same_keywords(hotpath_impl: HotPathImpl) -> None:
    # NOTE: inspect.signature cannot read a cdef class __init__, so the keywords are exercised instead.
    event = hotpath_impl.SSEEvent(event="e", data="d", id="i", raw=b"r")
    assert (event.event, event.data, event.id, event.raw) == ("e", "d", "i", b"r")
    with pytest.raises(EventTooLarge):
        hotpath_impl.SSESplitter(max_event_size=5).feed(b"data: ")
    assert hotpath_impl.BodyBuffer(limit=3, expected=2).limit == 3


def test_read_only_attributes(hotpath_impl: HotPathImpl) -> None:
    splitter = hotpath_impl.SSESplitter()
    for name in ("retry", "last_event_id", "pending"):
        with pytest.raises(AttributeError):
            setattr(splitter, name, 1)
    with pytest.raises(AttributeError):
        hotpath_impl.BodyBuffer(1).limit = 2  # type: ignore[misc]
