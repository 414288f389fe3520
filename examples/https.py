"""An HTTPS reverse proxy configured in-process through the channel (Sōzu's examples/https.rs).

    python examples/https.py --listen 127.0.0.1:8443 --backend 127.0.0.1:9001 \
        [--certificate cert.pem --key key.pem [--chain chain.pem]] [--hostname example.com]

The worker runs in a thread; this script sends it the requests any control plane would: an
HTTPS listener, a certificate, a cluster with its backends, a frontend routing a hostname
(default: any host) to the cluster. Without ``--certificate`` it makes a self-signed
certificate for the hostname (or ``localhost``) in memory and prints its fingerprint, so
``curl -k https://localhost:8443/`` works at once. Ctrl-C soft-stops the worker.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from pysozu.reactor.channel import Channel, ChannelError
from pysozu.worker import Worker


def self_signed(name: str) -> tuple[str, str]:
    """A throwaway certificate for ``name``, valid 30 days: (certificate PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def requests(args: argparse.Namespace, certificate: str, key: str,
             chain: list[str]) -> list[dict[str, object]]:
    frontend: dict[str, object] = {
        "type": "ADD_HTTPS_FRONTEND", "cluster_id": "example", "address": args.listen,
        "hostname": args.hostname or "*",
    }
    if not args.hostname:
        frontend["position"] = "PRE"  # "*" in PRE matches any host (TREE: single labels)
    return [
        # the certificate is also the listener's default: any SNI gets it (a demo proxy
        # serving one name); strict binding would refuse hosts it does not name
        {"type": "ADD_HTTPS_LISTENER", "address": args.listen, "certificate": certificate,
         "key": key, "certificate_chain": chain, "strict_sni_binding": bool(args.hostname)},
        {"type": "ADD_CLUSTER", "cluster_id": "example", "load_balancing": args.load_balancing},
        frontend,
        *(
            {"type": "ADD_BACKEND", "cluster_id": "example", "backend_id": f"example-{n}",
             "address": address}
            for n, address in enumerate(args.backend)
        ),
        {"type": "ACTIVATE_LISTENER", "address": args.listen, "proxy": "HTTPS"},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:8443")
    parser.add_argument("--backend", action="append", default=[], help="repeatable")
    parser.add_argument("--hostname", default=None, help="route only this host")
    parser.add_argument("--certificate", type=Path, help="PEM certificate file")
    parser.add_argument("--key", type=Path, help="PEM private key file")
    parser.add_argument("--chain", type=Path, action="append", default=[],
                        help="PEM intermediate certificate file (repeatable)")
    parser.add_argument("--load-balancing", default="ROUND_ROBIN")
    args = parser.parse_args()
    if not args.backend:
        parser.error("give at least one --backend host:port")
    if (args.certificate is None) != (args.key is None):
        parser.error("--certificate and --key go together")
    if args.certificate is not None:
        try:
            certificate, key = args.certificate.read_text(), args.key.read_text()
            chain = [path.read_text() for path in args.chain]
        except OSError as e:
            parser.error(f"cannot read {e.filename}: {e.strerror}")
    else:
        certificate, key = self_signed(args.hostname or "localhost")
        chain = []

    worker = Worker()
    channel = Channel(worker.channel_pair())
    worker.start_thread()
    for request in requests(args, certificate, key, chain):
        answer = channel.request(request)
        print(f"{request['type']:<22} {answer['status']} {answer['message']}")
        if answer["status"] != "OK":
            worker.stop_thread()
            return 1
    listed = channel.request({"type": "QUERY_CERTIFICATES_FROM_WORKERS"})
    for entry in listed["content"]["certificates"].get(args.listen, []):
        print(f"certificate {entry['fingerprint']} for {', '.join(entry['names'])}")
    print(f"HTTPS proxy on {args.listen} -> {', '.join(args.backend)}; Ctrl-C to stop",
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
