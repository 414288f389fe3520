"""HTTPS benchmark: full and resumed TLS handshakes and HTTPS keep-alive requests per second,
pysozu against nginx (one worker) and nginx terminating TLS itself.

    .venv/bin/python benchmarks/https_bench.py [--duration 5] [--rounds 2] [--certs ecdsa,rsa]
        [--tls 1.3,1.2] [--only direct,nginx,pysozu] [--tests full,resumed,keep-alive]
        [--concurrency 16] [--connections 50] [--warmup 1] [--keep best|median]
        [--chart docs/https_bench.png] [--json results.json] [--no-install] [--no-pin]

What is measured, for each contender and each certificate (ECDSA P-256, and RSA-2048 as a
second row; both made at run time with ``cryptography`` and served by every contender):

- **full handshakes/s**: a client opens a TCP connection, completes a TLS handshake (TLS 1.3
  by default; ``--tls 1.3,1.2`` adds TLS 1.2), sends close_notify and closes, with no session
  reuse; ``--concurrency`` connections in flight;
- **resumed handshakes/s**: the same, each connection resuming the session of a first
  connection (TLS 1.3: a session ticket, with the (EC)DHE exchange that ``psk_dhe_ke``
  keeps; TLS 1.2: a ticket). The client counts the handshakes that were really resumed and
  the report says so when some were not;
- **HTTPS keep-alive requests/s**: ``wrk -t1 -c<N> -d<secs> --latency`` over TLS, ``GET /``
  answered with the same 100-byte body as ``http_bench.py`` (ECDSA certificate only: once
  the connections are up, the certificate plays no part).

The handshake client is ``tls_hammer``, about 200 lines of C compiled here at run time
against the system's libssl (``cc``, ``libssl-dev``): one process, one epoll loop, N
non-blocking connections, SNI ``localhost``, no certificate chain check (the handshake
signature is still verified). ``openssl s_time`` was the first choice, but it never reads
TLS 1.3 session tickets, so it cannot resume TLS 1.3 (every ``-reuse`` connection of it is a
full handshake), it runs one connection at a time, and it resolves the host again for each
connection.

Contenders, all on 127.0.0.1 with free ports, each alone on the machine while measured:

- ``direct``: nginx (1 worker) terminating TLS and answering the body itself (``return
  200``): the ceiling of this layout;
- ``nginx``: nginx (1 worker) terminating TLS and proxying to the plain HTTP backend with an
  upstream ``keepalive`` pool (``http_bench.py``'s configuration plus ``listen ... ssl``);
- ``pysozu``: one worker with an HTTPS listener (the certificate as listener default,
  ``strict_sni_binding`` off so that wrk's ``Host: 127.0.0.1`` is served), a PRE ``*``
  frontend to the same backend, no access log, log level warning. It is started by a
  launcher written to the temporary folder, which builds a ``Worker``, applies the requests
  a control plane would send (ADD_HTTPS_LISTENER, ADD_CLUSTER, ADD_HTTPS_FRONTEND,
  ADD_BACKEND, ACTIVATE_LISTENER proxy HTTPS) with ``Worker.apply`` and runs its loop: the
  path ``pysozu start`` takes, without a configuration file.

Both nginx and pysozu get the same TLS settings: TLS 1.2 and 1.3, pysozu's default suites
and groups (x25519 first), server cipher order, session tickets on (nginx also with a
shared session cache, as it is usually deployed). The plain backend is ``http_bench.py``'s
nginx (``master_process off``, one worker), started once for the run.

Layout: with ``taskset`` (and unless ``--no-pin``) the clients (tls_hammer, wrk) and the
backend share CPU 0 and the server under test gets CPU 1, as in ``http_bench.py``.

**The client's share.** OpenSSL 3.0's client side costs more per full handshake than its
server side (parsing the server certificate, ECDSA verification, provider lookups), so on a
2-core machine one client core may not keep a fast server core busy. Hence every figure
comes with the server's CPU time per operation (user + system of its process group, read
from ``/proc``), with how busy the client core (CPU 0, from ``/proc/stat``) was and with the
share of a core the server used. When the client core is saturated and the server is not,
the rate measures the client ("client-bound" in the report); the server's *capacity*,
operations per second of its CPU time (1 / CPU per operation: what one core can do), is then
the figure that compares servers. The target verdict uses it, and prints the ratio of
measured rates beside it.

**The TLS libraries differ.** pyOpenSSL runs on the OpenSSL that the ``cryptography`` wheel
bundles (4.0 at the time of writing); nginx, wrk and tls_hammer on the system's (3.0 on
Debian 12). The report prints both versions; part of every handshake ratio is the
libraries' difference, not the servers'.

Rounds, ``--keep``, ratios and installation are as in ``http_bench.py``: contenders take
turns (the order rotates each round); each (contender, test) keeps its best round for ops/s
and, chosen on its own, its lowest server CPU per operation (``--keep median``: the median
ones); ``--no-install`` skips ``apt-get install wrk nginx gcc libssl-dev`` and ``pip
install matplotlib``, and a missing tool is then an error that names it.

Target (issue 5): pysozu's handshakes per second at least 0.7x nginx's; both are bound by
OpenSSL's own cost.

Which pysozu: its compiled build (``pysozu.compiled``), which the install step makes when
it is missing or stale; ``PYSOZU_COMPILED=0`` measures the Python sources instead. The
report says which ran.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import ipaddress
import json
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

# http_bench.py beside this file provides the servers, the wrk parser and the installer
sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("direct", "nginx", "pysozu")
CERTS = {"ecdsa": "ECDSA P-256", "rsa": "RSA-2048"}
TLS_VERSIONS = ("1.3", "1.2")
HANDSHAKES = ("full", "resumed")
TESTS = (*HANDSHAKES, "keep-alive")
UNITS = {"full": "handshakes/s", "resumed": "handshakes/s", "keep-alive": "requests/s"}
APT_PACKAGES = {"wrk": "wrk", "nginx": "nginx", "cc": "gcc"}
OPENSSL_HEADER = Path("/usr/include/openssl/ssl.h")
#: the target of issue 5: pysozu's handshakes/s at least this times nginx's
TARGET = 0.7
#: a core this busy over a run is saturated
SATURATED = 0.9

# pysozu's defaults (protocols/tls.py), given to nginx too
CIPHER_LIST = (
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305"
)
CIPHER_SUITES = "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
GROUPS = "X25519:prime256v1:secp384r1"


# --------------------------------------------------------------------------------------------
# the handshake client
# --------------------------------------------------------------------------------------------

HAMMER_C = r"""
/* tls_hammer HOST PORT SECONDS CONCURRENCY new|reuse 1.2|1.3 SNI
 * Opens TLS connections as fast as it can, CONCURRENCY at a time, for SECONDS: connect,
 * handshake, close_notify, close. "reuse" first makes one connection that sends a request
 * and reads the answer to its end (so TLS 1.3 tickets arrive), then offers its session on
 * every connection. Prints one line of key=value counts. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct slot { int fd; SSL *ssl; int connected; };

static struct sockaddr_in addr;
static SSL_CTX *ctx;
static SSL_SESSION *session;
static const char *sni;
static long handshakes, resumed, errors;
static char last_error[256] = "none";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note_error(const char *what) {
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, last_error, sizeof last_error);
    else
        snprintf(last_error, sizeof last_error, "%s: %s", what, strerror(errno));
    for (char *p = last_error; *p; p++)
        if (*p == ' ') *p = '_';
    ERR_clear_error();
    errors++;
}

static void drop(int ep, struct slot *s) {
    if (s->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
        close(s->fd);
    }
    if (s->ssl) SSL_free(s->ssl);
    s->fd = -1;
    s->ssl = NULL;
}

static void open_slot(int ep, struct slot *s) {
    int one = 1;
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = s};
    s->connected = 0;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s->fd < 0) { note_error("socket"); return; }
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(s->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        note_error("connect");
        close(s->fd);
        s->fd = -1;
        return;
    }
    s->ssl = SSL_new(ctx);
    SSL_set_fd(s->ssl, s->fd);
    SSL_set_connect_state(s->ssl);
    SSL_set_tlsext_host_name(s->ssl, sni);
    if (session) SSL_set_session(s->ssl, session);
    epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/* one step of a slot; 1 when the slot is free again */
