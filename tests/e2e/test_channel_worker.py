"""The command channel through a real worker: every request type, every kind of bad input,
events, the command socket, state save/load and the stop requests.

Every test runs on both pollers (the ``proxy`` fixture is parametrised). The channel limit
is lowered to 4096 bytes for this module (``server_config`` below), which also shows that
ordinary requests fit well under it.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pysozu.command import REQUEST_SPECS
from pysozu.config import ServerConfig
from pysozu.reactor.channel import (
    PREFIX_SIZE,
    Channel,
    ChannelError,
    FrameDecoder,
    encode_frame,
)
from pysozu.worker import Worker
from tests.conftest import WAIT, EchoBackend, Proxy, connect, dead_address, recv_all

LIMIT = 4096


@pytest.fixture
def server_config() -> ServerConfig:
    return ServerConfig(max_command_buffer_size=LIMIT)


# -- helpers -----------------------------------------------------------------------------------


def raw_frame(body: bytes) -> bytes:
    return struct.pack("<Q", len(body) + PREFIX_SIZE) + body


def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"connection closed after {len(data)} of {n} bytes"
        data += chunk
    return bytes(data)


def assert_failure(answer: dict[str, Any], request_id: str, *fragments: str) -> None:
    assert answer["status"] == "FAILURE", answer
    assert answer["id"] == request_id, answer
    for fragment in fragments:
        assert fragment in answer["message"], (fragment, answer["message"])


def free_port_listener(stack: ExitStack) -> tuple[socket.socket, str]:
    """A socket that already listens on a port of 127.0.0.1 (the worker cannot bind it)."""
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock, f"127.0.0.1:{sock.getsockname()[1]}"


def run_in_loop(worker: Worker, func: Callable[[], Any]) -> Any:
    """Run ``func`` in the worker's thread (the loop is not thread-safe) and wait for it."""
    done = threading.Event()
    result: list[Any] = []

    def call() -> None:
        try:
            result.append(("ok", func()))
        except BaseException as e:
            result.append(("error", e))
        finally:
            done.set()

    worker.server.call_soon(call)
    assert done.wait(WAIT), "the worker loop did not run the callback"
    kind, value = result[0]
    if kind == "error":
        raise value
    return value


def serve_command_socket(proxy: Proxy, path: Path) -> str:
    run_in_loop(proxy.worker, lambda: proxy.worker.listen_command_socket(str(path)))
    return str(path)


# -- every request type answered with its id ---------------------------------------------------


def test_every_request_type_answered_with_its_id(
    proxy: Proxy, echo_backend: EchoBackend, tmp_path: Path
) -> None:
    seen: set[str] = set()

    def call(type_: str, **fields: Any) -> dict[str, Any]:
        request_id = f"id-{type_.lower()}-{len(seen)}"
        answer = proxy.channel.request({"id": request_id, "type": type_, **fields}, timeout=WAIT)
        assert answer["id"] == request_id, answer
        assert answer["status"] == "OK", answer
        seen.add(type_)
        return answer

    assert call("STATUS")["content"]["sessions"] == 0
    call("ADD_CLUSTER", cluster_id="app", load_balancing="RANDOM")
    call("ADD_BACKEND", cluster_id="app", backend_id="app-0", address=echo_backend.address)
    call("ADD_TCP_LISTENER", address="127.0.0.1:0")
    call("UPDATE_TCP_LISTENER", address="127.0.0.1:0", front_timeout=7)
    bound = call("ACTIVATE_LISTENER", address="127.0.0.1:0", proxy="TCP")["content"]
    bound_address = bound["bound_address"]
    assert bound_address.startswith("127.0.0.1:") and not bound_address.endswith(":0")
    call("ADD_TCP_FRONTEND", cluster_id="app", address="127.0.0.1:0")

    with connect(bound_address) as client:  # the configuration serves
        client.sendall(b"hello")
        assert recv_exact(client, 5) == b"hello"

    info = call("QUERY_CLUSTER_BY_ID", cluster_id="app")["content"]
    assert info["configuration"]["load_balancing"] == "RANDOM"
    assert [b["backend_id"] for b in info["backends"]] == ["app-0"]
    assert [f["address"] for f in info["tcp_frontends"]] == ["127.0.0.1:0"]
    hashes = call("QUERY_CLUSTERS_HASHES")["content"]["cluster_hashes"]
    assert set(hashes) == {"app"}
    listeners = call("LIST_LISTENERS")["content"]["tcp_listeners"]
    assert listeners["127.0.0.1:0"]["front_timeout"] == 7
    assert listeners["127.0.0.1:0"]["active"] is True
    assert listeners["127.0.0.1:0"]["bound_address"] == bound_address

    saved = call("SAVE_STATE", path=str(tmp_path / "state"))
    assert "saved 5 requests" in saved["message"]

    call("DEACTIVATE_LISTENER", address="127.0.0.1:0", proxy="TCP")
    call("REMOVE_TCP_FRONTEND", cluster_id="app", address="127.0.0.1:0")
    call("REMOVE_BACKEND", cluster_id="app", backend_id="app-0", address=echo_backend.address)
    call("REMOVE_LISTENER", address="127.0.0.1:0", proxy="TCP")
    call("REMOVE_CLUSTER", cluster_id="app")
    assert call("QUERY_CLUSTERS_HASHES")["content"]["cluster_hashes"] == {}

    loaded = call("LOAD_STATE", path=str(tmp_path / "state"))
    assert "loaded 5 requests" in loaded["message"]
    assert call("QUERY_CLUSTERS_HASHES")["content"]["cluster_hashes"] == hashes

    # SOFT_STOP and HARD_STOP end the worker: they have their own tests below.
    assert seen | {"SOFT_STOP", "HARD_STOP"} == FOUNDATION_TYPES
    assert set(proxy.worker._handlers) >= FOUNDATION_TYPES


