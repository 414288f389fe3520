from __future__ import annotations

import json

import pytest

from pysozu.protocols.access_log import AccessLogger, AccessRecord, format_ascii


def record(**kw):
    base = dict(
        request_id="01HXYZ", protocol="HTTP", client="127.0.0.1:5000",
        backend_address="127.0.0.1:8000", cluster_id="app", backend_id="app-0",
        method="GET", authority="example.com", path="/a?b=1", status=200,
        request_time=0.0123, service_time=0.01, bytes_in=120, bytes_out=3456,
        tags={"env": "prod", "team": "web"}, timestamp=1.0,
    )
    base.update(kw)
    return AccessRecord(**base)


def test_ascii_line_has_every_field():
    line = format_ascii(record())
    assert line == (
        "01HXYZ app/app-0 127.0.0.1:5000 -> 127.0.0.1:8000 12.300ms/10.000ms 120 3456 200 GET "
        "example.com/a?b=1 [env=prod, team=web] HTTP"
    )


def test_ascii_unknowns_are_dashes():
    line = format_ascii(AccessRecord(request_id="r", protocol="HTTP", message="no route"))
    assert line == "r -/- - -> - 0.000ms/- 0 0 - - - HTTP | no route"


def test_file_target_batches_lines(tmp_path):
    path = tmp_path / "access.log"
    logger = AccessLogger(f"file://{path}", "json")
    logger.log(record())
    logger.log(record(status=404, backend_id=None))
    assert path.read_text() == ""  # nothing written before the end of the loop pass
    logger.flush()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["status"] for x in lines] == [200, 404]
    assert "backend_id" not in lines[1]
    assert lines[0]["tags"] == {"env": "prod", "team": "web"}
    logger.close()


@pytest.mark.parametrize(
    "target,fmt", [("syslog", "ascii"), ("stdout", "xml"), ("file://", "json")]
)
def test_bad_settings_are_refused(target, fmt):
    with pytest.raises(ValueError):
        AccessLogger(target, fmt)