static int step(int ep, struct slot *s) {
    struct epoll_event ev = {.data.ptr = s};
    if (!s->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) { errno = err; note_error("connect"); drop(ep, s); return 1; }
        s->connected = 1;
    }
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
        handshakes++;
        if (SSL_session_reused(s->ssl)) resumed++;
        SSL_shutdown(s->ssl); /* close_notify, not waiting for the server's */
        drop(ep, s);
        return 1;
    }
    switch (SSL_get_error(s->ssl, r)) {
    case SSL_ERROR_WANT_READ: ev.events = EPOLLIN; break;
    case SSL_ERROR_WANT_WRITE: ev.events = EPOLLOUT; break;
    default: note_error("handshake"); drop(ep, s); return 1;
    }
    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    return 0;
}

static int prime(const char *host) {
    char buf[16384];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        perror("tls_hammer: connect");
        return -1;
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, sni);
    if (SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    int n = snprintf(buf, sizeof buf,
                     "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    SSL_write(ssl, buf, n);
    while (SSL_read(ssl, buf, sizeof buf) > 0) {}
    session = SSL_get1_session(ssl);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    if (!session || !SSL_SESSION_is_resumable(session)) {
        fprintf(stderr, "tls_hammer: the server gave no resumable session\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT SECONDS CONCURRENCY new|reuse 1.2|1.3 SNI\n",
                argv[0]);
        return 2;
    }
    double seconds = atof(argv[3]);
    int concurrency = atoi(argv[4]);
    int reuse = strcmp(argv[5], "reuse") == 0;
    int version = strcmp(argv[6], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    sni = argv[7];
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        fprintf(stderr, "tls_hammer: not an IPv4 address: %s\n", argv[1]);
        return 2;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, version);
    SSL_CTX_set_max_proto_version(ctx, version);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (reuse && prime(sni) < 0) return 1;

    int ep = epoll_create1(0);
    struct slot *slots = calloc(concurrency, sizeof *slots);
    struct epoll_event events[256];
    for (int i = 0; i < concurrency; i++) {
        slots[i].fd = -1;
        open_slot(ep, &slots[i]);
    }
    double start = now(), deadline = start + seconds, t = start;
    while (t < deadline) {
        int n = epoll_wait(ep, events, 256, 100);
        for (int i = 0; i < n; i++) {
            struct slot *s = events[i].data.ptr;
            if (step(ep, s)) open_slot(ep, s);
        }
        for (int i = 0; i < concurrency; i++)
            if (slots[i].fd < 0) open_slot(ep, &slots[i]);
        if (errors > 1000 && handshakes == 0) break;
        t = now();
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("handshakes=%ld resumed=%ld errors=%ld seconds=%.4f user=%.4f sys=%.4f "
           "last_error=%s\n", handshakes, resumed, errors, t - start,
           ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, last_error);
    return handshakes ? 0 : 1;
}
"""


def build_hammer(workdir: Path) -> Path:
    """Compile tls_hammer; RuntimeError with the compiler's words if it cannot."""
    source = workdir / "tls_hammer.c"
    binary = workdir / "tls_hammer"
    source.write_text(HAMMER_C)
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler (cc) to build the handshake client: "
                           "apt-get install gcc libssl-dev")
    proc = subprocess.run([compiler, "-O2", "-o", str(binary), str(source), "-lssl", "-lcrypto"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        hint = " (apt-get install libssl-dev)" if "openssl/" in proc.stdout else ""
        raise RuntimeError(f"cannot build the handshake client{hint}:\n"
                           + textwrap.indent(proc.stdout[-2000:], "  "))
    return binary


# --------------------------------------------------------------------------------------------
# installation and requirements
# --------------------------------------------------------------------------------------------


def install() -> None:
    """Install the missing Debian packages and matplotlib; report, never raise."""
    hb.install_missing(APT_PACKAGES, {"matplotlib": "matplotlib"},
                       () if OPENSSL_HEADER.exists() else ("libssl-dev",))
    hb.ensure_compiled()


def missing_tools(contenders: list[str]) -> list[str]:
    """What this run needs and does not find, one line each."""
    problems = []
    if not shutil.which("wrk"):
        problems.append("`wrk` not found (apt-get install wrk): it measures keep-alive requests")
    if not shutil.which("nginx"):
        problems.append("`nginx` not found (apt-get install nginx): it is the backend")
    if not (shutil.which("cc") or shutil.which("gcc")):
        problems.append("no C compiler (apt-get install gcc): it builds the handshake client")
    if not OPENSSL_HEADER.exists():
        problems.append(f"{OPENSSL_HEADER} not found (apt-get install libssl-dev): the "
                        "handshake client is built against it")
    if "pysozu" in contenders and not importlib.util.find_spec("pysozu"):
        problems.append(f"pysozu is not importable by {sys.executable} (pip install -e .)")
    if not importlib.util.find_spec("cryptography"):
        problems.append(f"cryptography is not importable by {sys.executable}: it makes the "
                        "certificates")
    return problems


def openssl_versions() -> tuple[str, str]:
    """(the OpenSSL nginx runs with, the one pysozu's pyOpenSSL runs with)."""
    nginx = "?"
    with contextlib.suppress(OSError):
        out = subprocess.run(["nginx", "-V"], capture_output=True, text=True).stderr
        m = re.search(r"running with (OpenSSL [\d.]+\w*)", out) or re.search(
            r"built with (OpenSSL [\d.]+\w*)", out)
        nginx = m.group(1) if m else "?"
    try:
        from OpenSSL import SSL

        pysozu = SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode().rsplit(" ", 3)[0]
    except ImportError:
        pysozu = "?"
    return nginx, pysozu


# --------------------------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cert:
    kind: str
    cert_path: Path
    key_path: Path
    cert_pem: str
    key_pem: str


def make_certificate(kind: str, directory: Path) -> Cert:
    """A self-signed certificate for localhost and 127.0.0.1, valid two days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if kind == "ecdsa":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    cert_path, key_path = directory / f"{kind}.crt", directory / f"{kind}.key"
    cert_path.write_text(cert_pem)
    key_path.write_text(key_pem)
    key_path.chmod(0o600)
    return Cert(kind, cert_path, key_path, cert_pem, key_pem)


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------


def _nginx_tls(cert: Cert) -> str:
    return textwrap.dedent(f"""\
        ssl_certificate {cert.cert_path};
        ssl_certificate_key {cert.key_path};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers {CIPHER_LIST};
        ssl_conf_command Ciphersuites {CIPHER_SUITES};
        ssl_prefer_server_ciphers on;
        ssl_ecdh_curve {GROUPS};
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 1h;
        ssl_session_tickets on;
        """)


def _nginx_https(workdir: Path, name: str, cert: Cert, upstream: str, location: str,
                 cpu: int | None) -> hb.Server:
    port = hb.free_port()
    conf = hb._nginx_common(workdir) + textwrap.dedent("""\
        worker_processes 1;
        events { worker_connections 8192; }
        http {
        %s
        %s
            server {
                listen 127.0.0.1:%d ssl backlog=4096;
        %s
                location / {
        %s
                }
            }
        }
        """) % (textwrap.indent(hb._nginx_http_common(workdir), "    "),
                textwrap.indent(upstream, "    "), port,
                textwrap.indent(_nginx_tls(cert), "        "),
                textwrap.indent(location, "            "))
    return hb._nginx(name, conf, port, workdir, cpu)


def start_direct(workdir: Path, backend: int, cert: Cert, cpu: int | None,
                 body: bytes) -> hb.Server:
    literal = body.decode("ascii").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return _nginx_https(workdir, "direct", cert, "",
                        f'default_type text/plain;\nreturn 200 "{literal}";', cpu)


def start_nginx(workdir: Path, backend: int, cert: Cert, cpu: int | None,
                body: bytes) -> hb.Server:
    upstream = textwrap.dedent(f"""\
        upstream backend {{
            server 127.0.0.1:{backend};
            keepalive 128;
            keepalive_requests 1000000000;
        }}
        """)
    location = ('proxy_pass http://backend;\nproxy_http_version 1.1;\n'
                'proxy_set_header Connection "";')
    return _nginx_https(workdir, "nginx", cert, upstream, location, cpu)


PYSOZU_LAUNCHER = '''\
"""Start one pysozu worker serving HTTPS, configured with the requests in argv[1]."""
import json
import logging
import sys

from pysozu.command import parse_request
from pysozu.worker import Worker, tune_gc_for_serving

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
with open(sys.argv[1]) as f:
    requests = json.load(f)
worker = Worker()
worker.apply([parse_request({"id": f"bench-{n}", **r}) for n, r in enumerate(requests)])
tune_gc_for_serving()  # as pysozu's worker processes do
worker.run()
'''


def pysozu_requests(address: str, backend: int, cert: Cert) -> list[dict[str, object]]:
    return [
        {"type": "ADD_HTTPS_LISTENER", "address": address, "certificate": cert.cert_pem,
         "key": cert.key_pem, "strict_sni_binding": False},
        {"type": "ADD_CLUSTER", "cluster_id": "bench", "load_balancing": "ROUND_ROBIN"},
        {"type": "ADD_HTTPS_FRONTEND", "cluster_id": "bench", "address": address,
         "hostname": "*", "position": "PRE"},
        {"type": "ADD_BACKEND", "cluster_id": "bench", "backend_id": "bench-0",
         "address": f"127.0.0.1:{backend}"},
        {"type": "ACTIVATE_LISTENER", "address": address, "proxy": "HTTPS"},
    ]


def start_pysozu(workdir: Path, backend: int, cert: Cert, cpu: int | None,
                 body: bytes) -> hb.Server:
    port = hb.free_port()
    launcher = workdir / "pysozu_https.py"
    launcher.write_text(PYSOZU_LAUNCHER)
    requests = workdir / "requests.json"
    requests.write_text(json.dumps(pysozu_requests(f"127.0.0.1:{port}", backend, cert)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    cmd = [sys.executable, str(launcher), str(requests)]
    return hb.start("pysozu", hb.pinned(cmd, cpu), port, workdir, env)


STARTERS: dict[str, Callable[[Path, int, Cert, int | None, bytes], hb.Server]] = {
    "direct": start_direct,
    "nginx": start_nginx,
    "pysozu": start_pysozu,
}


def wait_ready_tls(server: hb.Server, timeout: float = 20.0) -> None:
    """Wait until ``GET /`` over TLS answers 200; RuntimeError with the server's log if not."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited with status {server.proc.returncode}:\n"
                               + textwrap.indent(server.log_tail(), "  "))
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=2) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as s:
                s.sendall(request)
                answer = s.recv(4096)
            if answer.startswith(b"HTTP/1.1 200"):
                return
            last = repr(answer[:80])
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer 200 over TLS on 127.0.0.1:{server.port} "
                       f"within {timeout:.0f} s (last: {last}):\n"
                       + textwrap.indent(server.log_tail(), "  "))