#: The request types of the foundation issue (TCP); the HTTP ones have their own tests.
FOUNDATION_TYPES = {
    "STATUS", "ADD_CLUSTER", "REMOVE_CLUSTER", "ADD_BACKEND", "REMOVE_BACKEND",
    "ADD_TCP_LISTENER", "UPDATE_TCP_LISTENER", "REMOVE_LISTENER", "ACTIVATE_LISTENER",
    "DEACTIVATE_LISTENER", "ADD_TCP_FRONTEND", "REMOVE_TCP_FRONTEND", "SOFT_STOP", "HARD_STOP",
    "SAVE_STATE", "LOAD_STATE", "QUERY_CLUSTER_BY_ID", "QUERY_CLUSTERS_HASHES", "LIST_LISTENERS",
}


def test_every_known_type_is_handled(proxy: Proxy) -> None:
    """Every type the command layer accepts is carried out by the worker, except the main
    process's own requests, which a worker refuses by type."""
    main_only = {"LIST_WORKERS", "LIST_FRONTENDS", "SUBSCRIBE_EVENTS", "RELOAD_CONFIGURATION",
                 "UPGRADE_WORKERS"}
    assert set(REQUEST_SPECS) - main_only == set(proxy.worker._handlers)
    for kind in main_only:
        answer = proxy.request(kind)
        assert answer["status"] == "FAILURE" and "not handled by workers" in answer["message"]
    proxy.ok("SET_MAX_CONNECTIONS_PER_IP", limit=7)
    assert proxy.ok("QUERY_MAX_CONNECTIONS_PER_IP")["content"] == {"limit": 7}


def test_pipelined_requests_in_one_write_answered_in_order(proxy: Proxy) -> None:
    requests = [{"id": f"p{n}", "type": "ADD_CLUSTER", "cluster_id": f"c{n}"} for n in range(20)]
    requests.append({"id": "p-status", "type": "STATUS"})
    proxy.channel.send_raw(b"".join(encode_frame(r) for r in requests))
    for request in requests:
        answer = proxy.channel.read_response(request["id"], timeout=WAIT)
        assert answer["status"] == "OK", answer
    hashes = proxy.ok("QUERY_CLUSTERS_HASHES")["content"]["cluster_hashes"]
    assert len(hashes) == 20


def test_request_split_byte_by_byte_is_answered(proxy: Proxy) -> None:
    data = encode_frame({"id": "slow", "type": "STATUS"})
    for i in range(len(data)):
        proxy.channel.send_raw(data[i : i + 1])
    assert proxy.channel.read_response("slow", timeout=WAIT)["status"] == "OK"


# -- bad input: FAILURE saying why, and the worker keeps serving --------------------------------


