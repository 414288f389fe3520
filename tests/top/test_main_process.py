"""``pysozu start`` with worker processes: a real main process, real workers, real clients.

Each test starts ``python -m pysozu start -c <config>`` (``worker_count = 2``) and drives it
with the CLI and the channel, as an operator would: fan-out, a worker killed with SIGKILL,
reload and upgrade under a load loop, events, metrics, signals. Waits are bounded polls.
"""

# ruff: noqa: F811  (the fixtures of test_cli.py are imported, then named as parameters)
from __future__ import annotations

import http.client
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pysozu.reactor.channel import Channel
from tests.conftest import WAIT, connect, dead_address, recv_all
from tests.e2e.http_helpers import HttpBackend
from tests.top.test_cli import ProxyProcess, start_proxy, wait_for, workdir  # noqa: F401

HOST = "app.test"


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    b = HttpBackend("one")
    try:
        yield b
    finally:
        b.close()


def http_config(listen: str, backends: list[str], *, workers: int = 2, extra: str = "",
                **server: Any) -> str:
    lines = ['command_socket = "pysozu.sock"', 'log_level = "warn"',
             f"worker_count = {workers}"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in server.items()]
    backend_list = ", ".join(f'{{ address = "{b}", backend_id = "app-{n}" }}'
                             for n, b in enumerate(backends))
    return "\n".join(lines) + f"""

[[listeners]]
protocol = "http"
address = "{listen}"

[clusters.app]
protocol = "http"
frontends = [{{ address = "{listen}", hostname = "{HOST}" }}]
backends = [{backend_list}]
{extra}"""


def get(address: str, path: str = "/", host: str = HOST) -> tuple[int, bytes]:
    hostname, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(hostname, int(port), timeout=WAIT)
    try:
        conn.request("GET", path, headers={"Host": host})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def request(process: ProxyProcess, kind: str, **fields: Any) -> dict[str, Any]:
    with Channel.connect(process.socket_path, timeout=WAIT) as channel:
        answer: dict[str, Any] = channel.request({"type": kind, **fields}, timeout=3 * WAIT)
    return answer


def workers(proxy: ProxyProcess) -> list[dict[str, Any]]:
    answer = request(proxy, "LIST_WORKERS")
    assert answer["status"] == "OK", answer
    return list(answer["content"]["workers"])


class LoadLoop:
    """Requests on new connections, one after the other, until stopped: every outcome is
    counted (a refused connection or a failed request is a failure)."""

    def __init__(self, address: str, path: str = "/loop") -> None:
        self.address = address
        self.path = path
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status, _ = get(self.address, self.path)
                if status == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"status {status}")
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(repr(e))  # a response cut short is a failure too

    def __enter__(self) -> LoadLoop:
        self.thread.start()
        return self

    def wait_requests(self, n: int) -> None:
        target = self.ok + n
        wait_for(lambda: self.ok >= target or not self.thread.is_alive(),
                 f"{n} more requests")
        assert self.thread.is_alive(), f"the load loop ended: {self.failures}"

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(WAIT)


@pytest.fixture
def two_workers(start_proxy: Callable[..., ProxyProcess], backend: HttpBackend,
                workdir: Path) -> tuple[ProxyProcess, str]:
    listen = dead_address()
    proxy = start_proxy(http_config(listen, [backend.address],
                                    access_logs_target=f"file://{workdir}/access.log",
                                    access_logs_format="json",
                                    pid_file_path=str(workdir / "pysozu.pid")))
    return proxy, listen


def test_both_workers_serve_and_log_their_id(two_workers, workdir) -> None:
    proxy, listen = two_workers
    assert len(workers(proxy)) == 2
    log = workdir / "access.log"

    def both_seen() -> bool:
        assert get(listen, "/who")[0] == 200
        if not log.exists():
            return False
        ids = {json.loads(line).get("worker") for line in log.read_text().splitlines()}
        return ids == {0, 1}

    wait_for(both_seen, "requests served by both workers (worker ids in the access log)")
    assert (workdir / "pysozu.pid").read_text().strip() == str(proxy.proc.pid)


def test_every_request_reaches_every_worker(two_workers, backend) -> None:
    proxy, listen = two_workers
    other = HttpBackend("two")
    try:
        proxy.ok("cluster", "add", "second")
        proxy.ok("backend", "add", "second", "second-0", other.address)
        proxy.ok("frontend", "add", "--http", "--hostname", "second.test", "second", listen)
        status = request(proxy, "STATUS")["content"]
        hashes = {w["state_hash"] for w in status["workers"].values()}
        assert len(status["workers"]) == 2 and len(hashes) == 1
        # whichever worker accepts, the new route is there
        assert {get(listen, "/x", "second.test")[1] for _ in range(10)} == {b"two GET /x"}
    finally:
        other.close()


