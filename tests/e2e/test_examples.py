"""The examples run as standalone proxies (real processes, real clients)."""

from __future__ import annotations

import http.client
import http.server
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import WAIT

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_example_round_robins_two_backends():
    servers = []
    for name in ("one", "two"):
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            label = name.encode()

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(self.label)))
                self.end_headers()
                self.wfile.write(self.label)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "http.py"), "--listen", f"127.0.0.1:{port}",
         *(arg for s in servers for arg in ("--backend", "127.0.0.1:%d" % s.server_address[1]))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + WAIT
        for line in proc.stdout:
            if "HTTP proxy on" in line:
                break
            assert time.monotonic() < deadline, "the example did not start"
        bodies = []
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
            conn.request("GET", "/", headers={"Host": "anything.example"})
            bodies.append(conn.getresponse().read())
            conn.close()
        assert bodies in ([b"one", b"two"] * 2, [b"two", b"one"] * 2)
    finally:
        proc.terminate()
        proc.wait(WAIT)
        for server in servers:
            server.shutdown()
            server.server_close()


def test_https_example_serves_tls_with_its_own_certificate():
    import hashlib
    import ssl

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            body = f"proto={self.headers['X-Forwarded-Proto']}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "https.py"), "--listen", f"127.0.0.1:{port}",
         "--backend", "127.0.0.1:%d" % server.server_address[1]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + WAIT
        fingerprint = None
        for line in proc.stdout:
            if line.startswith("certificate "):
                fingerprint = line.split()[1]
            if "HTTPS proxy on" in line:
                break
            assert time.monotonic() < deadline, "the example did not start"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # its certificate is self-signed
        conn = http.client.HTTPSConnection("localhost", port, timeout=WAIT, context=context)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"proto=https"
        assert conn.sock is not None
        der = conn.sock.getpeercert(binary_form=True)
        assert der is not None and hashlib.sha256(der).hexdigest() == fingerprint
        conn.close()
    finally:
        proc.terminate()
        proc.wait(WAIT)
        server.shutdown()
        server.server_close()
