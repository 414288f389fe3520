"""HTTP/1.1 head parsing: pysozu (native and pure) against httptools (llhttp) and h11.

    .venv/bin/pip install httptools h11      # or: pip install -e '.[bench]'
    .venv/bin/python benchmarks/parser_bench.py [--seconds 2]

One corpus of realistic requests (browser-like, 8 to 20 headers; some POSTs whose Content-Length
or chunked framing the parsers must read from the head) is parsed by each parser in turn,
in the same process and run. The figure is heads per second; the ratios are what the targets
are about (native at or above httptools, pure at least 3x h11). pysozu keeps headers as spans
into the buffer; the others hand Python each name and value, which is part of their cost
and the reason pysozu does not.

On a shared or virtual machine the speed of the CPU drifts by tens of percent within seconds,
so a parser measured in one block can land in a slow stretch that the next one misses. The
parsers therefore take turns: ``--rounds`` rounds of ``--seconds / --rounds`` each, and each
parser's best round is its figure (as ``timeit`` takes the best of its repeats). ``--rounds
1`` is one block per parser.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

UA = (
    b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    b"Chrome/131.0.0.0 Safari/537.36"
)
ACCEPT = b"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
OPTIONAL = [
    (b"Accept-Language", b"en-GB,en;q=0.9,fr;q=0.8"),
    (b"Accept-Encoding", b"gzip, deflate, br, zstd"),
    (b"Cache-Control", b"max-age=0"),
    (b"Sec-Fetch-Dest", b"document"),
    (b"Sec-Fetch-Mode", b"navigate"),
    (b"Sec-Fetch-Site", b"same-origin"),
    (b"Sec-Fetch-User", b"?1"),
    (b"Sec-CH-UA", b'"Chromium";v="131", "Not_A Brand";v="24"'),
    (b"Sec-CH-UA-Mobile", b"?0"),
    (b"Sec-CH-UA-Platform", b'"Linux"'),
    (b"Upgrade-Insecure-Requests", b"1"),
    (b"Referer", b"https://www.example.com/catalog/items?page=2&sort=price"),
    (b"Cookie", b"session=8f2a9c1e4b7d; theme=dark; _ga=GA1.2.1234567890.1700000000"),
    (b"DNT", b"1"),
    (b"Priority", b"u=0, i"),
    (b"X-Requested-With", b"XMLHttpRequest"),
]


def make_corpus(n: int, seed: int = 7) -> list[bytes]:
    """``n`` request heads with 8 to 20 headers; a quarter are POSTs with a body framing."""
    rng = random.Random(seed)
    corpus = []
    for i in range(n):
        method, body = b"GET", []
        if i % 4 == 3:
            method = b"POST"
            body = [(b"Content-Type", b"application/json")]
            body.append((b"Transfer-Encoding", b"chunked") if i % 8 == 7
                        else (b"Content-Length", b"%d" % rng.randint(10, 5000)))
        base = [(b"Host", b"www.example.com"), (b"User-Agent", UA), (b"Accept", ACCEPT),
                (b"Connection", b"keep-alive")]
        total = rng.randint(8, 20)
        extra = rng.sample(OPTIONAL, max(0, total - len(base) - len(body)))
        headers = base + body + extra
        target = b"/catalog/items/%d?ref=home&utm_source=newsletter" % rng.randint(1, 99999)
        head = b"%s %s HTTP/1.1\r\n" % (method, target)
        head += b"".join(b"%s: %s\r\n" % h for h in headers) + b"\r\n"
        corpus.append(head)
    return corpus


def bench(parse: Callable[[bytes], object], corpus: list[bytes], seconds: float) -> float:
    """Heads per second: whole passes over the corpus until ``seconds`` have passed."""
    for head in corpus[:50]:
        parse(head)  # warm up
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for head in corpus:
            parse(head)
        count += len(corpus)
    return count / (time.perf_counter() - start)


def pysozu_parser(backend: str) -> Callable[[bytes], object] | None:
    """pysozu's parse_request_head with ``backend`` (which ``select`` sets again before each
    of its rounds: the backend is a global of the parser)."""
    from pysozu import parser

    try:
        parser.set_backend(backend)
    except (RuntimeError, ValueError):
        return None
    parse = parser.parse_request_head

    def run(head: bytes) -> object:
        result = parse(head)
        if result is None:
            raise RuntimeError("incomplete head in the corpus")
        return result

    run.backend = backend  # type: ignore[attr-defined]
    return run


def select(parse: Callable[[bytes], object]) -> None:
    """Make ``parse`` ready to run (pysozu's backend)."""
    backend = getattr(parse, "backend", None)
    if backend is not None:
        from pysozu import parser

        parser.set_backend(backend)


def httptools_parser() -> Callable[[bytes], object] | None:
    try:
        import httptools
    except ImportError:
        return None

    class Protocol:
        __slots__ = ("done", "headers", "url")

        def __init__(self) -> None:
            self.headers: list[tuple[bytes, bytes]] = []
            self.done = False

        def on_url(self, url: bytes) -> None:
            self.url = url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name, value))

        def on_headers_complete(self) -> None:
            self.done = True

    def run(head: bytes) -> object:
        protocol = Protocol()
        parser = httptools.HttpRequestParser(protocol)
        parser.feed_data(head)
        if not protocol.done:
            raise RuntimeError("httptools did not finish the head")
        return protocol

    return run


