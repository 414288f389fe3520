"""HTTP reverse-proxy benchmark: pysozu against nginx, HAProxy and proxy.py, with wrk.

    .venv/bin/python benchmarks/http_bench.py [--duration 10] [--connections 50] [--rounds 3]
        [--only direct,pysozu,pysozu-pure,nginx,haproxy,proxy.py] [--chart docs/http_bench.png]
        [--json results.json] [--no-install] [--no-pin]

What is measured: requests per second and the 50th/99th latency percentiles that ``wrk -t1
-c<N> -d<secs> --latency`` reports for ``GET /`` answered with a small fixed body (100 bytes,
with Content-Length), in two modes: keep-alive (wrk reuses its N connections) and
``Connection: close`` (a new client connection per request). Contenders, each alone on the
machine while it is measured, all on 127.0.0.1 with free ports:

- ``direct``: wrk against the backend itself, the ceiling of this layout;
- ``pysozu``: ``python -m pysozu start -c <toml> --log-level warning``, one worker, no access
  log (``access_logs_target`` unset), a PRE ``*`` frontend to one backend, on its compiled
  build (``pysozu.compiled``, made by the install step when missing or stale; the
  report says which build ran);
- ``pysozu-pure``: the same on its Python sources (``PYSOZU_COMPILED=0``);
- ``nginx``: 1 worker, ``proxy_http_version 1.1``, ``proxy_set_header Connection ""`` and an
  upstream ``keepalive`` pool, access log off (what nginx users deploy);
- ``haproxy``: ``nbthread 1``, ``mode http``, ``option http-keep-alive``, no logging;
- ``proxy.py``: its reverse proxy (``--enable-reverse-proxy`` with a route plugin written to
  the temporary folder), one acceptor, ``--threaded``, log level WARNING. Its default
  ``--threadless`` executor dies on the second keep-alive request in proxy.py 2.4.10
  (``FileNotFoundError`` in ``Threadless._update_work_events``, after which it serves
  nothing), so the thread-per-connection mode is its fastest working one.

Same backend for everyone: one nginx process (``master_process off``, access log off, an
unlimited ``keepalive_requests``) answering ``return 200 "<body>"``, started once for the run.

Layout: the machine this is written for has 2 cores. With ``taskset`` present (and unless
``--no-pin``), wrk and the backend share CPU 0 and the proxy under test gets CPU 1, so the
proxy never competes with the load generator, and every proxy gets the same single core
(``direct`` has wrk and the backend on CPU 0 alone). With more cores the same two are used.

Why ratios: absolute figures depend on the machine and drift by tens of percent on a shared
one; proxies measured in the same run against the same backend move together, so
pysozu/nginx, pysozu/haproxy, pysozu/proxy.py and proxy/direct are the figures that carry.
Contenders take turns: each round starts every contender in turn (the order rotates each
round), warms it up for ``--warmup`` seconds, measures keep-alive then close, and stops it.
``--keep best`` (the default) keeps, for each contender and mode, the round with the most
requests per second (with that round's latencies), as ``timeit`` keeps its best repeat: the
slow stretches of a noisy machine are noise, not the proxy. ``--keep median`` keeps the
median round instead.

Installation is a step of its own (skipped with ``--no-install``): ``apt-get install -y wrk
nginx haproxy`` for the missing commands (``apt-get update`` then a retry if that fails),
``pip install proxy.py matplotlib`` with this interpreter. A contender whose tool is still
missing is skipped with the reason printed; without matplotlib no chart is drawn. wrk's
non-2xx responses and socket errors are printed with each figure: a proxy that answers errors
fast is not fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("direct", "pysozu", "pysozu-pure", "nginx", "haproxy", "proxy.py")
PROXIES = CONTENDERS[1:]
#: pysozu as measured: its compiled build (made by ``install``), and its Python sources
MINE = ("pysozu", "pysozu-pure")
MODES = ("keep-alive", "close")
#: the command each contender needs (besides this interpreter)
NEEDS: dict[str, str] = {"direct": "nginx", "nginx": "nginx", "haproxy": "haproxy"}
APT_PACKAGES = {"wrk": "wrk", "nginx": "nginx", "haproxy": "haproxy"}
PIP_PACKAGES = {"proxy": "proxy.py", "matplotlib": "matplotlib"}


# --------------------------------------------------------------------------------------------
# installation
# --------------------------------------------------------------------------------------------


def _run_quiet(cmd: list[str]) -> tuple[int, str]:
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return proc.returncode, proc.stdout


def install() -> None:
    """Install the missing Debian commands and Python packages; report, never raise."""
    install_missing(APT_PACKAGES, PIP_PACKAGES)
    ensure_compiled()


def ensure_compiled() -> None:
    """Make pysozu's compiled build (``python -m pysozu.native --compile``, mypyc) when there
    is none that matches the sources; report, never raise."""
    from pysozu import compiled

    if isinstance(compiled._check(compiled.directory()), dict):
        return
    install_missing({}, {"mypyc": "mypy"})
    print("install: python -m pysozu.native --compile", flush=True)
    rc, out = _run_quiet([sys.executable, "-m", "pysozu.native", "--compile"])
    if rc != 0:
        print("install: the compiled build failed:\n" + textwrap.indent(out[-2000:], "  "))


def pysozu_build() -> str:
    """What ``pysozu`` runs in these benchmarks: its compiled build, or why not."""
    from pysozu import compiled

    found = compiled._check(compiled.directory())
    if os.environ.get("PYSOZU_COMPILED") == "0" or os.environ.get("PYSOZU_PURE_PYTHON") == "1":
        return "pysozu runs its Python sources (PYSOZU_COMPILED=0 or PYSOZU_PURE_PYTHON=1)"
    if isinstance(found, dict):
        return f"pysozu runs its compiled build ({len(compiled.MODULES)} modules, mypyc)"
    return f"pysozu runs its Python sources: {found}"


def install_missing(apt_packages: dict[str, str], pip_packages: dict[str, str],
                    extra_apt: tuple[str, ...] = ()) -> None:
    """Install the Debian packages whose command is missing (``{command: package}``, plus
    ``extra_apt``) and the Python packages whose module is missing (``{module: package}``);
    report, never raise. Every benchmark script installs what it needs this way."""
    missing_apt = sorted({pkg for cmd, pkg in apt_packages.items() if not shutil.which(cmd)}
                         | set(extra_apt))
    if missing_apt:
        if not shutil.which("apt-get"):
            print(f"install: no apt-get, cannot install {' '.join(missing_apt)}")
        else:
            print(f"install: apt-get install -y {' '.join(missing_apt)}", flush=True)
            rc, out = _run_quiet(["apt-get", "install", "-y", *missing_apt])
            if rc != 0:
                print("install: apt-get install failed; apt-get update and retry", flush=True)
                _run_quiet(["apt-get", "update"])
                rc, out = _run_quiet(["apt-get", "install", "-y", *missing_apt])
            if rc != 0:
                print("install: apt-get install failed:\n" + textwrap.indent(out[-2000:], "  "))
    missing_pip = [pkg for mod, pkg in pip_packages.items() if not importlib.util.find_spec(mod)]
    if missing_pip:
        print(f"install: {sys.executable} -m pip install {' '.join(missing_pip)}", flush=True)
        rc, out = _run_quiet([sys.executable, "-m", "pip", "install", "-q", *missing_pip])
        if rc != 0:
            print("install: pip install failed:\n" + textwrap.indent(out[-2000:], "  "))
        importlib.invalidate_caches()


def why_missing(name: str) -> str | None:
    """The reason ``name`` cannot run here, or None."""
    command = NEEDS.get(name)
    if command and not shutil.which(command):
        return f"`{command}` not found"
    if name == "pysozu" and not importlib.util.find_spec("pysozu"):
        return f"pysozu is not importable by {sys.executable} (pip install -e .)"
    if name == "proxy.py" and not importlib.util.find_spec("proxy"):
        return f"proxy.py is not importable by {sys.executable} (pip install proxy.py)"
    return None


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


@dataclass
class Server:
    """A started server: its process group, its log file and its temporary folder."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL to what is left after 5 s."""
        pgid = self.proc.pid  # start_new_session: the leader's pid is the group id
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if self.proc.poll() is not None and not _group_alive(pgid):
                    return
                time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies of the group count as gone: look for a live member
    return any(fields[0] != "Z" for fields in _group_stats(pgid))