def test_a_request_every_worker_refuses_names_them_and_changes_nothing(two_workers) -> None:
    proxy, _ = two_workers
    before = request(proxy, "LIST_LISTENERS")["content"]
    answer = request(proxy, "ADD_HTTP_LISTENER", address=dead_address(),
                     answers={"404": "file:///nonexistent/404.html"})
    assert answer["status"] == "FAILURE"
    assert "worker 0:" in answer["message"] and "worker 1:" in answer["message"]
    assert request(proxy, "LIST_LISTENERS")["content"] == before


def test_metrics_are_summed_across_workers(two_workers) -> None:
    proxy, listen = two_workers
    for _ in range(20):
        assert get(listen)[0] == 200
    metrics = request(proxy, "QUERY_METRICS")["content"]
    assert metrics["counters"]["http.requests"] == 20
    assert len(request(proxy, "QUERY_METRICS", workers=True)["content"]["workers"]) == 2
    # a histogram merges as one: counts add up (not percentiles)
    assert metrics["clusters"]["app"]["metrics"]["request_time"]["count"] == 20
    status = request(proxy, "STATUS")["content"]
    assert status["metrics"]["counters"]["http.requests"] == 20
    per_worker = [w["metrics"]["counters"].get("http.requests", 0)
                  for w in status["workers"].values()]
    assert sum(per_worker) == 20


def test_a_killed_worker_is_replaced_with_the_current_state(two_workers, backend) -> None:
    proxy, listen = two_workers
    proxy.ok("frontend", "add", "--http", "--hostname", "late.test", "app", listen)
    victim = workers(proxy)[0]
    with LoadLoop(listen) as loop:
        loop.wait_requests(5)
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(lambda: victim["pid"] not in [w["pid"] for w in workers(proxy)]
                 and len(workers(proxy)) == 2, "a new worker in place of the killed one")
        loop.wait_requests(20)
    status = request(proxy, "STATUS")["content"]
    assert len({w["state_hash"] for w in status["workers"].values()}) == 1
    # the replacement knows the frontend added before it was born
    assert {get(listen, "/late", "late.test")[0] for _ in range(10)} == {200}
    assert proxy.proc.poll() is None  # the main process lives on


def test_reload_under_load_applies_the_difference(two_workers, workdir, backend) -> None:
    proxy, listen = two_workers
    config = workdir / "config.toml"
    extra = f"""
[clusters.more]
protocol = "http"
frontends = [{{ address = "{listen}", hostname = "more.test" }}]
backends = [{{ address = "{backend.address}", backend_id = "more-0" }}]
"""
    with LoadLoop(listen) as loop:
        loop.wait_requests(5)
        config.write_text(config.read_text() + extra)
        out = proxy.ok("reload")
        # only the difference: the cluster, its frontend and its backend
        assert out.strip() == "3 changes applied"
        loop.wait_requests(10)
    assert loop.failures == []
    assert get(listen, "/m", "more.test")[0] == 200


def test_a_bad_config_on_reload_changes_nothing(two_workers, workdir) -> None:
    proxy, listen = two_workers
    config = workdir / "config.toml"
    before = request(proxy, "LIST_LISTENERS")["content"]
    config.write_text(config.read_text() + "\n[[listeners]]\nprotocol = 'nope'\n")
    result = proxy.cli("reload")
    assert result.returncode == 1
    assert result.stderr.startswith("pysozu: error: the configuration was not reloaded: ")
    assert request(proxy, "LIST_LISTENERS")["content"] == before
    assert get(listen)[0] == 200


def test_sighup_reloads(two_workers, workdir, backend) -> None:
    proxy, listen = two_workers
    config = workdir / "config.toml"
    config.write_text(config.read_text().replace(f'hostname = "{HOST}"',
                                                 f'hostname = "{HOST}" }}, {{ address = '
                                                 f'"{listen}", hostname = "hup.test"'))
    proxy.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: get(listen, "/", "hup.test")[0] == 200, "the reloaded frontend")


def test_upgrade_under_load_refuses_nothing(two_workers, backend) -> None:
    proxy, listen = two_workers
    old = {w["pid"] for w in workers(proxy)}
    backend.release.clear()  # /hold waits at the backend until released
    with LoadLoop(listen) as loop, connect(listen) as held:
        held.sendall(f"GET /hold HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
                     .encode())
        wait_for(backend.arrived.is_set, "the held request at the backend")
        loop.wait_requests(5)
        out = proxy.ok("upgrade")
        assert "new workers serving" in out
        loop.wait_requests(10)
        # the old worker with a request in flight drains: its client still gets the answer
        states = {w["pid"]: w["run_state"] for w in workers(proxy)}
        assert "STOPPING" in states.values() and len(states) >= 3
        backend.release.set()
        answer = recv_all(held)
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"one GET /hold")
        wait_for(lambda: not old & {w["pid"] for w in workers(proxy)},
                 "the old workers gone")
        loop.wait_requests(10)
    assert loop.failures == []
    assert len(workers(proxy)) == 2


