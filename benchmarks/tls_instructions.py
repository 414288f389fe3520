"""Machine instructions per TLS handshake, pysozu against nginx, counted by valgrind.

    .venv/bin/python benchmarks/tls_instructions.py [--tls 1.2] [--mode reuse] [--cert ecdsa]

Why: ``https_bench.py`` judges handshakes on server CPU time per handshake, and on the
shared 2-core machine that figure moves by a third between runs, for nginx as much as for
pysozu: a 10 % change in pysozu hides in it. The number of instructions a server runs per
handshake does not move, and it tracks CPU time closely when the work is the same kind
(nginx's ratio of instructions matched its ratio of CPU time within a few per cent on
this machine). So this tells at once whether a change made a handshake cheaper, and how
far the issue 5 target (0.7x nginx) is, in the same terms.

How: each server runs alone under ``valgrind --tool=callgrind`` (nginx: one process,
``master_process off``; pysozu: one worker in one process, set up with the channel's
requests, as in ``https_bench.py``), both serving the same certificate made at run time.
``tls_hammer`` (the handshake client of ``https_bench.py``, built here) makes handshakes
for a short and for a long run, each against a fresh server; the server's instruction
count at exit, long minus short, divided by the handshakes in between, is the count per
handshake: start-up and shut-down cancel out. Instructions are split by the object that
ran them (OpenSSL, libc, the Python interpreter, nginx) with ``callgrind_annotate``.

It needs valgrind, nginx, a C compiler and libssl-dev (``apt-get install valgrind nginx gcc
libssl-dev``; installed when missing unless ``--no-install``). Under valgrind a server runs
about fifty times slower, so a run takes a minute or two.

Which pysozu: its compiled build (``pysozu.compiled``), which the install step makes when
it is missing or stale; ``PYSOZU_COMPILED=0`` measures the Python sources instead. The
report says which ran.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb
import https_bench as sb

#: the target of issue 5, in instructions: pysozu's per handshake at most nginx's / 0.7
TARGET = 0.7
#: object file name fragments -> the group their instructions are counted in
GROUPS = (("libcrypto", "OpenSSL"), ("libssl", "OpenSSL"), ("_rust.abi3", "OpenSSL"),
          ("libpython", "Python"), ("_cffi_backend", "Python"), ("cpython-", "Python"),
          ("libc.so", "libc"), ("nginx", "nginx"))


@dataclass
class Count:
    handshakes: int
    total: int
    groups: Counter[str]


def valgrind(out: Path) -> list[str]:
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]


def instruction_groups(profile: Path) -> tuple[int, Counter[str]]:
    """(total, instructions per group) of one callgrind profile."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100",
                           str(profile)], capture_output=True, text=True, check=True).stdout
    total = 0
    groups: Counter[str] = Counter()
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+\S.*\[(.*)\]\s*$", line)
        if m is None:
            summary = re.match(r"\s*([\d,]+) \([^)]*\)\s+PROGRAM TOTALS", line)
            if summary:
                total = int(summary.group(1).replace(",", ""))
            continue
        obj = m.group(2).rsplit("/", 1)[-1]
        group = next((g for frag, g in GROUPS if frag in obj), "other")
        groups[group] += int(m.group(1).replace(",", ""))
    return total, groups


def start_server(name: str, workdir: Path, cert: sb.Cert, backend: int,
                 profile: Path) -> hb.Server:
    if name == "nginx":
        port = hb.free_port()
        conf = hb._nginx_common(workdir) + "master_process off;\nworker_processes 1;\n" + \
            "events { worker_connections 1024; }\nhttp {\n" + \
            hb._nginx_http_common(workdir) + \
            f"server {{\nlisten 127.0.0.1:{port} ssl;\n{sb._nginx_tls(cert)}" + \
            'location / { default_type text/plain; return 200 "ok"; }\n}\n}\n'
        path = workdir / "nginx.conf"
        path.write_text(conf)
        cmd = [*valgrind(profile), "nginx", "-e", str(workdir / "error.log"), "-p",
               str(workdir), "-c", str(path)]
        return hb.start(name, cmd, port, workdir)
    port = hb.free_port()
    launcher = workdir / "pysozu_https.py"
    launcher.write_text(sb.PYSOZU_LAUNCHER)
    requests = workdir / "requests.json"
    requests.write_text(json.dumps(sb.pysozu_requests(f"127.0.0.1:{port}", backend, cert)))
    env = {**os.environ, "PYTHONPATH": str(sb.ROOT)}
    return hb.start(name, [*valgrind(profile), sys.executable, str(launcher), str(requests)],
                    port, workdir, env)