def h11_parser() -> Callable[[bytes], object] | None:
    try:
        import h11
    except ImportError:
        return None

    def run(head: bytes) -> object:
        conn = h11.Connection(h11.SERVER)
        conn.receive_data(head)
        event = conn.next_event()
        if not isinstance(event, h11.Request):
            raise RuntimeError(f"h11 gave {event!r}")
        return event

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per parser")
    parser.add_argument("--rounds", type=int, default=5,
                        help="turns each parser takes (its best one counts; 1: one block)")
    parser.add_argument("--corpus", type=int, default=500, help="distinct heads")
    args = parser.parse_args(argv)
    corpus = make_corpus(args.corpus)
    parsers: dict[str, Callable[[bytes], object]] = {}
    for name, make in (
        ("pysozu-native", lambda: pysozu_parser("native")),
        ("pysozu-pure", lambda: pysozu_parser("python")),
        ("httptools", httptools_parser),
        ("h11", h11_parser),
    ):
        parse = make()
        if parse is None:
            print(f"{name}: not available, skipped", file=sys.stderr)
            continue
        parsers[name] = parse
    rounds = max(args.rounds, 1)
    rows: dict[str, float] = dict.fromkeys(parsers, 0.0)
    for _ in range(rounds):
        for name, parse in parsers.items():
            select(parse)
            rows[name] = max(rows[name], bench(parse, corpus, args.seconds / rounds))
    sizes = sorted(h.count(b"\r\n") - 2 for h in corpus)
    print(f"{len(corpus)} request heads, {sizes[0]}-{sizes[-1]} headers, "
          f"mean {sum(map(len, corpus)) / len(corpus):.0f} bytes; Python {sys.version.split()[0]}; "
          f"best of {rounds} round{'s' if rounds > 1 else ''} of {args.seconds / rounds:.2f} s")
    print(f"{'parser':<15} {'heads/s':>10} {'µs/head':>8} {'vs httptools':>13} {'vs h11':>8}")
    for name, rate in rows.items():
        vs_ht = f"{rate / rows['httptools']:.2f}" if "httptools" in rows else "-"
        vs_h11 = f"{rate / rows['h11']:.2f}" if "h11" in rows else "-"
        print(f"{name:<15} {rate:>10.0f} {1e6 / rate:>8.2f} {vs_ht:>13} {vs_h11:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
