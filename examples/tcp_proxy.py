"""A TCP proxy driven in-process through the command channel, as Sōzu's examples do.

    python examples/tcp_proxy.py --listen 127.0.0.1:9000 --backend 127.0.0.1:9001 \
        --backend 127.0.0.1:9002

The worker runs in a thread; this script holds the other end of a socketpair and sends it
requests like any control plane would: every request carries an id, and the answer with
that id says OK or FAILURE. Events (BACKEND_DOWN, NO_AVAILABLE_BACKENDS...) arrive on the
same channel with id EVENT and are printed as they come. Ctrl-C soft-stops the worker: it
stops accepting, lets open connections finish, then answers OK.
"""

from __future__ import annotations

import argparse
import json
import sys

from pysozu.reactor.channel import Channel, ChannelError
from pysozu.worker import Worker


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:9000")
    parser.add_argument("--backend", action="append", default=[], help="repeatable")
    parser.add_argument("--load-balancing", default="ROUND_ROBIN")
    args = parser.parse_args()
    if not args.backend:
        parser.error("give at least one --backend host:port")

    worker = Worker()
    channel = Channel(worker.channel_pair())
    worker.start_thread()

    requests = [
        {"type": "ADD_TCP_LISTENER", "address": args.listen},
        {"type": "ADD_CLUSTER", "cluster_id": "example", "load_balancing": args.load_balancing},
        {"type": "ADD_TCP_FRONTEND", "cluster_id": "example", "address": args.listen},
        *(
            {"type": "ADD_BACKEND", "cluster_id": "example", "backend_id": f"example-{n}",
             "address": address}
            for n, address in enumerate(args.backend)
        ),
        {"type": "ACTIVATE_LISTENER", "address": args.listen, "proxy": "TCP"},
    ]
    for request in requests:
        answer = channel.request(request)
        print(f"{request['type']:<20} {answer['status']} {answer['message']}")
        if answer["status"] != "OK":
            worker.stop_thread()
            return 1
    print(f"proxying {args.listen} -> {', '.join(args.backend)}; Ctrl-C to stop", flush=True)
    try:
        while True:
            try:
                event = channel.read_event(timeout=3600)
            except ChannelError:
                continue
            print("event:", json.dumps(event["content"]), flush=True)
    except KeyboardInterrupt:
        stop_id = channel.send({"type": "SOFT_STOP"})
        print(channel.read_response(stop_id)["message"], flush=True)
        print(channel.read_response(stop_id, timeout=3600)["message"], flush=True)
    worker.stop_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
