"""Every parser test runs on both scanner backends (markupsafe's pattern).

``parser_backend`` is autouse: each test of this folder runs once with the native scanner
(skipped where it is not built) and once with the pure one, and the previous backend is
restored afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pysozu import parser


@pytest.fixture(params=["native", "python"], autouse=True)
def parser_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    name = str(request.param)
    if name == "native" and not parser.NATIVE_AVAILABLE:
        pytest.skip("the native scanner is not built")
    previous = parser.BACKEND
    parser.set_backend(name)
    try:
        yield name
    finally:
        parser.set_backend(previous)