def test_events_of_every_worker_are_tagged(two_workers, backend) -> None:
    proxy, _ = two_workers
    with Channel.connect(proxy.socket_path, timeout=WAIT) as channel:
        assert channel.request({"type": "SUBSCRIBE_EVENTS"})["status"] == "OK"
        answer = request(proxy, "REMOVE_BACKEND", cluster_id="app", backend_id="app-0",
                         address=backend.address)
        assert answer["status"] == "OK", answer
        seen = set()
        while len(seen) < 2:
            event = channel.read_event(timeout=WAIT)
            seen.add(event["worker"])
    assert seen == {0, 1}


def refused(address: str) -> bool:
    try:
        connect(address).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_is_a_soft_stop(two_workers, workdir, backend) -> None:
    proxy, listen = two_workers
    backend.release.clear()  # /hold waits at the backend until released
    with connect(listen) as client:
        client.sendall(f"GET /hold HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        wait_for(backend.arrived.is_set, "the request at the backend")
        proxy.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not proxy.socket_path.exists(), "the command socket removed")
        # the workers close their copies of the listener as they take SOFT_STOP, just
        # after the main closes its own: connecting is refused once they have
        wait_for(lambda: refused(listen), "new connections refused")
        backend.release.set()  # the request in flight still gets its answer
        answer = recv_all(client)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"one GET /hold")
    assert proxy.wait_exit() == 0
    assert not (workdir / "pysozu.pid").exists()


def test_sigint_is_a_hard_stop(two_workers) -> None:
    proxy, listen = two_workers
    with connect(listen) as client:
        client.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        assert client.recv(12).startswith(b"HTTP/1.1 200")
        proxy.proc.send_signal(signal.SIGINT)
        assert proxy.wait_exit() == 0
        try:
            rest = recv_all(client)
        except ConnectionResetError:
            rest = b""
        assert b"HTTP/1.1" not in rest
    assert not proxy.socket_path.exists()


def test_prometheus_endpoint_sums_every_worker(start_proxy, backend) -> None:
    listen = dead_address()
    scrape_at = dead_address()
    proxy = start_proxy(http_config(listen, [backend.address],
                                    extra=f'\n[metrics]\nprometheus_address = "{scrape_at}"\n'))
    for _ in range(12):
        assert get(listen)[0] == 200
    host, port = scrape_at.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        text = response.read().decode()
        assert response.status == 200
        assert response.getheader("Content-Type").startswith("text/plain")
    finally:
        conn.close()
    lines = text.splitlines()
    assert "# TYPE sozu_http_requests counter" in lines
    assert "sozu_http_requests 12" in lines
    assert 'sozu_request_time_count{cluster="app"} 12' in lines
    assert any(line.startswith('sozu_request_time{cluster="app",quantile="0.99"} ')
               for line in lines)
    # and through the CLI: a table, and JSON (merged, or each worker's)
    assert "http.requests: 12" in proxy.ok("metrics")
    merged = json.loads(proxy.ok("--json", "metrics").splitlines()[-1])["content"]
    assert merged["counters"]["http.requests"] == 12
    apart = json.loads(proxy.ok("--json", "metrics", "--workers").splitlines()[-1])["content"]
    assert sum(w["counters"].get("http.requests", 0) for w in apart["workers"].values()) == 12


