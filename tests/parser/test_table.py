"""The table of ``cases.py``: every case whole, one byte at a time, and split in two at every
offset (``helpers.outcomes`` checks that all feedings agree), on both scanner backends."""

from __future__ import annotations

import pytest

from tests.parser.cases import CASES, Case
from tests.parser.helpers import outcomes


def test_table_is_large_and_unique() -> None:
    assert len(CASES) >= 200
    assert len({case.id for case in CASES}) == len(CASES)
    assert sum(case.error is None for case in CASES) >= 80
    assert sum(case.kind == "response" for case in CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case) -> None:
    out = outcomes(case.raw, case.kind, case.limits, case.request_method)
    if case.error is not None:
        assert out.error is not None, f"accepted: {out.messages}"
        assert out.error[:2] == case.error
        if case.at is not None:
            assert out.error[2] == case.offset
        return
    assert out.error is None
    assert len(out.messages) == len(case.messages)
    for got, want in zip(out.messages, case.messages, strict=True):
        for key, value in want.items():
            assert got[key] == value, key
    if out.messages:
        assert out.messages[-1]["complete"] == case.complete
    assert out.leftover == case.leftover
