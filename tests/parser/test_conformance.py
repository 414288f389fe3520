"""The shared conformance table (``tests/data/http1_cases.json``, converted from
nodejs/http-parser's tests) as one more table, fed whole, byte by byte and at every split.

Verdicts: ``valid`` cases must parse to the listed messages; ``invalid`` and
``valid-lenient`` must be refused (an ``early_error`` case, whose input stops inside the
head, may instead stay incomplete: this parser decides on complete heads); ``incomplete``
and ``no-error`` must not fail; ``parser-specific`` cases (methods outside http-parser's
fixed list) are tokens, so they parse. Where RFC 9112 allows both outcomes (verdict
``either``: obs-fold, bare LF, CL with TE, huge Content-Length...) a refusal is accepted.
An HTTP/1.1 request without Host is refused (``MISSING_HOST``, RFC 9112 §3.2) even where the
table calls it valid; for those the scanner's spans are still checked against the table.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from pysozu.parser import scan_head
from tests.parser.helpers import Outcome, outcomes

DATA = Path(__file__).resolve().parents[1] / "data" / "http1_cases.json"
CASES: list[dict[str, Any]] = json.loads(DATA.read_text())["cases"]


def latin1(text: str) -> bytes:
    return text.encode("latin-1")


def trimmed(value: str) -> bytes:
    """A field value without surrounding OWS (RFC 9110 §5.5). The table says its values are
    trimmed, but one is not: ``responses[0]`` lists ``Content-Length`` as ``"219  "``."""
    return latin1(value).strip(b" \t")


def check_messages(case: dict[str, Any], out: Outcome, raw: bytes) -> None:
    expected = case["messages"]
    assert len(out.messages) == len(expected)
    for got, want in zip(out.messages, expected, strict=True):
        version = b"HTTP/1.%d" % got["version_minor"]
        assert version == latin1(want["version"])
        if "method" in want:
            assert got["method"] == latin1(want["method"])
            assert got["target"] == latin1(want["target"])
        else:
            assert got["status"] == want["status"]
            assert got["reason"] == latin1(want["reason"])
        assert got["headers"] == [(latin1(n), trimmed(v)) for n, v in want["headers"]]
        if "body_b64" in want:
            assert got["body"] == base64.b64decode(want["body_b64"])
        assert got["complete"] == want["complete"]
        if want.get("upgrade"):
            assert got["upgrade"] is not None or got.get("method") == b"CONNECT"
    if "upgrade_data_from" in case:
        assert out.leftover == raw[case["upgrade_data_from"] :]


def check_scanned_head(case: dict[str, Any], raw: bytes) -> None:
    """A request refused for its missing Host: the head itself must scan as the table says."""
    rc, out = scan_head(raw, len(raw), 0, True, 16384, 100)
    assert rc > 0
    want = case["messages"][0]
    assert raw[out[1] : out[2]] == latin1(want["method"])
    assert raw[out[3] : out[4]] == latin1(want["target"])
    headers = [(raw[out[i + 1] : out[i + 2]], raw[out[i + 3] : out[i + 4]])
               for i in range(8, len(out), 5)]
    assert headers == [(latin1(n), trimmed(v)) for n, v in want["headers"]]


def test_table_loaded() -> None:
    assert len(CASES) == 100


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_conformance(case: dict[str, Any]) -> None:
    raw = base64.b64decode(case["raw_b64"])
    out = outcomes(raw, case["kind"])
    expected = case["expected"]
    either = case["rfc9112"]["verdict"] == "either"
    if out.error is not None:
        if expected in ("invalid", "valid-lenient"):
            # refused for the table's reason, not merely for the missing Host
            assert out.error[1] != "MISSING_HOST", out.error
            return
        if either:
            return
        assert out.error[1] == "MISSING_HOST" and "missing-host" in case["tags"], out.error
        if expected == "valid":
            check_scanned_head(case, raw)
        return
    if expected in ("invalid", "valid-lenient"):
        assert case.get("early_error"), "accepted an invalid message"
        assert not any(msg["complete"] for msg in out.messages)
    elif expected == "valid":
        check_messages(case, out, raw)
    else:
        assert expected in ("incomplete", "no-error", "parser-specific")
