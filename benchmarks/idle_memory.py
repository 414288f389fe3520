"""Memory per idle keep-alive HTTP connection held by one pysozu worker.

    .venv/bin/python benchmarks/idle_memory.py [--connections 10000]

A worker process proxies to a small backend process; the client opens N connections,
makes one request on each (so each session went through a full request/response), keeps
them open and idle, and the worker's resident memory (VmRSS) is read before and after.
The figure is (RSS after - RSS before) / N. Raise the open-file limit (``ulimit -n``) for
large N: the worker needs one descriptor per client plus one per idle backend connection.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import socket
import sys
import time
from typing import Any


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def backend_main(sock: socket.socket) -> None:
    import selectors

    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_READ)
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    while True:
        for key, _ in sel.select():
            if key.fileobj is sock:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            conn = key.fileobj  # type: ignore[assignment]
            try:
                data = conn.recv(65536)
            except (BlockingIOError, ConnectionError):
                continue
            if not data:
                sel.unregister(conn)
                conn.close()
            elif b"\r\n\r\n" in data:
                conn.send(response)


def proxy_main(listen: socket.socket, backend: str, ready: Any) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    from pysozu.command import make_request
    from pysozu.worker import Worker

    address = "127.0.0.1:%d" % listen.getsockname()[1]
    worker = Worker()
    worker.offer_listen_socket(address, listen)
    worker.apply([
        make_request("1", "ADD_HTTP_LISTENER", address=address),
        make_request("2", "ADD_CLUSTER", cluster_id="c"),
        make_request("3", "ADD_HTTP_FRONTEND", cluster_id="c", address=address,
                     hostname="*", position="PRE"),
        make_request("4", "ADD_BACKEND", cluster_id="c", backend_id="b", address=backend),
        make_request("5", "ACTIVATE_LISTENER", address=address, proxy="HTTP", from_scm=True),
    ])
    ready.set()
    worker.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000)
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.connections + 100
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    ctx = mp.get_context("fork")
    b_sock = socket.socket()
    b_sock.bind(("127.0.0.1", 0))
    b_sock.listen(4096)
    p_sock = socket.socket()
    p_sock.bind(("127.0.0.1", 0))
    p_sock.listen(4096)
    ready = ctx.Event()
    backend = ctx.Process(target=backend_main, args=(b_sock,), daemon=True)
    proxy = ctx.Process(target=proxy_main, daemon=True, args=(
        p_sock, "127.0.0.1:%d" % b_sock.getsockname()[1], ready))
    backend.start()
    proxy.start()
    clients: list[socket.socket] = []
    try:
        if not ready.wait(10):
            print("the proxy did not start", file=sys.stderr)
            return 1
        assert proxy.pid is not None
        time.sleep(0.5)
        before = rss_kib(proxy.pid)
        port = p_sock.getsockname()[1]
        request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
        for _ in range(args.connections):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(request)
            clients.append(c)
            if len(clients) % 200 == 0:
                for pending in clients[-200:]:
                    pending.recv(4096)
        for pending in clients[len(clients) - len(clients) % 200:]:
            pending.recv(4096)
        time.sleep(1.0)
        after = rss_kib(proxy.pid)
        per = (after - before) * 1024 / args.connections
        print(f"{args.connections} idle keep-alive connections: worker RSS {before} KiB -> "
              f"{after} KiB, {per:.0f} bytes per connection")
    finally:
        for c in clients:
            c.close()
        proxy.terminate()
        backend.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
