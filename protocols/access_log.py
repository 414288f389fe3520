"""Access log: one line per request, written in batches once per loop pass.

A record is built from values the session already holds (times, addresses, counts) and is
only formatted when a logger is configured, so a proxy without an access log pays one
``if``. Lines are queued and written together by ``flush``, which the worker calls at the
end of every loop pass: one ``write`` per pass instead of one per request.

Two formats:

* ``ascii`` follows Sōzu's layout::

      <request_id> <cluster>/<backend> <client> -> <backend_addr> \
      <request_time>/<service_time> <bytes_in> <bytes_out> <status> <method> <authority><path> \
      [<tags>] <protocol> <message>

  with ``-`` for what is unknown and times in milliseconds;
* ``json`` writes one JSON object per line with the same fields (times in seconds as floats),
  for log pipelines.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import IO


@dataclass(slots=True)
class AccessRecord:
    """What happened to one request (Sōzu's ``RequestRecord``)."""

    request_id: str
    protocol: str
    client: str | None = None
    backend_address: str | None = None
    cluster_id: str | None = None
    backend_id: str | None = None
    method: str | None = None
    authority: str | None = None
    path: str | None = None
    status: int | None = None
    #: seconds from the first byte of the request to the last byte of the response
    request_time: float = 0.0
    #: seconds the backend took, from request sent to response head received
    service_time: float | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    user_agent: str | None = None
    tags: dict[str, str] | None = None
    message: str | None = None
    timestamp: float = field(default_factory=time.time)
    #: HTTPS: the connection's TLS version, cipher, SNI and ALPN protocol
    tls_version: str | None = None
    tls_cipher: str | None = None
    tls_sni: str | None = None
    tls_alpn: str | None = None
    #: the worker process that served it (``pysozu start`` with several workers)
    worker: int | None = None


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f}ms"


def format_ascii(record: AccessRecord) -> str:
    tags = ""
    if record.tags:
        tags = " [" + ", ".join(f"{k}={v}" for k, v in sorted(record.tags.items())) + "]"
    message = f" | {record.message}" if record.message else ""
    if record.tls_version is not None:
        message = (f" {record.tls_version} {record.tls_cipher or '-'} "
                   f"sni={record.tls_sni or '-'} alpn={record.tls_alpn or '-'}{message}")
    return (
        f"{record.request_id} {record.cluster_id or '-'}/{record.backend_id or '-'} "
        f"{record.client or '-'} -> {record.backend_address or '-'} "
        f"{_ms(record.request_time)}/{_ms(record.service_time)} "
        f"{record.bytes_in} {record.bytes_out} "
        f"{record.status if record.status is not None else '-'} {record.method or '-'} "
        f"{record.authority or '-'}{record.path or ''}{tags} {record.protocol}{message}"
        + (f" worker={record.worker}" if record.worker is not None else "")
    )


def format_json(record: AccessRecord) -> str:
    data = asdict(record)
    return json.dumps({k: v for k, v in data.items() if v is not None}, separators=(",", ":"))


class AccessLogger:
    """Queues formatted lines; ``flush`` writes them in one call."""

    def __init__(self, target: str = "stdout", fmt: str = "ascii") -> None:
        if fmt not in ("ascii", "json"):
            raise ValueError(f"unknown access log format {fmt!r} (expected 'ascii' or 'json')")
        self.format = format_ascii if fmt == "ascii" else format_json
        self.target = target
        self._owned = False
        self.stream: IO[str]
        if target == "stdout":
            self.stream = sys.stdout
        elif target == "stderr":
            self.stream = sys.stderr
        elif target.startswith("file://"):
            path = target[len("file://"):]
            if not path:
                raise ValueError("empty path in access log target 'file://'")
            self.stream = open(os.path.expanduser(path), "a", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            raise ValueError(
                f"unknown access log target {target!r} (expected stdout, stderr or file://PATH)"
            )
        self.lines: list[str] = []
        #: stamped on every record (several worker processes may share the file)
        self.worker_id: int | None = None

    def log(self, record: AccessRecord) -> None:
        if self.worker_id is not None:
            record.worker = self.worker_id
        self.lines.append(self.format(record))

    def flush(self) -> None:
        if not self.lines:
            return
        data = "\n".join(self.lines) + "\n"
        self.lines.clear()
        try:
            if self._owned:
                # one write(2) on an O_APPEND file: lines of several worker processes
                # sharing the file never interleave
                os.write(self.stream.fileno(), data.encode("utf-8"))
            else:
                self.stream.write(data)
                self.stream.flush()
        except (OSError, ValueError):
            pass  # a full disk or a closed stream must not take the proxy down

    def close(self) -> None:
        self.flush()
        if self._owned:
            self.stream.close()