@contextlib.contextmanager
def running(server: hb.Server) -> Iterator[hb.Server]:
    try:
        wait_ready_tls(server)
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# CPU accounting
# --------------------------------------------------------------------------------------------

def cpu_times() -> dict[int, tuple[int, int]]:
    """(busy, total) jiffies of each CPU."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        m = re.match(r"cpu(\d+)\s+(.*)", line)
        if m:
            values = [int(v) for v in m.group(2).split()]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            out[int(m.group(1))] = (sum(values[:8]) - idle, sum(values[:8]))
    return out


def busy_fraction(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]],
                  cpu: int | None) -> float | None:
    if cpu is None or cpu not in before or cpu not in after:
        return None
    busy = after[cpu][0] - before[cpu][0]
    total = after[cpu][1] - before[cpu][1]
    return busy / total if total > 0 else None


@dataclass
class Measure:
    contender: str
    test: str  # full | resumed | keep-alive
    cert: str
    tls: str
    round: int
    rate: float  # operations per second
    ops: int
    seconds: float
    server_cpu: float  # seconds of the server's process group
    wall: float  # seconds over which server_cpu was counted
    load_busy: float | None  # fraction of the client core
    server_busy: float | None  # fraction of the server core (the server and anything else)
    resumed: int = 0
    errors: int = 0
    client_cpu: float = 0.0
    detail: str = ""

    @property
    def cpu_us(self) -> float:
        return self.server_cpu / self.ops * 1e6 if self.ops else float("inf")

    @property
    def capacity(self) -> float:
        """Operations per second of server CPU time."""
        return self.ops / self.server_cpu if self.server_cpu else float("inf")

    @property
    def server_share(self) -> float:
        """The fraction of one core the server used."""
        return self.server_cpu / self.wall if self.wall else 0.0

    @property
    def client_bound(self) -> bool:
        return (self.load_busy is not None and self.load_busy >= SATURATED
                and self.server_share < SATURATED)


def key(m: Measure) -> tuple[str, str, str, str]:
    return m.contender, m.test, m.cert, m.tls


class Probe:
    """Server CPU and per-core busy time over a measurement."""

    def __init__(self, server: hb.Server, load_cpu: int | None, server_cpu: int | None) -> None:
        self.server, self.load_cpu, self.server_cpu = server, load_cpu, server_cpu

    def __enter__(self) -> Probe:
        self.cpu0 = hb.group_cpu(self.server.proc.pid)
        self.cores0 = cpu_times()
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.monotonic() - self.start
        self.used = hb.group_cpu(self.server.proc.pid) - self.cpu0
        cores = cpu_times()
        self.load_busy = busy_fraction(self.cores0, cores, self.load_cpu)
        self.server_busy = busy_fraction(self.cores0, cores, self.server_cpu)


def run_hammer(hammer: Path, server: hb.Server, *, mode: str, tls: str, seconds: float,
               concurrency: int, cpu: int | None) -> dict[str, str]:
    cmd = [str(hammer), "127.0.0.1", str(server.port), f"{seconds:g}", str(concurrency),
           mode, tls, "localhost"]
    proc = subprocess.run(hb.pinned(cmd, cpu), capture_output=True, text=True,
                          timeout=seconds + 60)
    fields = dict(re.findall(r"(\w+)=(\S+)", proc.stdout))
    if proc.returncode != 0 or "handshakes" not in fields:
        raise RuntimeError(f"tls_hammer {mode} TLS {tls} failed ({proc.returncode}): "
                           f"{proc.stdout.strip()} {proc.stderr.strip()}\n"
                           + textwrap.indent(server.log_tail(), "  "))
    return fields


def measure_handshakes(hammer: Path, server: hb.Server, name: str, test: str, cert: str,
                       tls: str, rnd: int, args: argparse.Namespace, load_cpu: int | None,
                       server_cpu: int | None) -> Measure:
    mode = "new" if test == "full" else "reuse"
    with Probe(server, load_cpu, server_cpu) as probe:
        r = run_hammer(hammer, server, mode=mode, tls=tls, seconds=args.duration,
                       concurrency=args.concurrency, cpu=load_cpu)
    ops, seconds = int(r["handshakes"]), float(r["seconds"])
    errors = int(r["errors"])
    detail = f"last error {r.get('last_error')}" if errors else ""
    return Measure(name, test, cert, tls, rnd, ops / seconds, ops, seconds, probe.used,
                   probe.wall, probe.load_busy, probe.server_busy, resumed=int(r["resumed"]),
                   errors=errors, client_cpu=float(r["user"]) + float(r["sys"]),
                   detail=detail)


def run_wrk(port: int, *, connections: int, duration: float,
            cpu: int | None) -> dict[str, object]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
           f"https://127.0.0.1:{port}/"]
    proc = subprocess.run(hb.pinned(cmd, cpu), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}")
    return hb.parse_wrk(proc.stdout)


def measure_keepalive(server: hb.Server, name: str, cert: str, rnd: int,
                      args: argparse.Namespace, load_cpu: int | None,
                      server_cpu: int | None) -> Measure:
    if args.warmup > 0:
        run_wrk(server.port, connections=args.connections, duration=args.warmup, cpu=load_cpu)
    with Probe(server, load_cpu, server_cpu) as probe:
        r = run_wrk(server.port, connections=args.connections, duration=args.duration,
                    cpu=load_cpu)
    sock_errors = cast(dict[str, int], r["socket_errors"])
    non2xx = cast(int, r["non_2xx"])
    errors = non2xx + sum(sock_errors.values())
    detail = f"p50 {cast(float, r['p50_ms']):.2f} ms, p99 {cast(float, r['p99_ms']):.2f} ms"
    if errors:
        detail += ", errors: " + ", ".join(
            ([f"non-2xx {non2xx}"] if non2xx else [])
            + [f"{k} {v}" for k, v in sock_errors.items()])
    return Measure(name, "keep-alive", cert, "1.3", rnd, cast(float, r["rps"]),
                   cast(int, r["requests"]), probe.wall, probe.used, probe.wall,
                   probe.load_busy, probe.server_busy, errors=errors, detail=detail)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass
class Kept:
    """What is kept of one (contender, test, certificate, version) over the rounds: the
    round with the best (or median) ops/s, and, chosen on its own, the best (or median)
    server CPU per operation."""

    m: Measure
    cpu_us: float

    @property
    def rate(self) -> float:
        return self.m.rate

    @property
    def capacity(self) -> float:
        """Operations per second of server CPU time."""
        return 1e6 / self.cpu_us if self.cpu_us else float("inf")


Key = tuple[str, str, str, str]


def aggregate(measures: list[Measure], keep: str) -> dict[Key, Kept]:
    groups: dict[Key, list[Measure]] = {}
    for m in measures:
        groups.setdefault(key(m), []).append(m)
    kept = {}
    for k, ms in groups.items():
        by_rate = sorted(ms, key=lambda m: m.rate)
        costs = sorted(m.cpu_us for m in ms)
        if keep == "best":
            kept[k] = Kept(by_rate[-1], costs[0])
        else:
            kept[k] = Kept(by_rate[(len(ms) - 1) // 2], costs[(len(ms) - 1) // 2])
    return kept


def rows(kept: dict[Key, Kept]) -> list[tuple[str, str, str]]:
    """(test, cert, tls) in report order."""
    present = {(t, c, v) for (_, t, c, v) in kept}
    order = [(t, c, v) for c in CERTS for t in TESTS for v in TLS_VERSIONS]
    return [r for r in order if r in present]


def label(test: str, cert: str, tls: str) -> str:
    if test == "keep-alive":
        return f"keep-alive req, TLS {tls}"
    return f"{test} handshake, TLS {tls}, {CERTS[cert]}"


def _pct(value: float | None) -> str:
    return "  -" if value is None else f"{value * 100:3.0f}"


def ratio_rows(kept: dict[Key, Kept]) -> list[tuple[str, str, str, str, float, float]]:
    """(test, cert, tls, 'pysozu / other', ratio of ops/s, ratio of ops per CPU-second)."""
    out = []
    for test, cert, tls in rows(kept):
        mine = kept.get(("pysozu", test, cert, tls))
        for other in ("nginx", "direct"):
            theirs = kept.get((other, test, cert, tls))
            if mine and theirs and theirs.rate and mine.cpu_us and theirs.cpu_us:
                out.append((test, cert, tls, f"pysozu / {other}", mine.rate / theirs.rate,
                            mine.capacity / theirs.capacity))
    return out


def verdicts(kept: dict[Key, Kept]) -> list[str]:
    """The target, judged on handshakes per second of server CPU (what one core can do)."""
    lines = []
    for test, cert, tls, name, rate, capacity in ratio_rows(kept):
        if test not in HANDSHAKES or name != "pysozu / nginx":
            continue
        verdict = "met" if capacity >= TARGET else "NOT met"
        lines.append(f"target pysozu >= {TARGET:g}x nginx, {label(test, cert, tls)}: "
                     f"{capacity:.2f} per server CPU-second ({rate:.2f} in measured "
                     f"handshakes/s), {verdict}")
    return lines


def print_report(kept: dict[Key, Kept], all_measures: list[Measure],
                 args: argparse.Namespace, layout: str, libraries: tuple[str, str]) -> None:
    print()
    print(f"HTTPS: {layout}; {args.keep} of {args.rounds} round(s) of {args.duration:g} s; "
          f"tls_hammer with {args.concurrency} connections in flight, wrk -t1 "
          f"-c{args.connections}")
    print(f"TLS libraries: nginx, wrk and tls_hammer {libraries[0]} (the system's); pysozu "
          f"{libraries[1]} (pyOpenSSL's, from the cryptography wheel)"
          + ("" if libraries[0] == libraries[1] else
             ": they differ, and part of each handshake ratio is theirs"))
    print("ops/s: measured; server µs/op: CPU time of the server per operation; ops/CPU-s: "
          "1 / that, what one server core can do; busy: the client core (CPU 0) and the "
          "server's share of a core")
    header = (f"{'test':<39} {'contender':<8} {'ops/s':>8} {'server µs/op':>12} "
              f"{'ops/CPU-s':>9}  {'busy %':>7}  notes")
    print(header)
    print("-" * len(header))
    for test, cert, tls in rows(kept):
        for name in CONTENDERS:
            k = kept.get((name, test, cert, tls))
            if not k:
                continue
            m = k.m
            notes = []
            if test == "resumed":
                notes.append(f"{m.resumed / m.ops:.0%} resumed" if m.ops else "none")
            elif test == "full" and m.resumed:
                notes.append(f"{m.resumed} resumed!")
            if m.errors and test != "keep-alive":
                notes.append(f"{m.errors} errors ({m.detail})")
            elif m.detail:
                notes.append(m.detail)
            if m.client_bound:
                notes.append("client-bound")
            print(f"{label(test, cert, tls):<39} {name:<8} {m.rate:8.0f} {k.cpu_us:12.1f} "
                  f"{k.capacity:9.0f}  {_pct(m.load_busy)}/{_pct(m.server_share).strip():<3}  "
                  f"{'; '.join(notes)}")
    ratios = ratio_rows(kept)
    if ratios:
        print()
        print("ratios: ops/s (ops per server CPU-second)")
        for test, cert, tls, name, rate, capacity in ratios:
            print(f"  {label(test, cert, tls):<39} {name:<16} {rate:5.2f} ({capacity:.2f})")
    if args.rounds > 1:
        print()
        print("every round: ops/s (server µs/op)")
        for test, cert, tls in rows(kept):
            for name in CONTENDERS:
                ms = [m for m in all_measures if key(m) == (name, test, cert, tls)]
                if ms:
                    print(f"  {label(test, cert, tls):<39} {name:<8} "
                          + " ".join(f"{m.rate:7.0f} ({m.cpu_us:5.1f})" for m in ms))
    print()
    for line in verdicts(kept):
        print(line)


def draw_chart(kept: dict[Key, Kept], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(t, [(c, v) for (tt, c, v) in rows(kept) if tt == t]) for t in TESTS]
    panels = [(t, groups) for t, groups in panels if groups]
    fig, axes = plt.subplots(2, len(panels), figsize=(5 * len(panels), 8), squeeze=False)
    colors = {"direct": "#9c9c9c", "nginx": "#3b9c4a", "pysozu": "#3b75af"}
    names = [n for n in CONTENDERS if any(k[0] == n for k in kept)]
    width = 0.8 / max(1, len(names))
    for col, (test, groups) in enumerate(panels):
        xs = list(range(len(groups)))
        for row, (attr, ylabel) in enumerate(((
                "rate", UNITS[test]), ("cpu_us", "server CPU µs per operation"))):
            ax = axes[row][col]
            for i, name in enumerate(names):
                vals = [getattr(kept[(name, test, c, v)], attr)
                        if (name, test, c, v) in kept else 0.0 for c, v in groups]
                bars = ax.bar([x + (i - (len(names) - 1) / 2) * width for x in xs], vals, width,
                              label=name, color=colors[name])
                for bar, value in zip(bars, vals, strict=True):
                    if value:
                        text = f"{value / 1000:.1f}k" if value >= 10000 else f"{value:.0f}"
                        ax.annotate(text, (bar.get_x() + bar.get_width() / 2, value),
                                    ha="center", va="bottom", fontsize=7)
            ax.set_xticks(xs, [f"{CERTS[c]}\nTLS {v}" if test != "keep-alive" else f"TLS {v}"
                               for c, v in groups])
            ax.set_ylabel(ylabel)
            ax.grid(axis="y", alpha=0.3)
            what = {"full": "full handshakes", "resumed": "resumed handshakes",
                    "keep-alive": "keep-alive requests"}[test]
            ax.set_title(f"{what}: " + ("per second (higher is better)" if row == 0 else
                                        "server CPU per op (lower is better)"), fontsize=9)
            if col == 0 and row == 0:
                ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of load after each start, before measuring (0: none)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every contender")
    parser.add_argument("--keep", choices=["best", "median"], default="best",
                        help="which round's figure to keep (default: best ops/s)")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help=f"comma-separated contenders among {','.join(CONTENDERS)}")
    parser.add_argument("--certs", default=",".join(CERTS), help="ecdsa,rsa")
    parser.add_argument("--tls", default="1.3", help="handshake TLS versions: 1.3,1.2")
    parser.add_argument("--tests", default=",".join(TESTS), help="full,resumed,keep-alive")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="handshakes in flight (tls_hammer)")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c")
    parser.add_argument("--body-size", type=int, default=100, help="response body bytes")
    parser.add_argument("--chart", default=str(ROOT / "docs" / "https_bench.png"),
                        help="PNG to write ('' for none)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--no-install", action="store_true",
                        help="do not apt-get / pip install what is missing")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin the clients+backend to CPU 0 and the server to CPU 1")
    args = parser.parse_args(argv)
    only, certs, versions, tests = (_split(args.only), _split(args.certs), _split(args.tls),
                                    _split(args.tests))
    unknown = ([c for c in only if c not in CONTENDERS] + [c for c in certs if c not in CERTS]
               + [v for v in versions if v not in TLS_VERSIONS]
               + [t for t in tests if t not in TESTS])
    if unknown or not (only and certs and tests):
        parser.error(f"unknown or missing contender, certificate, version or test: "
                     f"{', '.join(unknown) or '(empty list)'}")
    if any(t in HANDSHAKES for t in tests) and not versions:
        parser.error("--tls needs at least one version for handshake tests")

    if not args.no_install:
        install()
    problems = missing_tools(only)
    if problems:
        why = " (--no-install was given)" if args.no_install else ""
        print(f"https_bench: cannot run{why}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1

    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    load_cpu, server_cpu = (0, 1) if pin else (None, None)
    layout = ("clients and backend on CPU 0, server under test on CPU 1" if pin
              else "not pinned")
    per_server = (len([t for t in tests if t in HANDSHAKES]) * len(versions)
                  * (args.duration + args.warmup / 2) + 2)
    ka = ("keep-alive" in tests) * (args.duration + args.warmup)
    estimate = args.rounds * len(only) * (len(certs) * per_server + ka)
    print(f"{len(only)} contenders, {len(certs)} certificate(s), {args.rounds} round(s) of "
          f"{args.duration:g} s per test; {layout}; about {estimate / 60:.1f} min", flush=True)

    body = (b"hello from the benchmark backend " * 10)[: max(1, args.body_size) - 1] + b"\n"
    measures: list[Measure] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="https_bench.") as tmp:
        try:
            hammer = build_hammer(Path(tmp))
        except RuntimeError as e:
            print(f"https_bench: {e}", file=sys.stderr)
            return 1
        certificates = {kind: make_certificate(kind, Path(tmp)) for kind in certs}
        backend_dir = Path(tmp) / "backend"
        backend_dir.mkdir()
        backend = hb.start_backend(backend_dir, body, load_cpu)
        with hb.running(backend):
            for rnd in range(args.rounds):
                shift = rnd % len(only)
                for name in only[shift:] + only[:shift]:
                    if name in skipped:
                        continue
                    try:
                        for cert_kind in certs:
                            run_one(name, cert_kind, rnd, args, tests, versions,
                                    certificates[cert_kind], hammer, backend.port, body,
                                    Path(tmp), load_cpu, server_cpu, measures,
                                    keepalive=cert_kind == certs[0])
                    except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
                        skipped[name] = str(e).splitlines()[0]
                        print(f"skipping {name}: {e}", flush=True)

    kept = aggregate(measures, args.keep)
    if not kept:
        print("nothing was measured", file=sys.stderr)
        return 1
    libraries = openssl_versions()
    print_report(kept, measures, args, layout, libraries)
    print(hb.pysozu_build())
    title = (f"HTTPS, {args.keep} of {args.rounds} round(s) of {args.duration:g} s; "
             f"{os.cpu_count()} CPUs" + (", server pinned to 1 core" if pin else "")
             + f", Python {platform.python_version()}; nginx on {libraries[0]}, pysozu on "
             f"{libraries[1]}")
    shown = [(f"{t} {CERTS[c].split()[0]} TLS {v}" if t != "keep-alive" else t)
             + f" {rate:.2f} ({cap:.2f})"
             for t, c, v, name, rate, cap in ratio_rows(kept) if name == "pysozu / nginx"]
    if shown:
        title += "\n" + textwrap.fill(
            "pysozu / nginx, ops/s (per server CPU-second): " + ", ".join(shown), 150)
    if args.chart:
        if importlib.util.find_spec("matplotlib"):
            draw_chart(kept, Path(args.chart), title)
            print(f"chart: {args.chart}")
        else:
            print("no chart: matplotlib is not installed")
    if args.json:
        args.json.write_text(json.dumps({
            "settings": {k: str(v) if isinstance(v, Path) else v
                         for k, v in vars(args).items()},
            "pinned": pin, "cpus": os.cpu_count(), "python": platform.python_version(),
            "openssl": {"nginx": libraries[0], "pysozu": libraries[1]}, "skipped": skipped,
            "kept": [{**asdict(k.m), "kept_cpu_us": k.cpu_us, "capacity": k.capacity}
                     for k in kept.values()],
            "ratios": [{"test": t, "cert": c, "tls": v, "name": n, "rate": r, "capacity": cap}
                       for t, c, v, n, r, cap in ratio_rows(kept)],
            "verdicts": verdicts(kept),
            "rounds": [asdict(m) for m in measures],
        }, indent=2))
        print(f"json: {args.json}")
    return 0


def run_one(name: str, cert_kind: str, rnd: int, args: argparse.Namespace, tests: list[str],
            versions: list[str], cert: Cert, hammer: Path, backend: int, body: bytes,
            tmp: Path, load_cpu: int | None, server_cpu: int | None, measures: list[Measure],
            *, keepalive: bool) -> None:
    """Start one contender with one certificate, run its tests, stop it."""
    handshake_tests = [t for t in tests if t in HANDSHAKES]
    if not handshake_tests and not (keepalive and "keep-alive" in tests):
        return
    workdir = tmp / f"{name}.{cert_kind}.{rnd}"
    workdir.mkdir()
    server = STARTERS[name](workdir, backend, cert, server_cpu, body)
    with running(server):
        if handshake_tests and args.warmup > 0:
            run_hammer(hammer, server, mode="new", tls=versions[0], seconds=args.warmup / 2,
                       concurrency=args.concurrency, cpu=load_cpu)
        for tls in versions:
            for test in handshake_tests:
                m = measure_handshakes(hammer, server, name, test, cert_kind, tls, rnd, args,
                                       load_cpu, server_cpu)
                measures.append(m)
                _progress(m)
        if keepalive and "keep-alive" in tests:
            m = measure_keepalive(server, name, cert_kind, rnd, args, load_cpu, server_cpu)
            measures.append(m)
            _progress(m)
        if not server.alive():
            print(f"  {name} exited during the run:\n"
                  + textwrap.indent(server.log_tail(), "    "))


def _progress(m: Measure) -> None:
    extra = f", {m.resumed}/{m.ops} resumed" if m.test == "resumed" else ""
    if m.errors:
        extra += f", {m.errors} errors"
    print(f"round {m.round + 1} {m.contender:<7} {label(m.test, m.cert, m.tls):<38} "
          f"{m.rate:8.0f}/s  server {m.cpu_us:7.1f} µs/op  CPU0 {_pct(m.load_busy)}% "
          f"CPU1 {_pct(m.server_busy)}%{extra}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
