"""A worker process of ``pysozu start`` with ``worker_count >= 1``: one ``Worker`` driven by the
main process over the channel it inherited (``python -m pysozu worker``, not a user verb).

The main process owns the configuration and the listening sockets: they arrive over the
channel (SCM_RIGHTS, with their ACTIVATE_LISTENER request). A worker whose channel closes
(its main process is gone) stops softly: the clients it serves finish, no new one comes.
Interrupts from the terminal go to the whole process group; the main process decides how
workers stop, so a worker ignores SIGINT.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import socket
import sys

from .config import ServerConfig
from .worker import Worker, tune_gc_for_serving

log = logging.getLogger("pysozu.worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pysozu worker")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--id", type=int, required=True)
    parser.add_argument("--server-config", required=True, help="ServerConfig as JSON")
    args = parser.parse_args(argv)
    fields = json.loads(args.server_config)
    known = {f.name for f in dataclasses.fields(ServerConfig)}
    config = ServerConfig(**{k: v for k, v in fields.items() if k in known})
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO)
        if config.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR") else logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s worker {args.id} %(name)s: %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    worker = Worker(config, worker_id=args.id)
    channel = socket.socket(fileno=args.channel_fd)
    worker.add_channel(channel)
    server = worker.server
    # the listening sockets are shared with the other workers: take a few connections per
    # pass, so that the workers woken by the same burst each get a share
    server.accept_budget = 4

    def main_gone(_channel: object) -> None:
        if not server.shutting_down:
            log.warning("the main process went away: stopping softly")
            server.soft_stop()

    server.on_channel_closed = main_gone
    tune_gc_for_serving()
    try:
        worker.run()
    finally:
        worker.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
