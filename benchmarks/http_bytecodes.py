"""Python bytecodes the worker executes per proxied HTTP request, per function: deterministic.

    .venv/bin/python benchmarks/http_bytecodes.py [--requests 200] [--top 40] [--lines]

Why: the wrk benchmark (``http_bench.py``) is the figure that counts, but on a shared 2-core
machine its rounds differ by a third, which hides a 5 % change. The number of bytecodes the
interpreter runs per request does not move between runs, and nearly all of pysozu's user
CPU per request is interpretation, so it tells at once whether a change to the hot path
made it shorter, and where the rest goes.

How: a worker runs in a thread of this process with one HTTP listener and one cluster whose
backend is a tiny keep-alive server in a child process (100-byte answers, an nginx-like
head). The worker thread is traced with ``sys.settrace`` and ``f_trace_opcodes``; one client
connection sends warm-up requests, then ``--requests`` sequential keep-alive requests are
counted. One connection means one request per loop pass, so the per-pass work of the
reactor (``Server.run_once``, the poller, the timers) weighs more here than under wrk's 50
connections, where one pass serves many events.
"""

from __future__ import annotations

import argparse
import collections
import os
import socket
import subprocess
import sys
import threading
from types import FrameType
from typing import Any

# the Python sources are what is counted: a compiled build (pysozu.compiled) runs
# no bytecode to count
os.environ["PYSOZU_COMPILED"] = "0"

from pysozu.reactor.channel import Channel
from pysozu.worker import Worker

BODY = 100
BACKEND = r"""
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
answer = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\n"
          b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n" % BODY + b"x" * BODY)
while True:
    c, _ = s.accept()
    pending = b""
    while True:
        data = c.recv(65536)
        if not data:
            break
        pending += data
        while b"\r\n\r\n" in pending:
            _, pending = pending.split(b"\r\n\r\n", 1)
            c.sendall(answer)
""".replace("BODY", str(BODY))
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n"


def configure(channel: Channel, address: str, backend: str) -> None:
    for request in (
        {"type": "ADD_HTTP_LISTENER", "address": address},
        {"type": "ADD_CLUSTER", "cluster_id": "bench"},
        {"type": "ADD_HTTP_FRONTEND", "cluster_id": "bench", "address": address,
         "hostname": "*", "position": "PRE"},
        {"type": "ADD_BACKEND", "cluster_id": "bench", "backend_id": "bench-0",
         "address": backend},
        {"type": "ACTIVATE_LISTENER", "address": address, "proxy": "HTTP"},
    ):
        answer = channel.request(request, timeout=10)
        if answer["status"] != "OK":
            raise SystemExit(f"{request['type']}: {answer['message']}")


def one_request(sock: socket.socket) -> None:
    sock.sendall(REQUEST)
    data = b""
    while not (b"\r\n\r\n" in data and len(data) >= data.index(b"\r\n\r\n") + 4 + BODY):
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("the proxy closed the connection")
        data += chunk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--top", type=int, default=40, help="functions (or lines) to list")
    parser.add_argument("--lines", action="store_true", help="count per source line")
    args = parser.parse_args()

    backend = subprocess.Popen([sys.executable, "-c", BACKEND], stdout=subprocess.PIPE)
    worker = Worker()
    try:
        assert backend.stdout is not None
        backend_port = int(backend.stdout.readline())
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % probe.getsockname()[1]
        probe.close()
        channel = Channel(worker.channel_pair())
        worker.start_thread()
        configure(channel, address, f"127.0.0.1:{backend_port}")

        counts: collections.Counter[str] = collections.Counter()
        counting = [False]
        lines = args.lines

        def trace(frame: FrameType, event: str, arg: Any) -> Any:
            frame.f_trace_opcodes = True
            frame.f_trace_lines = False

            def local(frame: FrameType, event: str, arg: Any) -> Any:
                if event == "opcode" and counting[0]:
                    code = frame.f_code
                    key = f"{code.co_qualname} ({code.co_filename.rsplit('/', 1)[-1]}"
                    counts[key + (f":{frame.f_lineno})" if lines else ")")] += 1
                return local

            return local

        traced = threading.Event()

        def install() -> None:  # runs in the worker thread: trace that thread only
            sys.settrace(trace)
            traced.set()

        worker.server.call_soon(install)
        client = socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])))
        try:
            one_request(client)  # wakes the loop, which installs the tracer
            if not traced.wait(10):
                raise SystemExit("the worker did not install the tracer")
            for _ in range(20):
                one_request(client)
            counting[0] = True
            for _ in range(args.requests):
                one_request(client)
            counting[0] = False
        finally:
            client.close()
        total = sum(counts.values())
        print(f"bytecodes per proxied keep-alive request: {total / args.requests:.0f}")
        for key, value in counts.most_common(args.top):
            print(f"{value / args.requests:8.1f}  {key}")
    finally:
        worker.stop_thread()
        backend.kill()
        backend.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