@dataclass
class Ctx:
    proxy: Proxy
    client: socket.socket  # an open connection proxied to the echo backend
    listener: str  # address of the listener "app" is served on
    backend: str  # address of backend app-0
    stack: ExitStack = field(default_factory=ExitStack)
    pings: int = 0

    def send(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.proxy.channel.request(request, timeout=WAIT)

    def raw(self, data: bytes) -> dict[str, Any]:
        """Send raw bytes; the answer to an unparsable frame carries id ""."""
        self.proxy.channel.send_raw(data)
        return self.proxy.channel.read_response("", timeout=WAIT)

    def check_serving(self) -> None:
        self.pings += 1
        payload = b"ping %d" % self.pings
        self.client.sendall(payload)
        assert recv_exact(self.client, len(payload)) == payload
        status = self.proxy.request("STATUS")
        assert status["status"] == "OK", status
        assert status["content"]["sessions"] == 1  # the proxied connection is still open


@pytest.fixture
def ctx(proxy: Proxy, echo_backend: EchoBackend) -> Iterator[Ctx]:
    listener = proxy.tcp_cluster("app", [echo_backend.address])
    with ExitStack() as stack:
        client = stack.enter_context(connect(listener))
        c = Ctx(proxy, client, listener, echo_backend.address, stack)
        c.check_serving()  # the connection is established end to end
        yield c


Outcome = tuple[dict[str, Any], str, tuple[str, ...]]


def case_unknown_type(c: Ctx) -> Outcome:
    return (
        c.send({"id": "b1", "type": "LAUNCH_ROCKET"}),
        "b1",
        ("unknown request type 'LAUNCH_ROCKET'",),
    )


def case_missing_type(c: Ctx) -> Outcome:
    return c.send({"id": "b2"}), "b2", ("missing field 'type'",)


def case_missing_field(c: Ctx) -> Outcome:
    answer = c.send({"id": "b3", "type": "ADD_BACKEND", "cluster_id": "app", "backend_id": "x"})
    return answer, "b3", ("missing field 'address' for ADD_BACKEND",)


def case_wrong_field_type(c: Ctx) -> Outcome:
    answer = c.send({"id": "b4", "type": "ADD_CLUSTER", "cluster_id": 42})
    return answer, "b4", ("field 'cluster_id' must be a string",)


def case_wrong_integer_type(c: Ctx) -> Outcome:
    answer = c.send(
        {"id": "b5", "type": "UPDATE_TCP_LISTENER", "address": c.listener, "front_timeout": "60"}
    )
    return answer, "b5", ("field 'front_timeout' must be an integer",)


def case_integer_out_of_range(c: Ctx) -> Outcome:
    answer = c.send(
        {"id": "b6", "type": "UPDATE_TCP_LISTENER", "address": c.listener, "back_timeout": -1}
    )
    return answer, "b6", ("field 'back_timeout' must be between 0 and",)


def case_bad_enum(c: Ctx) -> Outcome:
    answer = c.send(
        {"id": "b7", "type": "ADD_CLUSTER", "cluster_id": "z", "load_balancing": "FASTEST"}
    )
    return answer, "b7", ("field 'load_balancing' must be one of", "FASTEST")


def case_bad_address(c: Ctx) -> Outcome:
    answer = c.send(
        {
            "id": "b8",
            "type": "ADD_BACKEND",
            "cluster_id": "app",
            "backend_id": "x",
            "address": "nowhere",
        }
    )
    return answer, "b8", ("field 'address'", "invalid address 'nowhere'")


def case_unknown_field(c: Ctx) -> Outcome:
    answer = c.send({"id": "b9", "type": "ADD_CLUSTER", "cluster_id": "z", "colour": "red"})
    return answer, "b9", ("unknown field 'colour' for ADD_CLUSTER",)


def case_backend_for_missing_cluster(c: Ctx) -> Outcome:
    answer = c.send(
        {
            "id": "b10",
            "type": "ADD_BACKEND",
            "cluster_id": "ghost",
            "backend_id": "g-0",
            "address": c.backend,
        }
    )
    return answer, "b10", ("cluster 'ghost' not found",)


def case_frontend_for_missing_cluster(c: Ctx) -> Outcome:
    answer = c.send(
        {"id": "b11", "type": "ADD_TCP_FRONTEND", "cluster_id": "ghost", "address": "127.0.0.1:1"}
    )
    return answer, "b11", ("cluster 'ghost' not found",)


def case_remove_missing_cluster(c: Ctx) -> Outcome:
    answer = c.send({"id": "b12", "type": "REMOVE_CLUSTER", "cluster_id": "ghost"})
    return answer, "b12", ("cluster 'ghost' not found",)


def case_query_missing_cluster(c: Ctx) -> Outcome:
    answer = c.send({"id": "b13", "type": "QUERY_CLUSTER_BY_ID", "cluster_id": "ghost"})
    return answer, "b13", ("cluster 'ghost' not found",)


def case_duplicate_backend_id(c: Ctx) -> Outcome:
    answer = c.send(
        {
            "id": "b14",
            "type": "ADD_BACKEND",
            "cluster_id": "app",
            "backend_id": "app-0",
            "address": "127.0.0.1:1",
        }
    )
    return answer, "b14", ("backend 'app-0' already exists in cluster 'app'", c.backend)


def case_duplicate_listener(c: Ctx) -> Outcome:
    answer = c.send({"id": "b15", "type": "ADD_TCP_LISTENER", "address": c.listener})
    return answer, "b15", (f"a TCP listener already exists on {c.listener}",)


def case_duplicate_frontend(c: Ctx) -> Outcome:
    answer = c.send(
        {"id": "b16", "type": "ADD_TCP_FRONTEND", "cluster_id": "app", "address": c.listener}
    )
    return answer, "b16", (f"a TCP frontend already exists on {c.listener}", "'app'")


def case_missing_listener(c: Ctx) -> Outcome:
    answer = c.send(
        {"id": "b17", "type": "ACTIVATE_LISTENER", "address": "127.0.0.1:1", "proxy": "TCP"}
    )
    return answer, "b17", ("TCP listener 127.0.0.1:1 not found",)


def case_add_active_listener_address_in_use(c: Ctx) -> Outcome:
    _, address = free_port_listener(c.stack)
    before = c.proxy.ok("STATUS")["content"]["state_hash"]
    answer = c.send({"id": "b18", "type": "ADD_TCP_LISTENER", "address": address, "active": True})
    # Refused as a whole: neither the state nor the worker keep the listener.
    assert c.proxy.ok("STATUS")["content"]["state_hash"] == before
    assert address not in c.proxy.ok("LIST_LISTENERS")["content"]["tcp_listeners"]
    assert address not in c.proxy.ok("STATUS")["content"]["listeners"]
    return answer, "b18", ("ADD_TCP_LISTENER failed", "Address already in use")


def case_activate_listener_address_in_use(c: Ctx) -> Outcome:
    _, address = free_port_listener(c.stack)
    c.proxy.ok("ADD_TCP_LISTENER", address=address)
    answer = c.send({"id": "b19", "type": "ACTIVATE_LISTENER", "address": address, "proxy": "TCP"})
    listeners = c.proxy.ok("LIST_LISTENERS")["content"]["tcp_listeners"]
    assert listeners[address]["active"] is False
    assert c.proxy.ok("STATUS")["content"]["listeners"][address] is False
    return answer, "b19", (f"cannot listen on {address}", "Address already in use")


def case_malformed_json(c: Ctx) -> Outcome:
    return c.raw(raw_frame(b'{"id": "b20", "type": STATUS}')), "", ("invalid JSON",)


def case_not_utf8(c: Ctx) -> Outcome:
    return c.raw(raw_frame(b'{"id": "\xff"}')), "", ("not UTF-8",)


def case_empty_body(c: Ctx) -> Outcome:
    return c.raw(raw_frame(b"")), "", ("invalid JSON",)


def case_frame_over_limit(c: Ctx) -> Outcome:
    big = encode_frame({"id": "b21", "type": "STATUS", "pad": "x" * (2 * LIMIT)})
    return c.raw(big), "", (f"{len(big)} bytes is over the limit of {LIMIT} bytes",)


def case_frame_over_limit_in_pieces_hiding_a_request(c: Ctx) -> Outcome:
    # The body of an oversized frame is skipped as it arrives, even when it holds what
    # looks like a frame: the hidden ADD_CLUSTER must not run.
    hidden = encode_frame({"id": "hidden", "type": "ADD_CLUSTER", "cluster_id": "hidden"})
    body = b"a" * LIMIT + hidden + b"b" * 100
    data = raw_frame(body)
    answer = c.raw(data[:PREFIX_SIZE])  # reported as soon as the length is known
    for start in range(PREFIX_SIZE, len(data), 1000):
        c.proxy.channel.send_raw(data[start : start + 1000])
    missing = c.send({"id": "q", "type": "QUERY_CLUSTER_BY_ID", "cluster_id": "hidden"})
    assert_failure(missing, "q", "cluster 'hidden' not found")
    # Answers come in order: had the hidden request run, its answer would be queued.
    assert "hidden" not in c.proxy.channel._responses
    return answer, "", (f"{len(data)} bytes is over the limit of {LIMIT} bytes",)


def case_length_prefix_under_8(c: Ctx) -> Outcome:
    return c.raw(struct.pack("<Q", 3)), "", ("length prefix 3 is under 8",)


def case_json_array(c: Ctx) -> Outcome:
    answer = c.raw(encode_frame([{"id": "b22", "type": "STATUS"}]))  # type: ignore[arg-type]
    return answer, "", ("invalid request: expected a JSON object, got an array",)


def case_empty_id(c: Ctx) -> Outcome:
    return c.send({"id": "", "type": "STATUS"}), "", ("field 'id' must be a non-empty string",)


def case_id_not_a_string(c: Ctx) -> Outcome:
    answer = c.raw(encode_frame({"id": 7, "type": "STATUS"}))
    return answer, "", ("field 'id' must be a non-empty string",)


def case_missing_id(c: Ctx) -> Outcome:
    return c.raw(encode_frame({"type": "STATUS"})), "", ("missing field 'id'",)


def case_load_missing_state_file(c: Ctx) -> Outcome:
    path = "/nonexistent/pysozu/state.json"
    answer = c.send({"id": "b23", "type": "LOAD_STATE", "path": path})
    return answer, "b23", ("cannot read state file", path, "No such file")


def case_save_state_in_missing_dir(c: Ctx) -> Outcome:
    answer = c.send({"id": "b24", "type": "SAVE_STATE", "path": "/nonexistent/pysozu/state"})
    return answer, "b24", ("SAVE_STATE failed", "No such file or directory")


CASES = [
    case_unknown_type,
    case_missing_type,
    case_missing_field,
    case_wrong_field_type,
    case_wrong_integer_type,
    case_integer_out_of_range,
    case_bad_enum,
    case_bad_address,
    case_unknown_field,
    case_backend_for_missing_cluster,
    case_frontend_for_missing_cluster,
    case_remove_missing_cluster,
    case_query_missing_cluster,
    case_duplicate_backend_id,
    case_duplicate_listener,
    case_duplicate_frontend,
    case_missing_listener,
    case_add_active_listener_address_in_use,
    case_activate_listener_address_in_use,
    case_malformed_json,
    case_not_utf8,
    case_empty_body,
    case_frame_over_limit,
    case_frame_over_limit_in_pieces_hiding_a_request,
    case_length_prefix_under_8,
    case_json_array,
    case_empty_id,
    case_id_not_a_string,
    case_missing_id,
    case_load_missing_state_file,
    case_save_state_in_missing_dir,
]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.removeprefix("case_") for c in CASES])
def test_bad_input_fails_and_worker_keeps_serving(ctx: Ctx, case: Callable[[Ctx], Outcome]) -> None:
    answer, request_id, fragments = case(ctx)
    assert_failure(answer, request_id, *fragments)
    ctx.check_serving()