def _group_stats(pgid: int) -> Iterator[list[str]]:
    """The ``/proc/PID/stat`` fields after the command name (state first) of each process
    of a process group."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            yield fields


def start(name: str, cmd: list[str], port: int, workdir: Path,
          env: dict[str, str] | None = None) -> Server:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=workdir, env=env, start_new_session=True)
    return Server(name, port, proc, log)


def wait_ready(server: Server, timeout: float = 15.0) -> None:
    """Wait until ``GET /`` on the server answers 200; raise RuntimeError with its log if not."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited with status {server.proc.returncode}:\n"
                               + textwrap.indent(server.log_tail(), "  "))
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=2) as s:
                s.sendall(request)
                answer = s.recv(4096)
            if answer.startswith(b"HTTP/1.1 200"):
                return
            last = repr(answer[:80])
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer 200 on 127.0.0.1:{server.port} within "
                       f"{timeout:.0f} s (last: {last}):\n"
                       + textwrap.indent(server.log_tail(), "  "))


def _nginx_common(workdir: Path) -> str:
    return textwrap.dedent(f"""\
        daemon off;
        pid {workdir}/nginx.pid;
        error_log {workdir}/error.log warn;
        """)


def _nginx_http_common(workdir: Path) -> str:
    return textwrap.dedent(f"""\
        access_log off;
        keepalive_requests 1000000000;
        client_body_temp_path {workdir}/client_body;
        proxy_temp_path {workdir}/proxy;
        fastcgi_temp_path {workdir}/fastcgi;
        uwsgi_temp_path {workdir}/uwsgi;
        scgi_temp_path {workdir}/scgi;
        """)


