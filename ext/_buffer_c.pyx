# cython: language_level=3, boundscheck=False, wraparound=False, auto_pickle=False
"""Compiled twin of mini_llm.hotpath._buffer_py: the same body buffer, copying with memcpy into a bytearray."""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_GET_SIZE
from libc.string cimport memcpy

from mini_llm.hotpath.errors import BodyTooLarge

__all__ = ["BodyBuffer"]

cdef Py_ssize_t MIN_GROWTH = 64 * 1024
# Trust a declared Content-Length only this far ahead of the bytes actually received.
cdef Py_ssize_t PRESIZE_AHEAD = 1024 * 1024


cdef class BodyBuffer:
    """Collects an ASGI request body under a byte limit, copying nothing when it came in one piece.

    The first chunk is kept by reference; a second one moves both into a bytearray sized to
    `expected` (the Content-Length) or grown by doubling, so buffering stays linear. Growth makes a
    new bytearray instead of resizing in place, so a view taken earlier never blocks an append.
    """

    cdef Py_ssize_t _limit
    cdef Py_ssize_t _expected
    cdef object _first
    cdef bytearray _buf
    cdef Py_ssize_t _cap
    cdef Py_ssize_t _size

    def __init__(self, Py_ssize_t limit, Py_ssize_t expected=-1):
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if expected < -1:
            raise ValueError(f"expected must be a length or -1, got {expected}")
        if expected > limit:
            raise BodyTooLarge(f"request body of {expected} bytes exceeds the limit of {limit} bytes")
        self._limit = limit
        self._expected = expected
        self._first = b""
        self._buf = None
        self._cap = 0
        self._size = 0

    @property
    def limit(self):
        return self._limit

    def __len__(self):
        return self._size

    def append(self, chunk):
        cdef Py_buffer view
        if PyBytes_CheckExact(chunk):
            self._append(chunk, <const char*>PyBytes_AS_STRING(chunk), PyBytes_GET_SIZE(chunk))
            return
        PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE)
        try:
            self._append(chunk, <const char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef int _append(self, object chunk, const char* p, Py_ssize_t n) except -1:
        cdef Py_ssize_t size = self._size + n
        cdef bytearray old
        if n == 0:
            return 0
        if size > self._limit:
            raise BodyTooLarge(f"request body exceeds the limit of {self._limit} bytes")
        if self._buf is None:
            if self._size == 0:
                self._first = chunk
                self._size = size
                return 0
            self._grow(size)
            self._buf[: self._size] = self._first
            self._first = b""
        elif size > self._cap:
            old = self._buf
            self._grow(size)
            memcpy(PyByteArray_AS_STRING(self._buf), PyByteArray_AS_STRING(old), <size_t>self._size)
        memcpy(PyByteArray_AS_STRING(self._buf) + self._size, p, <size_t>n)
        self._size = size
        return 0

    def view(self):
        if self._buf is None:
            return memoryview(self._first).cast("B").toreadonly()
        return memoryview(self._buf)[: self._size].toreadonly()

    cdef int _grow(self, Py_ssize_t size) except -1:
        cdef Py_ssize_t grown = max(2 * size, MIN_GROWTH)
        cdef Py_ssize_t capacity = grown
        if self._expected >= size:
            capacity = min(self._expected, max(grown, PRESIZE_AHEAD))
        if capacity > self._limit:
            capacity = self._limit
        # Uninitialised storage: every byte up to _size is written before view() can expose it.
        self._buf = PyByteArray_FromStringAndSize(NULL, capacity)
        self._cap = capacity
        return 0