def test_all_bad_inputs_in_a_row_on_one_channel(ctx: Ctx) -> None:
    hash_before = None
    for case in CASES:
        answer, request_id, fragments = case(ctx)
        assert_failure(answer, request_id, *fragments)
        ctx.check_serving()
        if hash_before is None:
            hash_before = ctx.proxy.ok("QUERY_CLUSTERS_HASHES")["content"]
    # No refused request changed a cluster.
    assert ctx.proxy.ok("QUERY_CLUSTERS_HASHES")["content"] == hash_before
    assert not ctx.proxy.channel.errors  # every answer was a well-formed frame


# -- events ------------------------------------------------------------------------------------


def test_no_available_backends_event(proxy: Proxy) -> None:
    listener = proxy.tcp_cluster("dead", [dead_address()])
    with connect(listener) as client:
        try:
            assert recv_all(client) == b""  # closed: nothing to connect to
        except ConnectionResetError:
            pass
    event = proxy.channel.wait_event("NO_AVAILABLE_BACKENDS", timeout=WAIT)
    assert event["id"] == "EVENT"
    assert event["status"] == "PROCESSING"
    assert event["content"]["cluster_id"] == "dead"
    # Events do not get in the way of answers.
    assert proxy.request("STATUS")["status"] == "OK"


