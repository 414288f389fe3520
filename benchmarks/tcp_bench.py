"""TCP proxy benchmark: throughput and connection rate, through pysozu vs. direct.

Both figures are measured in the same run against the same backend, and printed as the
ratio proxied/direct, so the numbers compare across machines (the absolute ones do not).

    .venv/bin/python benchmarks/tcp_bench.py [--size-mb 512] [--seconds 5] [--poller epoll]

Processes: the backend, the proxy (one pysozu worker) and the client each run in their
own process, so the Python client does not share a GIL with what it measures.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import selectors
import socket
import sys
import time
from typing import Any

CHUNK = 256 * 1024


def _listen() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    return s


def backend_main(sock: socket.socket, ready: Any) -> None:
    """Non-blocking backend: a first byte ``S`` + 8-byte size asks for a stream of that size;
    anything else is echoed (connection-rate test)."""
    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_READ, None)
    payload = memoryview(b"x" * CHUNK)
    state: dict[socket.socket, list[int]] = {}  # conn -> [bytes left to stream]
    ready.set()
    while True:
        for key, mask in sel.select():
            if key.data is None:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                state[conn] = [0]
                sel.register(conn, selectors.EVENT_READ, "c")
                continue
            conn = key.fileobj  # type: ignore[assignment]
            left = state[conn]
            if mask & selectors.EVENT_READ:
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    data = None
                except ConnectionError:
                    data = b""
                if data == b"":
                    sel.unregister(conn)
                    conn.close()
                    del state[conn]
                    continue
                if data is not None and data[:1] == b"S" and len(data) >= 9:
                    left[0] = int.from_bytes(data[1:9], "little")
                    sel.modify(conn, selectors.EVENT_READ | selectors.EVENT_WRITE, "c")
                elif data is not None:
                    try:
                        conn.send(data)
                    except OSError:
                        pass
            if mask & selectors.EVENT_WRITE and left[0]:
                try:
                    while left[0]:
                        n = conn.send(payload[: min(CHUNK, left[0])])
                        left[0] -= n
                except BlockingIOError:
                    pass
                except OSError:
                    left[0] = 0
                if not left[0]:
                    sel.modify(conn, selectors.EVENT_READ, "c")


def proxy_main(listen: socket.socket, backend: str, poller: str, ready: Any) -> None:
    from pysozu.command import make_request
    from pysozu.worker import Worker

    address = "127.0.0.1:%d" % listen.getsockname()[1]
    worker = Worker(poller=poller)
    worker.offer_listen_socket(address, listen)
    worker.apply(
        [
            make_request("1", "ADD_TCP_LISTENER", address=address),
            make_request("2", "ADD_CLUSTER", cluster_id="bench"),
            make_request("3", "ADD_TCP_FRONTEND", cluster_id="bench", address=address),
            make_request("4", "ADD_BACKEND", cluster_id="bench", backend_id="b0",
                         address=backend),
            make_request("5", "ACTIVATE_LISTENER", address=address, proxy="TCP", from_scm=True),
        ]
    )
    ready.set()
    worker.run()


def throughput(address: tuple[str, int], size: int) -> float:
    """MB/s of a ``size``-byte download."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with socket.create_connection(address) as s:
        start = time.perf_counter()
        s.sendall(b"S" + size.to_bytes(8, "little"))
        got = 0
        while got < size:
            n = s.recv_into(view)
            if not n:
                raise RuntimeError(f"stream cut after {got} of {size} bytes")
            got += n
        elapsed = time.perf_counter() - start
    return size / elapsed / 1e6


def connection_rate(address: tuple[str, int], seconds: float) -> float:
    """Connections per second, each: connect, send 1 byte, read it back, close."""
    count = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        with socket.create_connection(address) as s:
            s.sendall(b"p")
            if s.recv(1) != b"p":
                raise RuntimeError("bad echo")
        count += 1
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=512, help="download size per run")
    parser.add_argument("--seconds", type=float, default=5.0, help="connection-rate duration")
    parser.add_argument("--runs", type=int, default=3, help="best of N for each figure")
    parser.add_argument("--poller", default="epoll", choices=["epoll", "selectors"])
    args = parser.parse_args(argv)

    ctx = mp.get_context("fork")
    backend_sock, proxy_sock = _listen(), _listen()
    backend_addr = backend_sock.getsockname()[:2]
    proxy_addr = proxy_sock.getsockname()[:2]
    b_ready, p_ready = ctx.Event(), ctx.Event()
    procs = [
        ctx.Process(target=backend_main, args=(backend_sock, b_ready), daemon=True),
        ctx.Process(
            target=proxy_main,
            args=(proxy_sock, "127.0.0.1:%d" % backend_addr[1], args.poller, p_ready),
            daemon=True,
        ),
    ]
    for p in procs:
        p.start()
    backend_sock.close()
    proxy_sock.close()
    try:
        if not (b_ready.wait(10) and p_ready.wait(10)):
            print("backend or proxy did not start", file=sys.stderr)
            return 1
        size = args.size_mb * 1024 * 1024
        rows = []
        for name, fn, arg in (
            ("throughput (MB/s)", throughput, size),
            ("connection rate (conn/s)", connection_rate, args.seconds),
        ):
            direct = max(fn(backend_addr, arg) for _ in range(args.runs))  # type: ignore[operator]
            proxied = max(fn(proxy_addr, arg) for _ in range(args.runs))  # type: ignore[operator]
            rows.append((name, direct, proxied))
        print(f"pysozu TCP benchmark ({args.poller}, {os.cpu_count()} CPUs, "
              f"Python {sys.version.split()[0]})")
        print(f"{'':28} {'direct':>10} {'pysozu':>10} {'ratio':>7}")
        for name, direct, proxied in rows:
            print(f"{name:28} {direct:10.0f} {proxied:10.0f} {proxied / direct:7.2f}")
    finally:
        for p in procs:
            p.terminate()
            p.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
