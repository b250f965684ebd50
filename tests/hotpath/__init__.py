"""Tests of the hot-path twins (SSE splitter, body buffer)."""