def test_events_reach_every_channel(proxy: Proxy, tmp_path: Path) -> None:
    path = serve_command_socket(proxy, tmp_path / "sock")
    listener = proxy.tcp_cluster("dead", [dead_address()])
    with Channel.connect(path) as other:
        assert other.request({"type": "STATUS"}, timeout=WAIT)["status"] == "OK"
        with connect(listener) as client:
            try:
                recv_all(client)
            except ConnectionResetError:
                pass
        for channel in (proxy.channel, other):
            event = channel.wait_event("NO_AVAILABLE_BACKENDS", timeout=WAIT)
            assert event["content"]["cluster_id"] == "dead"


# -- the command socket ------------------------------------------------------------------------


def test_command_socket_serves_the_channel(
    proxy: Proxy, echo_backend: EchoBackend, tmp_path: Path
) -> None:
    path = serve_command_socket(proxy, tmp_path / "sock")
    with Channel.connect(path) as client:
        assert client.request({"id": "s1", "type": "STATUS"}, timeout=WAIT)["id"] == "s1"
        answer = client.request({"id": "s2", "type": "ADD_CLUSTER", "cluster_id": "viasock"})
        assert answer["status"] == "OK" and answer["id"] == "s2"
        answer = client.request(
            {
                "id": "s3",
                "type": "ADD_BACKEND",
                "cluster_id": "viasock",
                "backend_id": "v-0",
                "address": echo_backend.address,
            }
        )
        assert answer["status"] == "OK"
        bad = client.request(
            {
                "id": "s4",
                "type": "ADD_BACKEND",
                "cluster_id": "nope",
                "backend_id": "v-0",
                "address": echo_backend.address,
            }
        )
        assert_failure(bad, "s4", "cluster 'nope' not found")
        client.send_raw(struct.pack("<Q", 3))
        assert_failure(client.read_response("", timeout=WAIT), "", "length prefix 3 is under 8")
    # Both channels see the same worker.
    info = proxy.ok("QUERY_CLUSTER_BY_ID", cluster_id="viasock")["content"]
    assert [b["backend_id"] for b in info["backends"]] == ["v-0"]


