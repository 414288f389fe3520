"""Multi-worker scaling: HTTP keep-alive requests per second through ``pysozu start`` with one
worker process, then with N, on the same load, as a ratio.

    .venv/bin/python benchmarks/workers_bench.py [--workers N] [--duration 8] [--rounds 2]
        [--connections 100] [--threads T] [--json results.json] [--no-install]

The backend is ``http_bench.py``'s nginx (one worker process per CPU here, so that it is not
the bottleneck) answering 100 bytes; the load generator is ``wrk -t<T> -c<connections>``
(keep-alive). pysozu runs as an operator would run it: ``pysozu start -c <toml>`` with
``worker_count`` = 1, then N (default: the number of CPUs), no access log, log level
warning. Nothing is pinned: the kernel spreads the workers, wrk and the backend over the
cores, and the report states how many cores there are and how busy each process group was,
since on a machine with few cores wrk and the backend take cores the workers would need
(the ratio is then a floor of what the proxy can do, not a property of it).

Contenders take turns across rounds; each keeps its best round.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_bench as hb


def measure(server: hb.Server, *, threads: int, connections: int, duration: float
            ) -> tuple[float, float]:
    """(requests/s, cores the proxy's process group kept busy)."""
    hb.run_wrk(server.port, close=False, connections=connections, duration=1, cpu=None)
    before = hb.group_cpu(server.proc.pid)
    start = time.monotonic()
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s",
           f"http://127.0.0.1:{server.port}/"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=duration + 60)
    elapsed = time.monotonic() - start
    used = hb.group_cpu(server.proc.pid) - before
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}")
    match = re.search(r"^Requests/sec:\s+([\d.]+)", proc.stdout, re.M)
    if match is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{proc.stdout}")
    return float(match.group(1)), used / elapsed


def main(argv: list[str] | None = None) -> int:
    cpus = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=cpus, help="N (default: CPUs)")
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=max(1, cpus // 4))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--no-install", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_install:
        hb.install()
    for tool in ("wrk", "nginx"):
        missing = hb.why_missing(tool)
        if missing:
            print(f"cannot run: {missing}", file=sys.stderr)
            return 1
    counts = [1, args.workers] if args.workers > 1 else [1]
    best: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="pysozu-workers-") as tmp:
        workdir = Path(tmp)
        backend = hb.start_backend(workdir, b"x" * 100, None, max(1, cpus // 4))
        try:
            hb.wait_ready(backend)
            for rnd in range(args.rounds):
                for workers in counts:
                    server = hb.start_pysozu(workdir, backend.port, None, workers)
                    try:
                        hb.wait_ready(server)
                        rps, busy = measure(server, threads=args.threads,
                                            connections=args.connections,
                                            duration=args.duration)
                    finally:
                        server.stop()
                    print(f"round {rnd + 1}: {workers} worker(s): {rps:,.0f} req/s, "
                          f"pysozu busy {busy:.2f} cores", flush=True)
                    if workers not in best or rps > best[workers][0]:
                        best[workers] = (rps, busy)
        finally:
            backend.stop()
    print(f"\n{cpus} CPU cores on this machine; wrk -t{args.threads} -c{args.connections} "
          f"and the backend ({max(1, cpus // 4)} nginx worker(s)) share them with pysozu")
    for workers, (rps, busy) in sorted(best.items()):
        print(f"  {workers:3d} worker(s): {rps:10,.0f} req/s   pysozu busy {busy:.2f} cores")
    if len(best) == 2:
        ratio = best[args.workers][0] / best[1][0]
        print(f"ratio {args.workers} workers / 1 worker: {ratio:.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(
            {"cpus": cpus, "threads": args.threads, "connections": args.connections,
             "results": {str(w): {"rps": r, "busy_cores": b} for w, (r, b) in best.items()}},
            indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
