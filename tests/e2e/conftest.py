"""Fixtures of the end-to-end TCP tests (the shared ones live in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.helpers import BlackHole, ScriptedBackend


@pytest.fixture
def make_backend() -> Iterator[Any]:
    """Factory of ``ScriptedBackend``s, all closed (threads joined) after the test."""
    backends: list[ScriptedBackend] = []

    def make(handler: Any = None, port: int = 0, host: str = "127.0.0.1") -> ScriptedBackend:
        backend = ScriptedBackend(handler, port, host)
        backends.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in backends:
            backend.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    """An address where connects hang (see ``BlackHole``)."""
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


@pytest.fixture
def make_http_backend() -> Iterator[Any]:
    """Factory of recording ``HttpBackend``s (HTTP tests), all closed after the test."""
    from tests.e2e.http_helpers import HttpBackend

    backends: list[HttpBackend] = []

    def make(name: str = "backend") -> HttpBackend:
        backend = HttpBackend(name)
        backends.append(backend)
        return backend

    try:
        yield make
    finally:
        for backend in backends:
            backend.close()
