"""The ``pysozu`` command line, run as real subprocesses against a real proxy process.

Every test starts ``python -m pysozu start -c <config>`` with its command socket in a
temporary folder and a listener on a free port, waits for the command socket with a bounded
poll, then drives it with client verbs run as subprocesses, exactly as a user would. Waits
are bounded by ``WAIT`` (a hang is a clear failure) and every process is killed in a
``finally``.
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pysozu.reactor.channel import Channel, ChannelError
from tests.conftest import WAIT, EchoBackend, connect, dead_address, recv_all

POLL = 0.05  # seconds between two tries of a bounded poll
PYSOZU = [sys.executable, "-m", "pysozu"]


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``condition`` every 50 ms; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL)


def free_address() -> str:
    """A 127.0.0.1 port that was free a moment ago (bound, then closed)."""
    return dead_address()


def round_trip(address: str, payload: bytes = b"ping") -> bytes:
    with connect(address) as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        return recv_all(client)


def tcp_config(listen: str, backend: str, **server: Any) -> str:
    """A configuration with one TCP listener routed to cluster ``app`` and one backend."""
    lines = ['command_socket = "pysozu.sock"', 'log_level = "warn"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in server.items()]
    return (
        "\n".join(lines)
        + f"""

[[listeners]]
protocol = "tcp"
address = "{listen}"