def _nginx(name: str, conf: str, port: int, workdir: Path, cpu: int | None) -> Server:
    path = workdir / "nginx.conf"
    path.write_text(conf)
    return start(name, pinned(["nginx", "-e", str(workdir / "error.log"), "-p", str(workdir),
                               "-c", str(path)], cpu), port, workdir)


def start_backend(workdir: Path, body: bytes, cpu: int | None, processes: int = 1) -> Server:
    """nginx answering ``body`` to every request: one process, or ``processes`` workers."""
    port = free_port()
    literal = body.decode("ascii").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    workers = ("master_process off;\nworker_processes 1;" if processes == 1
               else f"worker_processes {processes};")
    conf = _nginx_common(workdir) + workers + "\n" + textwrap.dedent("""\
        events { worker_connections 8192; }
        http {
        %s
            server {
                listen 127.0.0.1:%d backlog=4096;
                location / { default_type text/plain; return 200 "%s"; }
            }
        }
        """) % (textwrap.indent(_nginx_http_common(workdir), "    "), port, literal)
    return _nginx("backend", conf, port, workdir, cpu)


def start_pysozu(workdir: Path, backend: int, cpu: int | None, workers: int = 1,
                 compiled: bool = True) -> Server:
    """``pysozu start`` with ``workers`` worker processes (one by default: the contender
    against one nginx worker); ``compiled=False``: on its Python sources even where the
    compiled build is there (``PYSOZU_COMPILED=0``)."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    config = workdir / "pysozu.toml"
    # no access_logs_target: no access log; log level warning (below, and on the command line)
    config.write_text(textwrap.dedent(f"""\
        command_socket = "{workdir}/pysozu.sock"
        log_level = "warning"
        log_target = "stderr"
        worker_count = {workers}

        [[listeners]]
        protocol = "http"
        address = "{address}"

        [clusters.bench]
        protocol = "http"
        load_balancing = "ROUND_ROBIN"
        frontends = [{{ address = "{address}", hostname = "*", position = "PRE" }}]
        backends = [{{ address = "127.0.0.1:{backend}", backend_id = "bench-0" }}]
        """))
    cmd = [sys.executable, "-m", "pysozu", "start", "-c", str(config), "--log-level", "warning"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    if not compiled:
        env["PYSOZU_COMPILED"] = "0"
    return start("pysozu", pinned(cmd, cpu), port, workdir, env)


def start_pysozu_pure(workdir: Path, backend: int, cpu: int | None) -> Server:
    return start_pysozu(workdir, backend, cpu, compiled=False)


def start_nginx_proxy(workdir: Path, backend: int, cpu: int | None) -> Server:
    port = free_port()
    conf = _nginx_common(workdir) + textwrap.dedent("""\
        worker_processes 1;
        events { worker_connections 8192; }
        http {
        %s
            upstream backend {
                server 127.0.0.1:%d;
                keepalive 128;
                keepalive_requests 1000000000;
            }
            server {
                listen 127.0.0.1:%d backlog=4096;
                location / {
                    proxy_pass http://backend;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                }
            }
        }
        """) % (textwrap.indent(_nginx_http_common(workdir), "    "), backend, port)
    return _nginx("nginx", conf, port, workdir, cpu)


def start_haproxy(workdir: Path, backend: int, cpu: int | None) -> Server:
    port = free_port()
    conf = workdir / "haproxy.cfg"
    conf.write_text(textwrap.dedent(f"""\
        global
            nbthread 1
            maxconn 8000
        defaults
            mode http
            option http-keep-alive
            timeout connect 5s
            timeout client 60s
            timeout server 60s
            timeout http-keep-alive 60s
        frontend bench
            bind 127.0.0.1:{port}
            default_backend backend
        backend backend
            server b0 127.0.0.1:{backend}
        """))
    return start("haproxy", pinned(["haproxy", "-db", "-f", str(conf)], cpu), port, workdir)


PROXYPY_PLUGIN = '''\
from proxy.http.server import ReverseProxyBasePlugin


class BenchRoute(ReverseProxyBasePlugin):
    """Every path to the benchmark backend."""

    def routes(self):
        return [(r"/.*", [b"http://127.0.0.1:%d/"])]
'''


def start_proxypy(workdir: Path, backend: int, cpu: int | None) -> Server:
    port = free_port()
    (workdir / "bench_route.py").write_text(PROXYPY_PLUGIN % backend)
    cmd = [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(port),
           "--num-acceptors", "1", "--threaded", "--disable-http-proxy",
           "--enable-reverse-proxy", "--plugins", "bench_route.BenchRoute",
           "--log-level", "WARNING"]
    env = {**os.environ, "PYTHONPATH": str(workdir)}
    return start("proxy.py", pinned(cmd, cpu), port, workdir, env)


STARTERS: dict[str, Callable[[Path, int, int | None], Server]] = {
    "pysozu": start_pysozu,
    "pysozu-pure": start_pysozu_pure,
    "nginx": start_nginx_proxy,
    "haproxy": start_haproxy,
    "proxy.py": start_proxypy,
}


# --------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------


@dataclass
class Measure:
    contender: str
    mode: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, object]:
    """requests/sec, p50/p99 (ms), total requests, non-2xx count and socket errors."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    pct = {p: _ms(v, u) for p, v, u in
           re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.M)}
    if not rps or not total or "50" not in pct or "99" not in pct:
        raise ValueError("unexpected wrk output:\n" + output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    errors = dict(zip(("connect", "read", "write", "timeout"),
                      map(int, sock.groups()), strict=True)) if sock else {}
    return {"rps": float(rps.group(1)), "p50_ms": pct["50"], "p99_ms": pct["99"],
            "requests": int(total.group(1)), "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": {k: v for k, v in errors.items() if v}}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu(pgid: int) -> float:
    """User + system seconds of the live processes of a process group."""
    total = sum(int(fields[11]) + int(fields[12]) for fields in _group_stats(pgid))
    return total / CLOCK_TICKS


def run_wrk(port: int, *, close: bool, connections: int, duration: float,
            cpu: int | None) -> dict[str, object]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}/")
    proc = subprocess.run(pinned(cmd, cpu), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=duration + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}")
    return parse_wrk(proc.stdout)


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