def run_once(name: str, workdir: Path, cert: sb.Cert, backend: int, hammer: Path,
             seconds: float, args: argparse.Namespace) -> Count:
    profile = workdir / f"{name}.{seconds:g}.callgrind"
    server = start_server(name, workdir, cert, backend, profile)
    try:
        sb.wait_ready_tls(server, timeout=180)
        fields = sb.run_hammer(hammer, server, mode=args.mode, tls=args.tls, seconds=seconds,
                               concurrency=args.concurrency, cpu=None)
    finally:
        server.stop()
    if args.mode == "reuse" and fields["resumed"] != fields["handshakes"]:
        raise RuntimeError(f"{name}: only {fields['resumed']} of {fields['handshakes']} "
                           "handshakes were resumed")
    for _ in range(100):  # callgrind writes the profile as the process exits
        if profile.exists() and profile.stat().st_size:
            break
        time.sleep(0.1)
    total, groups = instruction_groups(profile)
    return Count(int(fields["handshakes"]), total, groups)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tls", default="1.2", choices=sb.TLS_VERSIONS)
    parser.add_argument("--mode", default="reuse", choices=("reuse", "new"),
                        help="resumed (reuse) or full (new) handshakes")
    parser.add_argument("--cert", default="ecdsa", choices=tuple(sb.CERTS))
    parser.add_argument("--short", type=float, default=3.0, help="seconds of the short run")
    parser.add_argument("--long", type=float, default=13.0, help="seconds of the long run")
    parser.add_argument("--concurrency", type=int, default=4, help="handshakes in flight")
    parser.add_argument("--only", default="nginx,pysozu")
    parser.add_argument("--profiles", default="",
                        help="copy the callgrind profiles here (for callgrind_annotate)")
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args(argv)

    if not args.no_install:
        hb.install_missing({"valgrind": "valgrind", "nginx": "nginx", "cc": "gcc"}, {},
                           () if sb.OPENSSL_HEADER.exists() else ("libssl-dev",))
        hb.ensure_compiled()
    print(hb.pysozu_build())
    missing = [t for t in ("valgrind", "callgrind_annotate", "nginx", "cc")
               if shutil.which(t) is None]
    if missing:
        print("missing: " + ", ".join(missing) + " (apt-get install valgrind nginx gcc "
              "libssl-dev)", file=sys.stderr)
        return 2
    names = [n for n in args.only.split(",") if n]
    results: dict[str, tuple[float, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="pysozu-tlsinstr-") as tmp:
        workdir = Path(tmp)
        cert = sb.make_certificate(args.cert, workdir)
        hammer = sb.build_hammer(workdir)
        backend = hb.start_backend(workdir, b"ok", None)
        try:
            hb.wait_ready(backend)
            for name in names:
                short = run_once(name, workdir, cert, backend.port, hammer, args.short, args)
                long = run_once(name, workdir, cert, backend.port, hammer, args.long, args)
                n = long.handshakes - short.handshakes
                if n <= 0:
                    raise RuntimeError(f"{name}: the long run made no more handshakes")
                per = (long.total - short.total) / n
                groups = {g: (long.groups[g] - short.groups[g]) / n
                          for g in sorted(set(long.groups) | set(short.groups))}
                results[name] = (per, groups)
                detail = ", ".join(f"{g} {v / 1000:.0f}k" for g, v in
                                   sorted(groups.items(), key=lambda kv: -kv[1]) if v > 500)
                print(f"{name:7} {per / 1000:8.0f}k instructions per handshake ({n} "
                      f"handshakes): {detail}", flush=True)
            if args.profiles:
                keep = Path(args.profiles)
                keep.mkdir(parents=True, exist_ok=True)
                for profile in workdir.glob("*.callgrind"):
                    shutil.copy(profile, keep / profile.name)
        finally:
            backend.stop()
    label = f"{'resumed' if args.mode == 'reuse' else 'full'} TLS {args.tls} handshake, " \
            f"{sb.CERTS[args.cert]}"
    if "nginx" in results and "pysozu" in results:
        ratio = results["nginx"][0] / results["pysozu"][0]
        verdict = "met" if ratio >= TARGET else "NOT met"
        print(f"{label}: nginx / pysozu instructions = {ratio:.2f} (the handshakes per "
              f"CPU-second ratio they predict); target {TARGET}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
