"""HTTP/2 benchmark: requests per second over HTTP/2 and TLS with h2load, pysozu against
nginx (one worker each) and nginx answering by itself.

    .venv/bin/python benchmarks/h2_bench.py [--duration 5] [--rounds 2] [--clients 10]
        [--streams 10] [--warmup 1] [--only direct,nginx,pysozu] [--keep best|median]
        [--chart docs/h2_bench.png] [--json results.json] [--no-install] [--no-pin]

What is measured: requests per second, as ``h2load -c10 -m10 -t1 -D <secs>
--warm-up-time=<secs> https://127.0.0.1:PORT/`` reports it (10 HTTP/2 connections with 10
streams in flight on each, over TLS 1.3, ALPN ``h2``), for ``GET /`` answered with the same
100-byte body as ``http_bench.py``; beside it h2load's request counts (succeeded, failed,
errored, timed out, and the status classes) and its mean and largest time per request
(h2load gives no percentiles), and the server's CPU time per request (user + system of its
process group, read from ``/proc`` over h2load's main duration, after its warm-up). h2load
offers ``h2`` and ``http/1.1`` in ALPN; a run that did not negotiate ``h2`` is reported as
an error, not measured. Contenders, all on 127.0.0.1 with free ports, each alone on the
machine while measured, all serving the same ECDSA P-256 certificate made at run time with
``https_bench.py``'s TLS settings:

- ``direct``: nginx (1 worker, ``listen ... ssl http2``) answering the body itself
  (``return 200``): the ceiling of this layout;
- ``nginx``: nginx (1 worker, ``listen ... ssl http2``: nginx 1.22 of Debian 12 takes
  ``http2`` on the listen line) proxying to the plain HTTP/1.1 backend with an upstream
  ``keepalive`` pool, as in ``https_bench.py``;
- ``pysozu``: one worker with an HTTPS listener (the certificate as listener default,
  ``strict_sni_binding`` off, ALPN left at its default ``["h2", "http/1.1"]``), a PRE ``*``
  frontend to the same backend, no access log, log level warning; started by
  ``https_bench.py``'s launcher, which builds a ``Worker`` and applies the channel's
  requests. It speaks HTTP/1.1 to the backend, as nginx does.

The backend is ``http_bench.py``'s nginx (``master_process off``, one worker, unlimited
``keepalive_requests``), started once for the run.

Layout: with ``taskset`` (and unless ``--no-pin``) h2load and the backend share CPU 0 and
the server under test gets CPU 1, as in the other benchmarks. h2load's client side (TLS,
HPACK, one thread) may not keep a fast server busy on one core: every figure comes with how
busy the client core was and the share of a core the server used ("client-bound" in the
report when the first is saturated and the second is not). The server's CPU per request is
then the figure that compares servers, so the report gives the ratio of requests per server
CPU-second beside the ratio of measured requests per second.

Rounds, ``--keep`` and installation are as in ``https_bench.py``: contenders take turns (the
order rotates each round), each keeps its best round for requests/s and, chosen on its own,
its lowest server CPU per request (``--keep median``: the median ones); ``--no-install``
skips ``apt-get install nginx nghttp2-client`` (h2load) and ``pip install matplotlib``, and
a missing tool is then an error that names it. A contender that fails (does not start, does
not negotiate h2, makes h2load fail or hang) is skipped for the rest of the run with what
h2load printed and the tail of its log.

Target (the HTTP/2 issue): pysozu's requests per second at least 0.4x nginx's.

Which pysozu: its compiled build (``pysozu.compiled``), which the install step makes when
it is missing or stale; ``PYSOZU_COMPILED=0`` measures the Python sources instead. The
report says which ran.
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
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

# http_bench.py and https_bench.py beside this file provide the servers, the certificate, the
# pysozu launcher and the CPU accounting
sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb
import https_bench as hbs

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("direct", "nginx", "pysozu")
APT_PACKAGES = {"nginx": "nginx", "h2load": "nghttp2-client"}
#: the target of the HTTP/2 issue: pysozu's requests/s at least this times nginx's
TARGET = 0.4
#: a core this busy over a run is saturated
SATURATED = hbs.SATURATED


# --------------------------------------------------------------------------------------------
# installation and requirements
# --------------------------------------------------------------------------------------------


def install() -> None:
    """Install the missing Debian packages and matplotlib; report, never raise."""
    hb.install_missing(APT_PACKAGES, {"matplotlib": "matplotlib"})
    hb.ensure_compiled()


def missing_tools(contenders: list[str]) -> list[str]:
    """What this run needs and does not find, one line each."""
    problems = []
    if not shutil.which("h2load"):
        problems.append("`h2load` not found (apt-get install nghttp2-client): it is the load")
    if not shutil.which("nginx"):
        problems.append("`nginx` not found (apt-get install nginx): it is the backend")
    if "pysozu" in contenders and not importlib.util.find_spec("pysozu"):
        problems.append(f"pysozu is not importable by {sys.executable} (pip install -e .)")
    if not importlib.util.find_spec("cryptography"):
        problems.append(f"cryptography is not importable by {sys.executable}: it makes the "
                        "certificate")
    return problems


def h2load_version() -> str:
    with contextlib.suppress(OSError):
        out = subprocess.run(["h2load", "--version"], capture_output=True, text=True).stdout
        m = re.search(r"nghttp2/([\d.]+)", out)
        if m:
            return m.group(1)
    return "?"


# --------------------------------------------------------------------------------------------
# servers
# --------------------------------------------------------------------------------------------


def _nginx_h2(workdir: Path, name: str, cert: hbs.Cert, upstream: str, location: str,
              cpu: int | None) -> hb.Server:
    """``https_bench.py``'s nginx with ``http2`` on the listen line (nginx < 1.25.1)."""
    port = hb.free_port()
    conf = hb._nginx_common(workdir) + textwrap.dedent("""\
        worker_processes 1;
        events { worker_connections 8192; }
        http {
        %s
        %s
            server {
                listen 127.0.0.1:%d ssl http2 backlog=4096;
        %s
                location / {
        %s
                }
            }
        }
        """) % (textwrap.indent(hb._nginx_http_common(workdir), "    "),
                textwrap.indent(upstream, "    "), port,
                textwrap.indent(hbs._nginx_tls(cert), "        "),
                textwrap.indent(location, "            "))
    return hb._nginx(name, conf, port, workdir, cpu)


