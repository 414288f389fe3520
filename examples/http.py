"""An HTTP reverse proxy configured in-process through the channel (Sōzu's examples/http.rs).

    python examples/http.py --listen 127.0.0.1:8080 \
        --backend 127.0.0.1:9001 --backend 127.0.0.1:9002 [--hostname example.com]

The worker runs in a thread; this script sends it the requests any control plane would:
an HTTP listener, a cluster with its backends, a frontend routing a hostname (default: any
host) to the cluster. Every answer carries the id of its request. Pushed events
(BACKEND_DOWN, NO_AVAILABLE_BACKENDS...) are printed as they come. Ctrl-C soft-stops the
worker: open requests finish first.
"""

from __future__ import annotations

import argparse
import json
import sys

from pysozu.reactor.channel import Channel, ChannelError
from pysozu.worker import Worker


def requests(args: argparse.Namespace) -> list[dict[str, object]]:
    frontend: dict[str, object] = {
        "type": "ADD_HTTP_FRONTEND", "cluster_id": "example", "address": args.listen,
        "hostname": args.hostname or "*",
    }
    if not args.hostname:
        frontend["position"] = "PRE"  # "*" in PRE matches any host (TREE: single labels)
    return [
        {"type": "ADD_HTTP_LISTENER", "address": args.listen},
        {"type": "ADD_CLUSTER", "cluster_id": "example", "load_balancing": args.load_balancing,
         "sticky_session": args.sticky},
        frontend,
        *(
            {"type": "ADD_BACKEND", "cluster_id": "example", "backend_id": f"example-{n}",
             "address": address}
            for n, address in enumerate(args.backend)
        ),
        {"type": "ACTIVATE_LISTENER", "address": args.listen, "proxy": "HTTP"},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8080")
    parser.add_argument("--backend", action="append", default=[], help="repeatable")
    parser.add_argument("--hostname", default=None, help="route only this host")
    parser.add_argument("--load-balancing", default="ROUND_ROBIN")
    parser.add_argument("--sticky", action="store_true", help="sticky sessions (cookie)")
    args = parser.parse_args()
    if not args.backend:
        parser.error("give at least one --backend host:port")

    worker = Worker()
    channel = Channel(worker.channel_pair())
    worker.start_thread()
    for request in requests(args):
        answer = channel.request(request)
        print(f"{request['type']:<20} {answer['status']} {answer['message']}")
        if answer["status"] != "OK":
            worker.stop_thread()
            return 1
    print(f"HTTP proxy on {args.listen} -> {', '.join(args.backend)}; Ctrl-C to stop",
          flush=True)
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