def aggregate(measures: list[Measure], keep: str) -> dict[tuple[str, str], Measure]:
    groups: dict[tuple[str, str], list[Measure]] = {}
    for m in measures:
        groups.setdefault((m.contender, m.mode), []).append(m)
    kept = {}
    for key, ms in groups.items():
        ms = sorted(ms, key=lambda m: m.rps)
        kept[key] = ms[-1] if keep == "best" else ms[(len(ms) - 1) // 2]
    return kept


def _fmt_errors(m: Measure) -> str:
    parts = [f"non-2xx {m.non_2xx}"] if m.non_2xx else []
    parts += [f"{k} {v}" for k, v in m.socket_errors.items()]
    return ", ".join(parts) or "-"


def ratios(kept: dict[tuple[str, str], Measure]) -> list[tuple[str, str, float]]:
    """(name, mode, ratio of requests/s) for pysozu/other proxies and each proxy/direct."""
    out = []
    for mode in MODES:
        for me in MINE:
            mine = kept.get((me, mode))
            for other in ("nginx", "haproxy", "proxy.py"):
                theirs = kept.get((other, mode))
                if mine and theirs and theirs.rps:
                    out.append((f"{me} / {other}", mode, mine.rps / theirs.rps))
        direct = kept.get(("direct", mode))
        for proxy in PROXIES:
            m = kept.get((proxy, mode))
            if m and direct and direct.rps:
                out.append((f"{proxy} / direct", mode, m.rps / direct.rps))
    return out


def print_report(kept: dict[tuple[str, str], Measure], all_measures: list[Measure],
                 args: argparse.Namespace) -> None:
    print()
    print(f"HTTP reverse proxies, wrk -t1 -c{args.connections} -d{args.duration:g}s, "
          f"{args.body_size}-byte body; {args.keep} of {args.rounds} round(s)")
    header = f"{'contender':<12} {'mode':<10} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}  errors"
    print(header)
    print("-" * len(header))
    for mode in MODES:
        for name in CONTENDERS:
            m = kept.get((name, mode))
            if m:
                print(f"{name:<12} {mode:<10} {m.rps:10.0f} {m.p50_ms:8.2f} {m.p99_ms:8.2f}  "
                      f"{_fmt_errors(m)}")
    print()
    print("ratios of requests/s:")
    for name, mode, ratio in ratios(kept):
        print(f"  {name:<25} {mode:<10} {ratio:6.2f}")
    if args.rounds > 1:
        print()
        print("every round (req/s):")
        for mode in MODES:
            for name in CONTENDERS:
                rs = [m.rps for m in all_measures if m.contender == name and m.mode == mode]
                if rs:
                    print(f"  {name:<12} {mode:<10} " + " ".join(f"{r:8.0f}" for r in rs))
    print()
    print(pysozu_build())
    for me in MINE:
        ka = kept.get((me, "keep-alive"))
        for other, target in (("nginx", 0.5), ("proxy.py", 10.0)):
            theirs = kept.get((other, "keep-alive"))
            if ka and theirs and theirs.rps:
                ratio = ka.rps / theirs.rps
                verdict = "met" if ratio >= target else "NOT met"
                print(f"target {me} >= {target:g}x {other} (keep-alive req/s): {ratio:.2f}, "
                      f"{verdict}")


def draw_chart(kept: dict[tuple[str, str], Measure], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in CONTENDERS if any((n, mode) in kept for mode in MODES)]
    xs = list(range(len(names)))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    colors = {"keep-alive": "#3b75af", "close": "#ef8636"}
    width = 0.38
    for i, mode in enumerate(MODES):
        vals = [kept[(n, mode)].rps if (n, mode) in kept else 0.0 for n in names]
        bars = ax1.bar([x + (i - 0.5) * width for x in xs], vals, width, label=mode,
                       color=colors[mode])
        for bar, v in zip(bars, vals, strict=True):
            if v:
                ax1.annotate(f"{v / 1000:.1f}k", (bar.get_x() + bar.get_width() / 2, v),
                             ha="center", va="bottom", fontsize=8)
    ax1.set_xticks(xs, names)
    ax1.set_ylabel("requests per second")
    ax1.set_title("throughput (higher is better)")
    ax1.legend()
    ax1.grid(axis="y", alpha=0.3)

    width = 0.2
    series = [(mode, pct) for mode in MODES for pct in ("p50", "p99")]
    shades = {("keep-alive", "p50"): "#9cc3e6", ("keep-alive", "p99"): "#3b75af",
              ("close", "p50"): "#f6c28f", ("close", "p99"): "#ef8636"}
    for i, (mode, pct) in enumerate(series):
        vals = [getattr(kept[(n, mode)], f"{pct}_ms") if (n, mode) in kept else 0.0
                for n in names]
        ax2.bar([x + (i - 1.5) * width for x in xs], vals, width, label=f"{mode} {pct}",
                color=shades[(mode, pct)])
    ax2.set_xticks(xs, names)
    ax2.set_yscale("log")
    ax2.set_ylabel("latency (ms, log scale)")
    ax2.set_title("latency percentiles (lower is better)")
    ax2.legend(fontsize=8)
    ax2.grid(axis="y", alpha=0.3, which="both")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        wait_ready(server)
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of keep-alive load before measuring (0: none)")
    parser.add_argument("--connections", type=int, default=50, help="wrk -c")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over every contender")
    parser.add_argument("--keep", choices=["best", "median"], default="best",
                        help="which round's figure to keep (default: best req/s)")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help=f"comma-separated contenders among {','.join(CONTENDERS)}")
    parser.add_argument("--modes", default=",".join(MODES), help="keep-alive,close")
    parser.add_argument("--body-size", type=int, default=100, help="response body bytes")
    parser.add_argument("--chart", default=str(ROOT / "docs" / "http_bench.png"),
                        help="PNG to write ('' for none)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--no-install", action="store_true",
                        help="do not apt-get / pip install what is missing")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin wrk+backend to CPU 0 and the proxy to CPU 1")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [c for c in only if c not in CONTENDERS] + [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown contender or mode: {', '.join(unknown)}")

    if not args.no_install:
        install()
    if not shutil.which("wrk"):
        print("wrk is not installed (apt-get install wrk): nothing to measure", file=sys.stderr)
        return 1
    if not shutil.which("nginx"):
        print("nginx (the backend) is not installed: nothing to measure", file=sys.stderr)
        return 1
    contenders = []
    for name in only:
        reason = why_missing(name)
        if reason:
            print(f"skipping {name}: {reason}")
        else:
            contenders.append(name)

    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    load_cpu, proxy_cpu = (0, 1) if pin else (None, None)
    print(f"{len(contenders)} contenders, {args.rounds} round(s) of {args.duration:g} s per "
          f"mode; " + ("wrk and backend on CPU 0, proxy on CPU 1" if pin else "not pinned"),
          flush=True)

    body = (b"hello from the benchmark backend " * 10)[: max(1, args.body_size) - 1] + b"\n"
    measures: list[Measure] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="http_bench.") as tmp:
        backend_dir = Path(tmp) / "backend"
        backend_dir.mkdir()
        backend = start_backend(backend_dir, body, load_cpu)
        with running(backend):
            for rnd in range(args.rounds):
                shift = rnd % max(1, len(contenders))
                for name in contenders[shift:] + contenders[:shift]:
                    if name in skipped:
                        continue
                    workdir = Path(tmp) / f"{name}.{rnd}"
                    workdir.mkdir()
                    if name == "direct":
                        server = backend
                        ctx: contextlib.AbstractContextManager[Server] = contextlib.nullcontext(
                            backend)
                    else:
                        server = STARTERS[name](workdir, backend.port, proxy_cpu)
                        ctx = running(server)
                    try:
                        with ctx:
                            if args.warmup > 0:
                                run_wrk(server.port, close=False, connections=args.connections,
                                        duration=args.warmup, cpu=load_cpu)
                            for mode in modes:
                                r = run_wrk(server.port, close=mode == "close",
                                            connections=args.connections,
                                            duration=args.duration, cpu=load_cpu)
                                m = Measure(name, mode, rnd, **r)  # type: ignore[arg-type]
                                measures.append(m)
                                print(f"round {rnd + 1} {name:<9} {mode:<10} {m.rps:9.0f} req/s"
                                      f"  p50 {m.p50_ms:7.2f} ms  p99 {m.p99_ms:7.2f} ms  "
                                      f"errors: {_fmt_errors(m)}", flush=True)
                            if name != "direct" and not server.alive():
                                print(f"  {name} exited during the run:\n"
                                      + textwrap.indent(server.log_tail(), "    "))
                    except RuntimeError as e:
                        skipped[name] = str(e).splitlines()[0]
                        print(f"skipping {name}: {e}", flush=True)

    kept = aggregate(measures, args.keep)
    if not kept:
        print("nothing was measured", file=sys.stderr)
        return 1
    print_report(kept, measures, args)
    title = (f"wrk -t1 -c{args.connections} -d{args.duration:g}s, {args.body_size}-byte body, "
             f"{args.keep} of {args.rounds}; {os.cpu_count()} CPUs"
             + (", proxy pinned to 1 core" if pin else "")
             + f", Python {platform.python_version()}")
    shown = [f"{name} {ratio:.2f}" for name, mode, ratio in ratios(kept)
             if mode == "keep-alive" and name.startswith("pysozu / ")]
    if shown:
        title += "\nkeep-alive req/s ratios: " + ", ".join(shown)
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
            "skipped": skipped,
            "kept": [asdict(m) for m in kept.values()],
            "ratios": [{"name": n, "mode": mo, "ratio": r} for n, mo, r in ratios(kept)],
            "rounds": [asdict(m) for m in measures],
        }, indent=2))
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