def test_every_state_change_reaches_every_worker(two_workers, backend, tmp_path) -> None:
    """After each request type that changes the configuration, every worker's state hash is
    the main process's (which STATUS reports as ``state_hash``)."""
    from tests.e2e.https_helpers import fingerprint_of, make_ca

    proxy, _ = two_workers
    ca = make_ca(tmp_path)
    pem, key = ca.issue(["secure.test"])
    pem2, key2 = ca.issue(["secure.test"], days=60)
    tcp, http_addr, https_addr = dead_address(), dead_address(), dead_address()
    gone = dead_address()
    steps: list[tuple[str, dict[str, Any]]] = [
        ("ADD_CLUSTER", {"cluster_id": "c2", "load_balancing": "RANDOM"}),
        ("ADD_BACKEND", {"cluster_id": "c2", "backend_id": "c2-0", "address": backend.address}),
        ("ADD_BACKEND", {"cluster_id": "c2", "backend_id": "c2-1", "address": gone}),
        ("REMOVE_BACKEND", {"cluster_id": "c2", "backend_id": "c2-1", "address": gone}),
        ("ADD_TCP_LISTENER", {"address": tcp}),
        ("UPDATE_TCP_LISTENER", {"address": tcp, "front_timeout": 7}),
        ("ACTIVATE_LISTENER", {"address": tcp, "proxy": "TCP"}),
        ("ADD_TCP_FRONTEND", {"cluster_id": "c2", "address": tcp}),
        ("REMOVE_TCP_FRONTEND", {"cluster_id": "c2", "address": tcp}),
        ("DEACTIVATE_LISTENER", {"address": tcp, "proxy": "TCP"}),
        ("REMOVE_LISTENER", {"address": tcp, "proxy": "TCP"}),
        ("ADD_HTTP_LISTENER", {"address": http_addr}),
        ("UPDATE_HTTP_LISTENER", {"address": http_addr, "sticky_name": "S"}),
        ("ADD_HTTP_FRONTEND", {"cluster_id": "c2", "address": http_addr, "hostname": "h.test"}),
        ("REMOVE_HTTP_FRONTEND", {"cluster_id": "c2", "address": http_addr,
                                  "hostname": "h.test"}),
        ("ADD_HTTPS_LISTENER", {"address": https_addr}),
        ("UPDATE_HTTPS_LISTENER", {"address": https_addr, "strict_sni_binding": False}),
        ("ADD_CERTIFICATE", {"address": https_addr,
                             "certificate": {"certificate": pem, "key": key}}),
        ("REPLACE_CERTIFICATE", {"address": https_addr, "old_fingerprint": fingerprint_of(pem),
                                 "new_certificate": {"certificate": pem2, "key": key2}}),
        ("ADD_HTTPS_FRONTEND", {"cluster_id": "c2", "address": https_addr,
                                "hostname": "secure.test"}),
        ("REMOVE_HTTPS_FRONTEND", {"cluster_id": "c2", "address": https_addr,
                                   "hostname": "secure.test"}),
        ("REMOVE_CERTIFICATE", {"address": https_addr, "fingerprint": fingerprint_of(pem2)}),
        ("SET_HEALTH_CHECK", {"cluster_id": "c2", "config": {"uri": "/h", "interval": 30}}),
        ("REMOVE_HEALTH_CHECK", {"cluster_id": "c2"}),
        ("SET_MAX_CONNECTIONS_PER_IP", {"limit": 9}),
        ("LOGGING", {"filter": "warn"}),
        ("CONFIGURE_METRICS", {"configuration": "ENABLED"}),
        ("REMOVE_CLUSTER", {"cluster_id": "c2"}),
    ]
    for kind, fields in steps:
        answer = request(proxy, kind, **fields)
        assert answer["status"] == "OK", (kind, answer)
        status = request(proxy, "STATUS")["content"]
        hashes = {w["state_hash"] for w in status["workers"].values()}
        assert hashes == {status["state_hash"]}, kind
    frontends = request(proxy, "LIST_FRONTENDS")["content"]
    assert [f["hostname"] for f in frontends["http"]] == [HOST]


def test_clients_of_the_other_workers_see_nothing_of_a_death(two_workers, workdir) -> None:
    proxy, listen = two_workers
    log = workdir / "access.log"
    with connect(listen) as client:
        def ask(path: str) -> bytes:
            client.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            data = b""
            while not data.endswith(b"one GET " + path.encode()):
                chunk = client.recv(4096)
                assert chunk, "the connection was closed"
                data += chunk
            return data

        ask("/first")
        wait_for(lambda: log.exists() and "/first" in log.read_text(), "the access log line")
        line = next(json.loads(x) for x in log.read_text().splitlines() if "/first" in x)
        other = next(w for w in workers(proxy) if w["id"] != line["worker"])
        os.kill(other["pid"], signal.SIGKILL)
        wait_for(lambda: other["pid"] not in [w["pid"] for w in workers(proxy)]
                 and len(workers(proxy)) == 2, "the killed worker replaced")
        assert ask("/second").startswith(b"HTTP/1.1 200")  # same connection, same worker


def test_serving_processes_tune_the_collector():
    """Worker processes (and the single-process ``pysozu start``) freeze the startup heap
    and raise the young generation's threshold before serving (see
    ``tune_gc_for_serving``); a process that only imports pysozu keeps CPython's defaults."""
    import subprocess
    import sys

    probe = ("import gc; from pysozu.worker import tune_gc_for_serving as t; "
             "before = (gc.get_threshold(), gc.get_freeze_count()); t(); "
             "print(before, (gc.get_threshold(), gc.get_freeze_count() > 1000))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=WAIT, check=True).stdout.strip()
    assert out == "((700, 10, 10), 0) ((10000, 20, 50), True)"