def start_direct(workdir: Path, backend: int, cert: hbs.Cert, cpu: int | None,
                 body: bytes) -> hb.Server:
    literal = body.decode("ascii").replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return _nginx_h2(workdir, "direct", cert, "",
                     f'default_type text/plain;\nreturn 200 "{literal}";', cpu)


def start_nginx(workdir: Path, backend: int, cert: hbs.Cert, cpu: int | None,
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
    return _nginx_h2(workdir, "nginx", cert, upstream, location, cpu)


STARTERS: dict[str, Callable[[Path, int, hbs.Cert, int | None, bytes], hb.Server]] = {
    "direct": start_direct,
    "nginx": start_nginx,
    # ALPN is left at the listener's default, ["h2", "http/1.1"]
    "pysozu": hbs.start_pysozu,
}


def server_logs(server: hb.Server, workdir: Path, chars: int = 1500) -> str:
    """What the server wrote: its output, and nginx's error log."""
    parts = []
    tail = server.log_tail(chars).strip()
    if tail:
        parts.append(tail)
    error_log = workdir / "error.log"
    with contextlib.suppress(OSError):
        text = error_log.read_text(errors="replace")[-chars:].strip()
        if text:
            parts.append(f"{error_log.name}:\n{text}")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# h2load
# --------------------------------------------------------------------------------------------


@dataclass
class Measure:
    contender: str
    round: int
    rps: float
    requests: int  # requests done in the main duration
    seconds: float  # h2load's "finished in"
    succeeded: int
    failed: int
    errored: int
    timeout: int
    mean_ms: float  # h2load's mean time per request
    max_ms: float
    protocol: str  # the ALPN protocol h2load negotiated
    tls: str  # the TLS version h2load negotiated
    server_cpu: float  # seconds of the server's process group over the main duration
    wall: float  # seconds over which server_cpu was counted
    load_busy: float | None  # fraction of the client core
    server_busy: float | None  # fraction of the server core (the server and anything else)
    status: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        """Requests that did not get a 2xx answer, whatever the reason."""
        not_2xx = sum(v for k, v in self.status.items() if k != "2xx")
        return max(self.failed + self.errored + self.timeout, not_2xx)

    @property
    def cpu_us(self) -> float:
        """Server CPU µs per request, over the measured requests."""
        return self.server_cpu / self.requests * 1e6 if self.requests else float("inf")

    @property
    def server_share(self) -> float:
        return self.server_cpu / self.wall if self.wall else 0.0

    @property
    def client_bound(self) -> bool:
        return (self.load_busy is not None and self.load_busy >= SATURATED
                and self.server_share < SATURATED)


def parse_h2load(output: str) -> dict[str, object]:
    """req/s, counts, status classes, mean and max time per request, negotiated protocol."""
    fin = re.search(r"^finished in ([\d.]+)(us|ms|s|m|h), ([\d.]+) req/s", output, re.M)
    counts = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored, (\d+) timeout", output, re.M)
    if not fin or not counts:
        raise ValueError("unexpected h2load output:\n" + output[-3000:])
    status = {k: int(v) for v, k in re.findall(r"(\d+) ([1-5]xx)", output)}
    latency = re.search(r"^time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+"
                        r"([\d.]+)(us|ms|s)", output, re.M)
    protocol = re.search(r"^Application protocol: (\S+)", output, re.M)
    tls = re.search(r"^TLS Protocol: (\S+)", output, re.M)
    _total, _started, done, ok, failed, errored, timeout = map(int, counts.groups())
    return {
        "rps": float(fin.group(3)), "seconds": hb._ms(fin.group(1), fin.group(2)) / 1e3,
        "requests": done, "succeeded": ok, "failed": failed, "errored": errored,
        "timeout": timeout, "status": {k: v for k, v in status.items() if v or k == "2xx"},
        "mean_ms": hb._ms(latency.group(5), latency.group(6)) if latency else float("nan"),
        "max_ms": hb._ms(latency.group(3), latency.group(4)) if latency else float("nan"),
        "protocol": protocol.group(1) if protocol else "none",
        "tls": tls.group(1) if tls else "none",
    }


def h2load_command(port: int, args: argparse.Namespace) -> list[str]:
    cmd = ["h2load", f"-c{args.clients}", f"-m{args.streams}", "-t1",
           f"-D{max(1, round(args.duration))}"]
    if args.warmup > 0:
        cmd.append(f"--warm-up-time={max(1, round(args.warmup))}")
    return [*cmd, f"https://127.0.0.1:{port}/"]


def measure(server: hb.Server, name: str, rnd: int, args: argparse.Namespace,
            load_cpu: int | None, server_cpu: int | None) -> tuple[Measure, str]:
    """One h2load run; the server's CPU is counted from the end of h2load's warm-up."""
    cmd = hb.pinned(h2load_command(server.port, args), load_cpu)
    warmup = max(1, round(args.warmup)) if args.warmup > 0 else 0
    limit = warmup + max(1, round(args.duration)) + 30
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # h2load connects, warms up, then measures: count the server's CPU over the latter
        # (its output during the warm-up is a few lines, far below a pipe's buffer)
        time.sleep(warmup + 0.05)
        with hbs.Probe(server, load_cpu, server_cpu) as probe:
            output, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise RuntimeError(f"h2load did not finish within {limit} s (killed); its output:\n"
                           + textwrap.indent(output[-3000:], "  ")) from None
    if proc.returncode != 0:
        raise RuntimeError(f"h2load failed ({proc.returncode}):\n"
                           + textwrap.indent(output[-3000:], "  "))
    r = parse_h2load(output)
    if r["protocol"] != "h2":
        raise RuntimeError(f"h2load negotiated {r['protocol']}, not h2:\n"
                           + textwrap.indent(output[-3000:], "  "))
    m = Measure(name, rnd, server_cpu=probe.used, wall=probe.wall, load_busy=probe.load_busy,
                server_busy=probe.server_busy, **r)  # type: ignore[arg-type]
    return m, output


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------


@dataclass
class Kept:
    """A contender over the rounds: the round with the best (or median) requests/s and,
    chosen on its own, the best (or median) server CPU per request."""

    m: Measure
    cpu_us: float

    @property
    def rps(self) -> float:
        return self.m.rps

    @property
    def capacity(self) -> float:
        """Requests per second of server CPU time."""
        return 1e6 / self.cpu_us if self.cpu_us else float("inf")


def aggregate(measures: list[Measure], keep: str) -> dict[str, Kept]:
    groups: dict[str, list[Measure]] = {}
    for m in measures:
        groups.setdefault(m.contender, []).append(m)
    kept = {}
    for name, ms in groups.items():
        by_rate = sorted(ms, key=lambda m: m.rps)
        costs = sorted(m.cpu_us for m in ms)
        i = len(ms) - 1 if keep == "best" else (len(ms) - 1) // 2
        kept[name] = Kept(by_rate[i], costs[0 if keep == "best" else (len(ms) - 1) // 2])
    return kept


def ratio_rows(kept: dict[str, Kept]) -> list[tuple[str, float, float]]:
    """('a / b', ratio of req/s, ratio of requests per server CPU-second)."""
    out = []
    for mine, other in (("pysozu", "nginx"), ("pysozu", "direct"), ("nginx", "direct")):
        a, b = kept.get(mine), kept.get(other)
        if a and b and b.rps:
            out.append((f"{mine} / {other}", a.rps / b.rps, a.capacity / b.capacity))
    return out


def verdicts(kept: dict[str, Kept]) -> list[str]:
    lines = []
    for name, rate, capacity in ratio_rows(kept):
        if name != "pysozu / nginx":
            continue
        lines.append(f"target pysozu >= {TARGET:g}x nginx (HTTP/2 req/s): {rate:.2f}, "
                     f"{'met' if rate >= TARGET else 'NOT met'}; per server CPU-second "
                     f"{capacity:.2f}, {'met' if capacity >= TARGET else 'NOT met'}")
    return lines


def _pct(value: float | None) -> str:
    return hbs._pct(value)


def _errors(m: Measure) -> str:
    parts = [f"{k} {v}" for k, v in (("failed", m.failed), ("errored", m.errored),
                                      ("timeout", m.timeout)) if v]
    parts += [f"{k} {v}" for k, v in m.status.items() if k != "2xx" and v]
    return ", ".join(parts) or "-"


def _progress(m: Measure) -> None:
    print(f"round {m.round + 1} {m.contender:<7} {m.rps:9.0f} req/s  mean {m.mean_ms:7.2f} ms  "
          f"max {m.max_ms:8.2f} ms  server {m.cpu_us:6.1f} µs/req  CPU0 {_pct(m.load_busy)}% "
          f"CPU1 {_pct(m.server_busy)}%  {m.succeeded}/{m.requests} succeeded, errors: "
          f"{_errors(m)}", flush=True)


def print_report(kept: dict[str, Kept], all_measures: list[Measure],
                 args: argparse.Namespace, layout: str) -> None:
    versions = sorted({m.tls for m in all_measures})
    print()
    print(f"HTTP/2 over {', '.join(versions)}: {' '.join(h2load_command(0, args)[:-1])} (h2load "
          f"{h2load_version()}), {args.body_size}-byte body; {layout}; {args.keep} of "
          f"{args.rounds} round(s)")
    print("req/s: measured; mean/max ms: h2load's time per request; server µs/req: CPU time "
          "of the server per request; req/CPU-s: 1 / that; busy: the client core (CPU 0) and "
          "the server's share of a core")
    header = (f"{'contender':<9} {'req/s':>9} {'mean ms':>8} {'max ms':>8} {'µs/req':>7} "
              f"{'req/CPU-s':>9}  {'busy %':>7}  {'succeeded':>9}  errors")
    print(header)
    print("-" * len(header))
    for name in CONTENDERS:
        k = kept.get(name)
        if not k:
            continue
        m = k.m
        note = "; client-bound" if m.client_bound else ""
        print(f"{name:<9} {m.rps:9.0f} {m.mean_ms:8.2f} {m.max_ms:8.2f} {k.cpu_us:7.1f} "
              f"{k.capacity:9.0f}  {_pct(m.load_busy)}/{_pct(m.server_share).strip():<3}  "
              f"{m.succeeded:9d}  {_errors(m)}{note}")
    ratios = ratio_rows(kept)
    if ratios:
        print()
        print("ratios: req/s (requests per server CPU-second)")
        for name, rate, capacity in ratios:
            print(f"  {name:<16} {rate:5.2f} ({capacity:.2f})")
    if args.rounds > 1:
        print()
        print("every round: req/s (server µs/req)")
        for name in CONTENDERS:
            ms = [m for m in all_measures if m.contender == name]
            if ms:
                print(f"  {name:<9} " + " ".join(f"{m.rps:8.0f} ({m.cpu_us:5.1f})" for m in ms))
    print()
    for line in verdicts(kept):
        print(line)


def draw_chart(kept: dict[str, Kept], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in CONTENDERS if n in kept]
    colors = {"direct": "#9c9c9c", "nginx": "#3b9c4a", "pysozu": "#3b75af"}
    panels: tuple[tuple[str, str, Callable[[Kept], float]], ...] = (
        ("requests per second (higher is better)", "requests/s", lambda k: k.rps),
        ("server CPU per request (lower is better)", "server CPU µs per request",
         lambda k: k.cpu_us),
        ("mean time per request (lower is better)", "ms (h2load's mean)", lambda k: k.m.mean_ms),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4.8))
    for ax, (what, ylabel, value_of) in zip(axes, panels, strict=True):
        vals = [value_of(kept[n]) for n in names]
        bars = ax.bar(names, vals, color=[colors[n] for n in names])
        for bar, v in zip(bars, vals, strict=True):
            text = f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.1f}" if v < 100 else f"{v:.0f}"
            ax.annotate(text, (bar.get_x() + bar.get_width() / 2, v), ha="center",
                        va="bottom", fontsize=8)
        ax.set_title(what, fontsize=9)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def run_one(name: str, rnd: int, args: argparse.Namespace, cert: hbs.Cert, backend: int,
            body: bytes, tmp: Path, load_cpu: int | None, server_cpu: int | None,
            measures: list[Measure]) -> None:
    """Start one contender, run h2load against it, stop it."""
    workdir = tmp / f"{name}.{rnd}"
    workdir.mkdir()
    server = STARTERS[name](workdir, backend, cert, server_cpu, body)
    try:
        with hbs.running(server):
            try:
                m, _output = measure(server, name, rnd, args, load_cpu, server_cpu)
            except (RuntimeError, ValueError) as e:
                logs = server_logs(server, workdir)
                state = "alive" if server.alive() else f"exited ({server.proc.returncode})"
                raise RuntimeError(f"{e}\n  {name} is {state}; its log:\n"
                                   + textwrap.indent(logs or "(empty)", "    ")) from None
            measures.append(m)
            _progress(m)
            if not server.alive():
                print(f"  {name} exited during the run:\n"
                      + textwrap.indent(server_logs(server, workdir), "    "))
    finally:
        logs = server_logs(server, workdir)
        if logs and name == "pysozu":
            print(f"  {name} logged (log level warning):\n"
                  + textwrap.indent(logs, "    "), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds of h2load's main duration (-D)")
    parser.add_argument("--warmup", type=float, default=1.0,
                        help="seconds of h2load's --warm-up-time (0: none)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every contender")
    parser.add_argument("--keep", choices=["best", "median"], default="best",
                        help="which round's figure to keep (default: best req/s)")
    parser.add_argument("--only", default=",".join(CONTENDERS),
                        help=f"comma-separated contenders among {','.join(CONTENDERS)}")
    parser.add_argument("--clients", type=int, default=10, help="h2load -c (connections)")
    parser.add_argument("--streams", type=int, default=10,
                        help="h2load -m (streams in flight per connection)")
    parser.add_argument("--body-size", type=int, default=100, help="response body bytes")
    parser.add_argument("--chart", default=str(ROOT / "docs" / "h2_bench.png"),
                        help="PNG to write ('' for none)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument("--no-install", action="store_true",
                        help="do not apt-get / pip install what is missing")
    parser.add_argument("--no-pin", action="store_true",
                        help="do not pin h2load+backend to CPU 0 and the server to CPU 1")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in only if c not in CONTENDERS]
    if unknown or not only:
        parser.error(f"unknown or missing contender: {', '.join(unknown) or '(empty list)'}")

    if not args.no_install:
        install()
    problems = missing_tools(only)
    if problems:
        why = " (--no-install was given)" if args.no_install else ""
        print(f"h2_bench: cannot run{why}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1

    pin = not args.no_pin and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2
    load_cpu, server_cpu = (0, 1) if pin else (None, None)
    layout = "h2load and backend on CPU 0, server under test on CPU 1" if pin else "not pinned"
    estimate = args.rounds * len(only) * (max(1, round(args.duration))
                                          + max(0, round(args.warmup)) + 2)
    print(f"{len(only)} contenders, {args.rounds} round(s) of {args.duration:g} s; {layout}; "
          f"about {estimate / 60:.1f} min", flush=True)

    body = (b"hello from the benchmark backend " * 10)[: max(1, args.body_size) - 1] + b"\n"
    measures: list[Measure] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="h2_bench.") as tmp:
        cert = hbs.make_certificate("ecdsa", Path(tmp))
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
                        run_one(name, rnd, args, cert, backend.port, body, Path(tmp),
                                load_cpu, server_cpu, measures)
                    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
                        skipped[name] = str(e)
                        print(f"skipping {name}: {e}", flush=True)

    for name, reason in skipped.items():
        print(f"\n{name} failed and was skipped:\n" + textwrap.indent(reason, "  "))
    kept = aggregate(measures, args.keep)
    if not kept:
        print("nothing was measured", file=sys.stderr)
        return 1
    print_report(kept, measures, args, layout)
    print(hb.pysozu_build())
    versions = ", ".join(sorted({m.tls for m in measures}))
    title = (f"HTTP/2 over {versions}, h2load -c{args.clients} -m{args.streams} -t1 "
             f"-D{max(1, round(args.duration))}, {args.body_size}-byte body; {args.keep} of "
             f"{args.rounds}; {os.cpu_count()} CPUs" + (", server pinned to 1 core" if pin else "")
             + f", Python {platform.python_version()}")
    shown = [f"{name} {rate:.2f} ({capacity:.2f})" for name, rate, capacity in ratio_rows(kept)]
    if shown:
        title += "\nreq/s ratios (per server CPU-second): " + ", ".join(shown)
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
            "h2load": h2load_version(), "skipped": skipped,
            "kept": [{**asdict(k.m), "kept_cpu_us": k.cpu_us, "capacity": k.capacity}
                     for k in kept.values()],
            "ratios": [{"name": n, "rps": r, "capacity": c} for n, r, c in ratio_rows(kept)],
            "verdicts": verdicts(kept),
            "rounds": [asdict(m) for m in measures],
        }, indent=2))
        print(f"json: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