def test_command_socket_two_clients_get_their_own_answers(proxy: Proxy, tmp_path: Path) -> None:
    path = serve_command_socket(proxy, tmp_path / "sock")
    proxy.ok("ADD_CLUSTER", cluster_id="a", load_balancing="RANDOM")
    proxy.ok("ADD_CLUSTER", cluster_id="b", load_balancing="LEAST_LOADED")
    with Channel.connect(path) as one, Channel.connect(path) as two:
        # Same id on both channels, different questions: each hears its own answer.
        one.send({"id": "q", "type": "QUERY_CLUSTER_BY_ID", "cluster_id": "a"})
        two.send({"id": "q", "type": "QUERY_CLUSTER_BY_ID", "cluster_id": "b"})
        assert (
            two.read_response("q", timeout=WAIT)["content"]["configuration"]["load_balancing"]
            == "LEAST_LOADED"
        )
        assert (
            one.read_response("q", timeout=WAIT)["content"]["configuration"]["load_balancing"]
            == "RANDOM"
        )
        # Half a frame on one channel does not hold the other up.
        frame = encode_frame({"id": "half", "type": "STATUS"})
        one.send_raw(frame[:13])
        for n in range(5):
            assert two.request({"id": f"t{n}", "type": "STATUS"}, timeout=WAIT)["id"] == f"t{n}"
        one.send_raw(frame[13:])
        assert one.read_response("half", timeout=WAIT)["status"] == "OK"
        # Pipelined on both, interleaved.
        for n in range(10):
            one.send({"id": f"x{n}", "type": "STATUS"})
            two.send({"id": f"x{n}", "type": "QUERY_CLUSTERS_HASHES"})
        for n in range(10):
            assert "sessions" in one.read_response(f"x{n}", timeout=WAIT)["content"]
            assert "cluster_hashes" in two.read_response(f"x{n}", timeout=WAIT)["content"]
        assert not one._responses and not two._responses  # nothing strayed


