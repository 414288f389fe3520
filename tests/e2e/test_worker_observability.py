"""Access log and StatsD drain configured from the server settings reach their targets."""

from __future__ import annotations

import dataclasses
import json
import socket

from pysozu.config import ServerConfig
from pysozu.worker import Worker
from tests.conftest import WAIT, Proxy
from tests.e2e.http_helpers import fetch, http_app


def test_access_log_and_statsd_from_server_config(tmp_path, make_http_backend):
    collector = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    collector.bind(("127.0.0.1", 0))
    collector.settimeout(WAIT)
    log_path = tmp_path / "access.log"
    config = dataclasses.replace(
        ServerConfig(),
        access_logs_target=f"file://{log_path}",
        access_logs_format="json",
        metrics_address="127.0.0.1:%d" % collector.getsockname()[1],
        metrics_prefix="t",
    )
    proxy = Proxy(Worker(config))
    try:
        backend = make_http_backend("app")
        address = http_app(proxy, [backend.address])
        assert fetch(address, "/logged").status == 200
        lines: list[str] = []
        while not any(line.startswith("t.http.requests") for line in lines):
            data, _ = collector.recvfrom(65536)  # bounded by the socket timeout
            lines.extend(data.decode().split("\n"))
        assert "t.http.requests:1|c" in lines
    finally:
        proxy.close()
        collector.close()
    records = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [(r["path"], r["status"], r["cluster_id"]) for r in records] == [
        ("/logged", 200, "app")]