[clusters.app]
protocol = "tcp"
frontends = [{{ address = "{listen}" }}]
backends = [{{ address = "{backend}", backend_id = "app-0" }}]
"""
    )


def run_cli(*args: str, cwd: Path, timeout: float = 3 * WAIT) -> subprocess.CompletedProcess[str]:
    """Run ``pysozu ARGS`` and return its outcome (bounded by ``timeout``)."""
    return subprocess.run(
        [*PYSOZU, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class ProxyProcess:
    """A ``pysozu start`` subprocess; stdout and stderr go to files (no pipe can fill)."""

    def __init__(self, workdir: Path, *args: str, socket_path: Path) -> None:
        self.workdir = workdir
        self.socket_path = socket_path
        self.stdout_path = workdir / "proxy.out"
        self.stderr_path = workdir / "proxy.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [*PYSOZU, "start", *args],
                cwd=workdir,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_ready(self) -> None:
        """Retry connecting every 50 ms (up to ``WAIT``) until the loop answers STATUS.

        An answer proves the loop runs, so the banner was printed and the signal handlers
        are installed.
        """
        deadline = time.monotonic() + WAIT
        last_error = "nothing tried"
        while True:
            if self.proc.poll() is not None:
                pytest.fail(
                    f"pysozu start exited with {self.proc.returncode} before it was ready\n"
                    f"stdout: {self.stdout}\nstderr: {self.stderr}"
                )
            try:
                with Channel.connect(self.socket_path, timeout=1.0) as channel:
                    answer = channel.request({"type": "STATUS"}, timeout=WAIT)
                assert answer["status"] == "OK", answer
                return
            except (OSError, ChannelError) as e:
                last_error = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the command socket {self.socket_path} did not answer within {WAIT:g} s "
                    f"({last_error})\nstdout: {self.stdout}\nstderr: {self.stderr}"
                )
            time.sleep(POLL)

    def cli(self, *args: str, timeout: float = 3 * WAIT) -> subprocess.CompletedProcess[str]:
        """A client verb aimed at this proxy's command socket."""
        return run_cli("-s", str(self.socket_path), *args, cwd=self.workdir, timeout=timeout)

    def ok(self, *args: str) -> str:
        """Run a client verb that must succeed; its stdout."""
        result = self.cli(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert result.stderr == "", result.stderr
        return result.stdout

    def wait_exit(self) -> int:
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pysozu start did not exit within {WAIT:g} s\nstderr: {self.stderr}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT)


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A folder for configs and the command socket, short enough for a unix socket path."""
    if len(str(tmp_path / "pysozu.sock")) < 100:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="pysozu-cli-"))
    try:
        yield short
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def start_proxy(workdir: Path) -> Iterator[Callable[..., ProxyProcess]]:
    """``start_proxy(config_text, *args)``: write the config, start the proxy, wait for it."""
    processes: list[ProxyProcess] = []

    def start(config_text: str, *args: str, name: str = "config.toml") -> ProxyProcess:
        config = workdir / name
        config.write_text(config_text)
        process = ProxyProcess(
            workdir, "-c", str(config), *args, socket_path=workdir / "pysozu.sock"
        )
        processes.append(process)
        process.wait_ready()
        return process

    try:
        yield start
    finally:
        for process in processes:
            process.kill()


@pytest.fixture
def running(
    start_proxy: Callable[..., ProxyProcess], echo_backend: EchoBackend
) -> tuple[ProxyProcess, str]:
    """A proxy whose listener (returned with it) forwards to the echo backend: a main
    process and its workers (``worker_count``: the number of CPUs)."""
    listen = free_address()
    return start_proxy(tcp_config(listen, echo_backend.address)), listen


@pytest.fixture
def single(
    start_proxy: Callable[..., ProxyProcess], echo_backend: EchoBackend
) -> tuple[ProxyProcess, str]:
    """As ``running``, with ``worker_count = 0``: one process, main and worker at once."""
    listen = free_address()
    return start_proxy(tcp_config(listen, echo_backend.address, worker_count=0)), listen


# --------------------------------------------------------------------------------------------
# Starting and serving
# --------------------------------------------------------------------------------------------


def test_start_serves_traffic_and_status(running: tuple[ProxyProcess, str]) -> None:
    proxy, listen = running
    assert round_trip(listen, b"hello through pysozu") == b"hello through pysozu"

    banner = proxy.stdout
    assert str(proxy.socket_path) in banner
    assert f"tcp listener {listen} -> cluster app" in banner

    out = proxy.ok("status")
    assert "running" in out
    assert f"{listen}: active" in out

    # --json may come after the verb too; the raw response is one JSON object per line.
    answer = json.loads(proxy.ok("status", "--json"))
    assert answer["status"] == "OK"
    assert answer["content"]["listeners"] == {listen: True}


def test_config_option_finds_the_command_socket(
    running: tuple[ProxyProcess, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """``-c FILE`` (relative command_socket resolved next to the file) from another folder."""
    proxy, _ = running
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    result = run_cli("-c", str(proxy.workdir / "config.toml"), "status", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "running" in result.stdout


def test_state_verbs(running: tuple[ProxyProcess, str], echo_backend: EchoBackend) -> None:
    proxy, listen = running
    out = proxy.ok("state", "list")
    assert f"{listen}  active" in out
    assert "cluster app: ROUND_ROBIN" in out
    assert f"frontend {listen}" in out
    assert f"backend app-0 {echo_backend.address}, weight 100" in out

    lines = proxy.ok("--json", "state", "list").splitlines()
    answers = [json.loads(line) for line in lines]
    assert [a["status"] for a in answers] == ["OK", "OK", "OK"]
    assert listen in answers[0]["content"]["tcp_listeners"]
    hashes = answers[1]["content"]["cluster_hashes"]
    assert list(hashes) == ["app"]
    assert answers[2]["content"]["backends"][0]["address"] == echo_backend.address

    assert proxy.ok("state", "hashes").split() == ["app", str(hashes["app"])]

    shown = proxy.ok("cluster", "show", "app")
    assert shown.splitlines()[0] == "cluster app: ROUND_ROBIN"
    assert f"backend app-0 {echo_backend.address}" in shown


def test_live_reconfiguration(
    running: tuple[ProxyProcess, str], make_echo_backend: Callable[..., EchoBackend]
) -> None:
    proxy, _ = running
    other = make_echo_backend(greeting=b"web:")
    listen = free_address()

    assert "cluster web added" in proxy.ok(
        "cluster", "add", "web", "--load-balancing", "least_loaded", "--load-metric", "connections"
    )
    proxy.ok("backend", "add", "web", "web-0", other.address, "--weight", "7", "--sticky-id", "s1")
    out = proxy.ok("listener", "add", listen, "--front-timeout", "20")
    assert f"listening on {listen}" in out
    proxy.ok("frontend", "add", "web", listen, "--tag", "env=test")
    assert round_trip(listen, b"x") == b"web:x"

    shown = proxy.ok("cluster", "show", "web")
    assert "cluster web: LEAST_LOADED (CONNECTIONS)" in shown
    assert f"frontend {listen} env=test" in shown
    assert f"backend web-0 {other.address}, weight 7, sticky id s1" in shown
    assert f"{listen}  active, timeouts front 20s" in proxy.ok("listener", "list")

    proxy.ok("listener", "update", listen, "--back-timeout", "9", "--expect-proxy")
    listeners = json.loads(proxy.ok("--json", "listener", "list"))["content"]["tcp_listeners"]
    assert listeners[listen]["back_timeout"] == 9
    assert listeners[listen]["expect_proxy"] is True
    proxy.ok("listener", "update", listen, "--no-expect-proxy")

    proxy.ok("listener", "deactivate", listen)
    with pytest.raises(ConnectionRefusedError):
        connect(listen).close()
    proxy.ok("listener", "activate", listen)
    assert round_trip(listen, b"y") == b"web:y"

    proxy.ok("frontend", "remove", "web", listen)
    proxy.ok("backend", "remove", "web", "web-0", other.address)
    proxy.ok("cluster", "remove", "web")
    proxy.ok("listener", "remove", listen)
    assert "web" not in proxy.ok("state", "hashes")
    assert listen not in proxy.ok("listener", "list")


def test_http_and_runtime_verbs_reach_the_worker(running: tuple[ProxyProcess, str]) -> None:
    """The verbs of the HTTP issue send well-formed requests to a live proxy. Until the worker
    carries them out it refuses them by type (a FAILURE, exit 1, its message on stderr); a
    verb it handles answers OK. Either way the proxy goes on serving."""
    proxy, listen = running
    http_listen = free_address()
    verbs = [
        ["listener", "add", http_listen, "--http", "--sticky-name", "LB", "--inactive"],
        ["listener", "update", http_listen, "--http", "--request-timeout", "3"],
        ["frontend", "add", "app", http_listen, "--http", "--hostname", "example.com"],
        ["frontend", "remove", "app", http_listen, "--http", "--hostname", "example.com"],
        ["query", "domain", "example.com", "--path", "/"],
        ["metrics", "--cluster", "app"],
        ["metrics", "--clear"],
        ["logging", "info"],
        ["health-check", "set", "app", "--uri", "/health", "--interval", "5"],
        ["health-check", "list"],
        ["health-check", "remove", "app"],
        ["max-connections-per-ip", "5"],
        ["max-connections-per-ip"],
    ]
    for argv in verbs:
        result = proxy.cli(*argv)
        assert "Traceback" not in result.stderr, (argv, result.stderr)
        if result.returncode == 0:
            continue
        assert result.returncode == 1, (argv, result.stderr)
        assert result.stderr.startswith("pysozu: error: "), (argv, result.stderr)
        assert "not handled by workers" in result.stderr or "not supported" in result.stderr, (
            argv,
            result.stderr,
        )
    # A malformed value is refused by the worker's request check, whatever it supports.
    result = proxy.cli("logging", "loud")
    assert result.returncode == 1
    assert "invalid log level in 'loud'" in result.stderr
    assert round_trip(listen, b"still serving") == b"still serving"
    assert "running" in proxy.ok("status")


def test_listener_add_inactive(running: tuple[ProxyProcess, str]) -> None:
    proxy, _ = running
    listen = free_address()
    assert "(inactive)" in proxy.ok("listener", "add", listen, "--inactive")
    assert f"{listen}  inactive" in proxy.ok("listener", "list")


def test_state_save_then_load_in_a_new_proxy(
    start_proxy: Callable[..., ProxyProcess], echo_backend: EchoBackend, workdir: Path
) -> None:
    listen = free_address()
    first = start_proxy(tcp_config(listen, echo_backend.address))
    # A relative path is the client's: the CLI sends it absolute to the proxy.
    assert "saved" in first.ok("state", "save", "saved.state")
    state_file = workdir / "saved.state"
    assert "ADD_BACKEND" in state_file.read_text()
    first.ok("stop")
    assert first.wait_exit() == 0

    second = start_proxy('command_socket = "pysozu.sock"\n', name="empty.toml")
    assert second.ok("state", "hashes").strip() == "no clusters"
    assert "loaded" in second.ok("state", "load", str(state_file))
    assert "app" in second.ok("state", "hashes")
    assert round_trip(listen, b"restored") == b"restored"


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


def test_worker_failure_is_reported(running: tuple[ProxyProcess, str]) -> None:
    proxy, _ = running
    result = proxy.cli("backend", "add", "nope", "nope-0", "127.0.0.1:9")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == "pysozu: error: cluster 'nope' not found (ADD_BACKEND 'nope-0')\n"

    # With --json the raw FAILURE still goes to stdout, and the status is still 1.
    result = proxy.cli("--json", "cluster", "remove", "nope")
    assert result.returncode == 1
    assert json.loads(result.stdout)["status"] == "FAILURE"
    assert "not found" in result.stderr


def test_bad_config_key_names_key_and_line(workdir: Path, echo_backend: EchoBackend) -> None:
    config = workdir / "bad.toml"
    text = tcp_config(free_address(), echo_backend.address)
    text = text.replace('protocol = "tcp"\nfrontends', 'protocol = "tcp"\nbogus_key = 1\nfrontends')
    config.write_text(text)
    line = text.splitlines().index("bogus_key = 1") + 1
    result = run_cli("start", "-c", str(config), cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("pysozu: error: ")
    assert f"{config}:{line}: clusters.app.bogus_key: unknown key" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "pysozu.sock").exists()


def test_unreachable_socket(workdir: Path) -> None:
    result = run_cli("-s", str(workdir / "nobody.sock"), "status", cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.startswith(f"pysozu: error: cannot reach the proxy at {workdir}")
    assert "is `pysozu start` running?" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["frobnicate"],
        ["cluster"],
        ["backend", "add", "app"],
        ["cluster", "add", "app", "--load-balancing", "fastest"],
        ["frontend", "add", "app", "127.0.0.1:1", "--tag", "novalue"],
        ["--timeout", "-1", "status"],
        ["listener", "update", "127.0.0.1:1"],  # nothing to update
    ],
)
def test_usage_errors_exit_2(args: list[str], workdir: Path) -> None:
    # Usage is checked before any connection: no proxy runs here.
    result = run_cli(*args, cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "usage: pysozu" in result.stderr


def test_command_socket_taken_by_a_live_proxy(
    running: tuple[ProxyProcess, str], workdir: Path
) -> None:
    proxy, _ = running
    result = run_cli("start", "-c", str(workdir / "config.toml"), cwd=workdir)
    assert result.returncode == 1
    assert result.stderr == (
        f"pysozu: error: cannot listen on the command socket {proxy.socket_path}: "
        f"a proxy already answers on {proxy.socket_path}\n"
    )
    # The live proxy kept its socket.
    assert "running" in proxy.ok("status")


def test_listener_address_in_use(workdir: Path, echo_backend: EchoBackend) -> None:
    taken = socket.socket()
    try:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        address = "127.0.0.1:%d" % taken.getsockname()[1]
        config = workdir / "busy.toml"
        config.write_text(tcp_config(address, echo_backend.address))
        result = run_cli("start", "-c", str(config), cwd=workdir)
    finally:
        taken.close()
    assert result.returncode == 1
    assert result.stderr.startswith("pysozu: error: the configuration was refused: ")
    assert f"cannot listen on {address}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workdir / "pysozu.sock").exists()


# --------------------------------------------------------------------------------------------
# Stopping
# --------------------------------------------------------------------------------------------


def test_soft_stop_verb(running: tuple[ProxyProcess, str]) -> None:
    proxy, _ = running
    result = proxy.cli("stop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["soft stop: draining connections", "workers stopped"]
    assert proxy.wait_exit() == 0
    assert not proxy.socket_path.exists()


def test_hard_stop_verb_json(running: tuple[ProxyProcess, str]) -> None:
    proxy, listen = running
    with connect(listen) as client:
        client.sendall(b"open")
        assert client.recv(4) == b"open"
        result = proxy.cli("--json", "stop", "--hard")
        assert result.returncode == 0, result.stderr
        statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
        assert statuses == ["PROCESSING", "OK"]
        assert proxy.wait_exit() == 0
        assert recv_all_or_reset(client) == b""
    assert not proxy.socket_path.exists()


def recv_all_or_reset(sock: socket.socket) -> bytes:
    """What is left to read on a connection the proxy closed (a reset reads as nothing)."""
    try:
        return recv_all(sock)
    except ConnectionResetError:
        return b""


def test_sigterm_is_a_hard_stop(single: tuple[ProxyProcess, str]) -> None:
    proxy, listen = single
    with connect(listen) as client:
        client.sendall(b"open")
        assert client.recv(4) == b"open"
        proxy.proc.send_signal(signal.SIGTERM)
        assert proxy.wait_exit() == 0
        assert recv_all_or_reset(client) == b""
    assert not proxy.socket_path.exists()


def test_sigint_soft_stop_lets_connections_finish(single: tuple[ProxyProcess, str]) -> None:
    proxy, listen = single
    with connect(listen) as client:
        client.sendall(b"one")
        assert client.recv(3) == b"one"
        proxy.proc.send_signal(signal.SIGINT)
        # The soft stop closes the command socket and the listener at once...
        wait_for(lambda: not proxy.socket_path.exists(), "the command socket to go away")
        with pytest.raises(ConnectionRefusedError):
            connect(listen).close()
        # ...but the open connection goes on, and the proxy waits for it.
        client.sendall(b"two")
        assert client.recv(3) == b"two"
        assert proxy.proc.poll() is None
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == b""
    assert proxy.wait_exit() == 0
    assert "soft stop" in proxy.stderr


def test_second_sigint_is_a_hard_stop(single: tuple[ProxyProcess, str]) -> None:
    proxy, listen = single
    with connect(listen) as client:
        client.sendall(b"one")
        assert client.recv(3) == b"one"
        proxy.proc.send_signal(signal.SIGINT)
        wait_for(lambda: "soft stop" in proxy.stderr, "the soft stop notice")
        proxy.proc.send_signal(signal.SIGINT)
        assert proxy.wait_exit() == 0
        assert recv_all_or_reset(client) == b""
    assert "hard stop" in proxy.stderr


# --------------------------------------------------------------------------------------------
# The built-in configuration
# --------------------------------------------------------------------------------------------


def _port_taken(port: int) -> bool:
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


def test_default_config_serves_the_demo_backend(workdir: Path) -> None:
    taken = [port for port in (8080, 8081, 8082) if _port_taken(port)]
    if taken:
        pytest.skip(f"the built-in configuration needs 127.0.0.1:8080-8082; {taken} taken")
    proxy = ProxyProcess(workdir, socket_path=workdir / "pysozu.sock")  # no -c
    try:
        proxy.wait_ready()
        assert "try: curl http://127.0.0.1:8080/" in proxy.stdout

        assert "HTTP parser: " in proxy.stdout
        bodies = []
        for _ in range(2):  # a new connection each time: round robin over the two backends
            conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=WAIT)
            try:
                conn.request("GET", "/hello")
                response = conn.getresponse()
                bodies.append(response.read().decode())
            finally:
                conn.close()
            assert response.status == 200
            assert response.getheader("Sozu-Id")  # it went through the HTTP proxy
        assert all("pysozu" in body and "/hello" in body for body in bodies)
        assert sorted("127.0.0.1:8081" in body for body in bodies) == [False, True]
        assert sorted("127.0.0.1:8082" in body for body in bodies) == [False, True]

        curl = shutil.which("curl")
        if curl is not None:
            result = subprocess.run(
                [curl, "-sS", "--max-time", str(int(WAIT)), "http://127.0.0.1:8080/curl"],
                capture_output=True,
                text=True,
                timeout=2 * WAIT,
            )
            assert result.returncode == 0, result.stderr
            assert "GET /curl" in result.stdout

        # No -s and no -c: the client finds ./pysozu.sock, like the built-in config.
        result = run_cli("stop", cwd=workdir)
        assert result.returncode == 0, result.stderr
        assert proxy.wait_exit() == 0
        assert not (workdir / "pysozu.sock").exists()
    finally:
        proxy.kill()


def test_help_and_version(workdir: Path) -> None:
    result = run_cli("--help", cwd=workdir)
    assert result.returncode == 0
    for verb in (
        "start",
        "status",
        "state",
        "cluster",
        "backend",
        "listener",
        "frontend",
        "stop",
        "query",
        "metrics",
        "logging",
        "health-check",
        "max-connections-per-ip",
    ):
        assert verb in result.stdout
    result = run_cli("--version", cwd=workdir)
    assert result.returncode == 0
    assert result.stdout.startswith("pysozu ")


def test_main_in_process_reports_unreachable_socket(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``main(argv)`` returns the status instead of exiting (for embedding and tests)."""
    from pysozu.cli import main

    assert main(["-s", str(workdir / "none.sock"), "state", "hashes"]) == 1
    assert "cannot reach the proxy" in capsys.readouterr().err
