"""Active health checks: probes, thresholds, events, and their effect on load balancing."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.conftest import WAIT, Proxy


class StatusBackend:
    """An HTTP backend whose /health status the test sets; other paths answer its name."""

    def __init__(self, name: str, status: int = 200) -> None:
        self.name = name
        self.status = status
        self.probes = 0
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if self.path == "/health":
                    backend.probes += 1
                    code, body = backend.status, b"health"
                else:
                    code, body = 200, backend.name.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backends() -> Iterator[list[StatusBackend]]:
    made = [StatusBackend("A"), StatusBackend("B")]
    try:
        yield made
    finally:
        for b in made:
            b.close()


def http_listener(proxy: Proxy) -> str:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    address = "127.0.0.1:%d" % sock.getsockname()[1]
    proxy.worker.offer_listen_socket(address, sock)
    proxy.ok("ADD_HTTP_LISTENER", address=address)
    proxy.ok("ACTIVATE_LISTENER", address=address, proxy="HTTP", from_scm=True)
    return address


def get(address: str, path: str = "/") -> tuple[int, str]:
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        conn.request("GET", path, headers={"Host": "app.test"})
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def setup(proxy: Proxy, backends: list[StatusBackend], **check: object) -> str:
    address = http_listener(proxy)
    proxy.ok("ADD_CLUSTER", cluster_id="app", load_balancing="ROUND_ROBIN")
    for n, b in enumerate(backends):
        proxy.ok("ADD_BACKEND", cluster_id="app", backend_id=f"app-{n}", address=b.address)
    proxy.ok("ADD_HTTP_FRONTEND", cluster_id="app", address=address, hostname="app.test")
    config = {"uri": "/health", "interval": 1, "timeout": 1, "healthy_threshold": 1,
              "unhealthy_threshold": 1, **check}
    proxy.ok("SET_HEALTH_CHECK", cluster_id="app", config=config)
    return address


def test_unhealthy_backend_is_skipped_then_recovers(proxy, backends):
    b = backends[1]
    b.status = 500
    address = setup(proxy, backends)
    event = proxy.channel.wait_event("HEALTH_CHECK_UNHEALTHY", timeout=WAIT)
    assert event["content"]["backend_id"] == "app-1"
    # every new connection now goes to A, whatever round robin would say
    assert {get(address)[1] for _ in range(6)} == {"A"}
    b.status = 200
    event = proxy.channel.wait_event("HEALTH_CHECK_HEALTHY", timeout=WAIT)
    assert event["content"]["backend_id"] == "app-1"
    assert {get(address)[1] for _ in range(6)} == {"A", "B"}
    checks = proxy.ok("QUERY_HEALTH_CHECKS")["content"]["health_checks"]
    assert checks["app"]["config"]["uri"] == "/health"
    assert checks["app"]["backends"]["app-1"]["healthy"] is True


def test_all_unhealthy_reports_the_cluster_and_fails_open(proxy, backends):
    for b in backends:
        b.status = 503
    address = setup(proxy, backends)
    proxy.channel.wait_event("NO_AVAILABLE_BACKENDS", timeout=WAIT)
    status, body = get(address)  # fail-open: still served by a NORMAL backend
    assert status == 200 and body in ("A", "B")
    backends[0].status = 200
    proxy.channel.wait_event("CLUSTER_RECOVERED", timeout=WAIT)
    assert {get(address)[1] for _ in range(4)} == {"A"}


def test_expected_status_and_thresholds(proxy, backends):
    a, b = backends
    a.status = 204
    b.status = 200
    setup(proxy, backends, expected_status=204, unhealthy_threshold=2)
    event = proxy.channel.wait_event("HEALTH_CHECK_UNHEALTHY", timeout=3 * WAIT)
    assert event["content"]["backend_id"] == "app-1"  # 200 is not the expected 204
    assert b.probes >= 2  # it took two failed probes (the threshold)


def test_remove_health_check_restores_backends(proxy, backends):
    backends[1].status = 500
    address = setup(proxy, backends)
    proxy.channel.wait_event("HEALTH_CHECK_UNHEALTHY", timeout=WAIT)
    proxy.ok("REMOVE_HEALTH_CHECK", cluster_id="app")
    assert {get(address)[1] for _ in range(6)} == {"A", "B"}
    assert proxy.ok("QUERY_HEALTH_CHECKS")["content"]["health_checks"] == {}
    answer = proxy.request("REMOVE_HEALTH_CHECK", cluster_id="app")
    assert answer["status"] == "FAILURE"


def test_dead_backend_fails_its_probe(proxy, backends):
    dead = backends[1]
    dead.close()
    setup(proxy, backends)
    event = proxy.channel.wait_event("HEALTH_CHECK_UNHEALTHY", timeout=WAIT)
    assert event["content"]["address"] == dead.address