def test_command_socket_client_leaving_mid_frame(proxy: Proxy, tmp_path: Path) -> None:
    path = serve_command_socket(proxy, tmp_path / "sock")
    with Channel.connect(path) as stayer:
        assert stayer.request({"type": "STATUS"}, timeout=WAIT)["status"] == "OK"
        # Leaves in the middle of a frame.
        leaver = Channel.connect(path)
        frame = encode_frame({"id": "never", "type": "ADD_CLUSTER", "cluster_id": "never"})
        leaver.send_raw(frame[: len(frame) // 2])
        leaver.close()
        assert stayer.request({"type": "STATUS"}, timeout=WAIT)["status"] == "OK"
        # Leaves before reading its answers (the worker writes to a closed socket).
        rude = Channel.connect(path)
        for n in range(50):
            rude.send({"id": f"r{n}", "type": "LIST_LISTENERS"})
        rude.close()
        for n in range(5):
            answer = stayer.request({"id": f"s{n}", "type": "STATUS"}, timeout=WAIT)
            assert answer["id"] == f"s{n}" and answer["status"] == "OK"
        missing = stayer.request({"type": "QUERY_CLUSTER_BY_ID", "cluster_id": "never"})
        assert_failure(missing, missing["id"], "cluster 'never' not found")
    assert proxy.request("STATUS")["status"] == "OK"


def test_command_socket_one_shot_client_half_closes(proxy: Proxy, tmp_path: Path) -> None:
    # Like `nc -U`: write the requests, shut the write side, read answers until EOF.
    path = serve_command_socket(proxy, tmp_path / "sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(WAIT)
        sock.connect(path)
        sock.sendall(
            encode_frame({"id": "h1", "type": "ADD_CLUSTER", "cluster_id": "oneshot"})
            + encode_frame({"id": "h2", "type": "QUERY_CLUSTER_BY_ID", "cluster_id": "oneshot"})
        )
        sock.shutdown(socket.SHUT_WR)
        answers = FrameDecoder().feed(recv_all(sock))  # the worker closes after answering
    assert [(a["id"], a["status"]) for a in answers] == [("h1", "OK"), ("h2", "OK")]
    assert proxy.ok("QUERY_CLUSTER_BY_ID", cluster_id="oneshot")["status"] == "OK"


def test_command_socket_refuses_a_second_proxy_on_the_same_path(
    proxy: Proxy, tmp_path: Path
) -> None:
    path = serve_command_socket(proxy, tmp_path / "sock")
    other = Worker(ServerConfig(max_command_buffer_size=LIMIT))
    try:
        with pytest.raises(OSError, match="already answers"):
            other.listen_command_socket(path)
    finally:
        other.server.close()
    with Channel.connect(path) as client:
        assert client.request({"type": "STATUS"}, timeout=WAIT)["status"] == "OK"


def test_command_socket_removed_when_the_worker_stops(proxy: Proxy, tmp_path: Path) -> None:
    path = serve_command_socket(proxy, tmp_path / "sock")
    with Channel.connect(path) as client:
        request_id = client.send({"type": "SOFT_STOP"})
        assert client.read_response(request_id, timeout=WAIT)["status"] == "PROCESSING"
        assert client.read_response(request_id, timeout=WAIT)["status"] == "OK"
    assert proxy.worker._thread is not None
    proxy.worker._thread.join(WAIT)
    assert not proxy.worker._thread.is_alive()
    assert not os.path.exists(path)


# -- state save and load -----------------------------------------------------------------------


def build_state(proxy: Proxy, backends: list[str]) -> None:
    proxy.ok(
        "ADD_CLUSTER",
        cluster_id="app",
        load_balancing="LEAST_LOADED",
        load_metric="CONNECTIONS",
        answers={"503": "busy"},
    )
    proxy.ok("ADD_CLUSTER", cluster_id="other", proxy_protocol="SEND_HEADER")
    for n, address in enumerate(backends):
        proxy.ok(
            "ADD_BACKEND",
            cluster_id="app",
            backend_id=f"app-{n}",
            address=address,
            load_balancing_parameters={"weight": 10 + n},
        )
    proxy.ok(
        "ADD_BACKEND", cluster_id="other", backend_id="o-0", address="127.0.0.1:9", backup=True
    )
    proxy.ok("ADD_TCP_LISTENER", address="127.0.0.1:0", front_timeout=11, active=True)
    proxy.ok("ADD_TCP_LISTENER", address="127.0.0.2:0", expect_proxy=True)
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="app", address="127.0.0.1:0", tags={"k": "v"})
    proxy.ok("ADD_TCP_FRONTEND", cluster_id="other", address="127.0.0.2:0")


def without_bound(listeners: dict[str, Any]) -> dict[str, Any]:
    return {
        kind: {a: {k: v for k, v in c.items() if k != "bound_address"} for a, c in by.items()}
        for kind, by in listeners.items()
    }


def test_save_then_load_into_a_fresh_worker(
    proxy: Proxy,
    poller: str,
    server_config: ServerConfig,
    tmp_path: Path,
    make_echo_backend: Callable[..., EchoBackend],
) -> None:
    backends = [make_echo_backend().address for _ in range(2)]
    build_state(proxy, backends)
    path = tmp_path / "state"
    proxy.ok("SAVE_STATE", path=str(path))
    text = path.read_text()
    assert text.count("\n\0") == 10  # Sōzu's state file: requests separated by "\n\0"

    fresh = Proxy(Worker(server_config, poller=poller))
    try:
        loaded = fresh.ok("LOAD_STATE", path=str(path))
        assert "loaded 10 requests" in loaded["message"]
        assert (
            fresh.ok("STATUS")["content"]["state_hash"]
            == proxy.ok("STATUS")["content"]["state_hash"]
        )
        assert (
            fresh.ok("QUERY_CLUSTERS_HASHES")["content"]
            == proxy.ok("QUERY_CLUSTERS_HASHES")["content"]
        )
        ours = proxy.ok("LIST_LISTENERS")["content"]
        theirs = fresh.ok("LIST_LISTENERS")["content"]
        assert without_bound(theirs) == without_bound(ours)
        for cluster_id in ("app", "other"):
            assert (
                fresh.ok("QUERY_CLUSTER_BY_ID", cluster_id=cluster_id)["content"]
                == proxy.ok("QUERY_CLUSTER_BY_ID", cluster_id=cluster_id)["content"]
            )
        # The loaded worker serves what it loaded: its active listener proxies to "app".
        bound = theirs["tcp_listeners"]["127.0.0.1:0"]["bound_address"]
        with connect(bound) as client:
            client.sendall(b"loaded")
            assert recv_exact(client, 6) == b"loaded"
        # Saving the loaded state gives the same file.
        fresh.ok("SAVE_STATE", path=str(tmp_path / "again"))
        assert (tmp_path / "again").read_text() == text
    finally:
        fresh.close()


def test_load_state_twice_reports_each_refused_request(proxy: Proxy, tmp_path: Path) -> None:
    build_state(proxy, ["127.0.0.1:7"])
    path = tmp_path / "state"
    proxy.ok("SAVE_STATE", path=str(path))
    before = proxy.ok("STATUS")["content"]["state_hash"]
    answer = proxy.request("LOAD_STATE", path=str(path))
    assert_failure(
        answer,
        answer["id"],
        "4 of 9 requests failed",
        "a TCP listener already exists on",
        "a TCP frontend already exists on",
    )
    assert proxy.ok("STATUS")["content"]["state_hash"] == before


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        (b"\xff\xfe\x00garbage", ("cannot read state file", "utf-8")),
        (b"this is not a state file\n\0", ("entry 1: invalid JSON",)),
        (
            b'{"id": "x", "type": "ADD_CLUSTER", "cluster_id": "ok"}\n\0[1, 2]\n\0',
            ("entry 2: a request must be a JSON object",),
        ),
        (
            b'{"id": "x", "type": "ADD_CLUSTER", "cluster_id": "ok"}\n\0{"id": "y"}\n\0',
            ("entry 2: missing field 'type'",),
        ),
        (b'{"id": "x", "type": "FLY"}\n\0', ("entry 1: unknown request type 'FLY'",)),
    ],
    ids=["binary", "text", "array", "no-type", "unknown-type"],
)
def test_load_state_of_a_garbage_file(
    proxy: Proxy, tmp_path: Path, content: bytes, fragments: tuple[str, ...]
) -> None:
    path = tmp_path / "garbage"
    path.write_bytes(content)
    before = proxy.ok("STATUS")["content"]["state_hash"]
    answer = proxy.request("LOAD_STATE", path=str(path))
    assert_failure(answer, answer["id"], str(path), *fragments)
    # The file is read whole before anything is applied: a bad entry applies nothing.
    assert proxy.ok("STATUS")["content"]["state_hash"] == before
    assert proxy.ok("QUERY_CLUSTERS_HASHES")["content"]["cluster_hashes"] == {}


def test_load_state_of_a_missing_file(proxy: Proxy, tmp_path: Path) -> None:
    path = tmp_path / "missing"
    answer = proxy.request("LOAD_STATE", path=str(path))
    assert_failure(answer, answer["id"], "cannot read state file", str(path), "No such file")
    assert proxy.request("STATUS")["status"] == "OK"


def test_load_state_of_a_directory(proxy: Proxy, tmp_path: Path) -> None:
    answer = proxy.request("LOAD_STATE", path=str(tmp_path))
    assert_failure(answer, answer["id"], "cannot read state file", "Is a directory")


# -- stopping ----------------------------------------------------------------------------------


def join_worker(proxy: Proxy) -> None:
    thread = proxy.worker._thread
    assert thread is not None
    thread.join(WAIT)
    assert not thread.is_alive(), "the worker thread did not end"


def test_soft_stop_without_connections(proxy: Proxy, echo_backend: EchoBackend) -> None:
    listener = proxy.tcp_cluster("app", [echo_backend.address])
    request_id = proxy.channel.send({"id": "soft", "type": "SOFT_STOP"})
    first = proxy.channel.read_response(request_id, timeout=WAIT)
    assert first["status"] == "PROCESSING" and first["id"] == "soft"
    second = proxy.channel.read_response(request_id, timeout=WAIT)
    assert second["status"] == "OK" and second["id"] == "soft"
    join_worker(proxy)
    with pytest.raises(ConnectionRefusedError):
        connect(listener).close()  # the listener was closed
    # The fixture's close() (stop_thread) runs on a loop that already ended.


def test_soft_stop_waits_for_open_connections(proxy: Proxy, echo_backend: EchoBackend) -> None:
    listener = proxy.tcp_cluster("app", [echo_backend.address])
    with connect(listener) as client:
        client.sendall(b"before")
        assert recv_exact(client, 6) == b"before"
        request_id = proxy.channel.send({"id": "soft", "type": "SOFT_STOP"})
        assert proxy.channel.read_response(request_id, timeout=WAIT)["status"] == "PROCESSING"
        # No new clients (the listener is closed on soft stop) ...
        with pytest.raises(ConnectionRefusedError):
            connect(listener).close()
        # ... but the open connection goes on, and the stop is not final yet.
        client.sendall(b"during")
        assert recv_exact(client, 6) == b"during"
        assert proxy.request("STATUS")["content"]["sessions"] == 1
        assert request_id not in proxy.channel._responses  # no final answer yet
        client.shutdown(socket.SHUT_WR)
        assert recv_all(client) == b""
    assert proxy.channel.read_response(request_id, timeout=WAIT)["status"] == "OK"
    join_worker(proxy)


def test_hard_stop(proxy: Proxy, echo_backend: EchoBackend) -> None:
    listener = proxy.tcp_cluster("app", [echo_backend.address])
    with connect(listener) as client:
        client.sendall(b"x")
        assert recv_exact(client, 1) == b"x"
        request_id = proxy.channel.send({"id": "hard", "type": "HARD_STOP"})
        answers = [proxy.channel.read_response(request_id, timeout=WAIT) for _ in range(2)]
        assert [a["status"] for a in answers] == ["PROCESSING", "OK"]
        assert all(a["id"] == "hard" for a in answers)
        join_worker(proxy)
        try:
            assert recv_all(client) == b""  # the open connection was closed
        except ConnectionResetError:
            pass
    with pytest.raises(ConnectionRefusedError):
        connect(listener).close()


def test_stop_thread_after_the_loop_ended(poller: str, server_config: ServerConfig) -> None:
    worker = Worker(server_config, poller=poller)
    with Channel(worker.channel_pair()) as channel:
        worker.start_thread()
        assert channel.request({"type": "HARD_STOP"}, timeout=WAIT)["status"] == "OK"
        assert worker._thread is not None
        worker._thread.join(WAIT)
        assert not worker._thread.is_alive()
        worker.stop_thread(timeout=WAIT)  # must not raise or hang
        assert worker._thread is None
        with pytest.raises(ChannelError, match="closed the channel"):
            channel.read_response("anything", timeout=WAIT)
