"""Per-request rules decided before a request goes to a backend: basic auth, redirects, and
the per-(cluster, client IP) connection limit.

Pure helpers with no sockets, so the HTTP state stays a dispatcher and each rule is tested
on its own. The rules are Sōzu's (``lib/src/protocol/mux/router.rs``, ``auth.rs``):

* **Basic auth** (frontend ``required_auth``): the cluster's ``authorized_hashes`` hold
  ``user:hex(sha256(password))``; the request's ``Authorization: Basic`` credentials must
  match one of them. The comparison is constant-time (``hmac.compare_digest``) so timing
  does not leak how much of a hash matched. Failure answers 401 with
  ``WWW-Authenticate: Basic realm="<cluster www_authenticate or the default>"``.
* **Redirects**: a frontend's ``redirect`` policy answers instead of proxying
  (PERMANENT 301, FOUND 302, PERMANENT_REDIRECT 308, UNAUTHORIZED 401), and a cluster's
  ``https_redirect`` answers 301 to the https URL on a cleartext listener. The location is
  ``scheme://host[:port]path``; ``redirect_scheme`` picks the scheme (USE_SAME, USE_HTTP,
  USE_HTTPS) and the default port of the scheme is left out.
* **Connection limit per client IP**: each (cluster, IP) pair counts the client
  connections routed to the cluster; over the limit (the cluster's own, else the global
  ``SET_MAX_CONNECTIONS_PER_IP``; 0 means unlimited) the request gets 429 with
  ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

DEFAULT_REALM = "pysozu"
REDIRECT_STATUS = {"PERMANENT": 301, "FOUND": 302, "PERMANENT_REDIRECT": 308}


def check_basic_auth(authorization: bytes | None, authorized_hashes: list[str]) -> bool:
    """Whether ``Authorization: Basic ...`` names a user and password listed in
    ``authorized_hashes`` (``user:hex(sha256(password))``)."""
    if not authorization or not authorized_hashes:
        return False
    scheme, _, encoded = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    user, sep, password = decoded.partition(b":")
    if not sep:
        return False
    candidate = user + b":" + hashlib.sha256(password).hexdigest().encode()
    ok = False
    for entry in authorized_hashes:
        # compare every entry, whatever matched before: the time does not depend on which
        ok |= hmac.compare_digest(candidate, _normalise_entry(entry))
    return ok


def _normalise_entry(entry: str) -> bytes:
    """``user:HEX`` with the hex digest lowercased (configurations write either case)."""
    user, _, digest = entry.strip().partition(":")
    return user.encode() + b":" + digest.lower().encode()


def www_authenticate(realm: str | None) -> str:
    return f'Basic realm="{(realm or DEFAULT_REALM).replace(chr(34), "")}"'


@dataclass(frozen=True, slots=True)
class Hsts:
    """Sōzu's ``HstsConfig``: the ``Strict-Transport-Security`` line of HTTPS answers.

    ``line`` is empty when disabled (a frontend turning off its listener's HSTS). By default
    a backend's own header wins; ``force_replace`` drops it for ours (RFC 6797 §6.1 allows
    one header only).
    """

    line: bytes
    force_replace: bool = False

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Hsts:
        if not fields.get("enabled"):
            return cls(b"")
        value = f"max-age={fields.get('max_age', 31536000)}"
        if fields.get("include_subdomains"):
            value += "; includeSubDomains"
        if fields.get("preload"):
            value += "; preload"
        return cls(f"Strict-Transport-Security: {value}\r\n".encode(),
                   bool(fields.get("force_replace_backend")))


def redirect_location(
    scheme_policy: str, listener_scheme: str, host: str, port: int | None, path: str,
    https_port: int | None = None, forced_port: int | None = None,
) -> str:
    """The Location of a redirect: ``scheme://host[:port]path``.

    ``forced_port`` (a frontend's ``rewrite_port``) wins over every other port; otherwise a
    redirect from http to https takes ``https_port`` and a scheme change drops the
    listener's port.
    """
    if scheme_policy == "USE_HTTPS":
        scheme = "https"
    elif scheme_policy == "USE_HTTP":
        scheme = "http"
    else:
        scheme = listener_scheme
    if forced_port is not None:
        port = forced_port
    elif scheme == "https" and https_port is not None and listener_scheme != "https":
        port = https_port  # the HTTPS listener's port, for a client coming from http
    elif scheme != listener_scheme:
        port = None  # the listener's port means nothing for the other scheme
    default = 443 if scheme == "https" else 80
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != default:
        authority += f":{port}"
    return f"{scheme}://{authority}{path or '/'}"


class IpLimiter:
    """Client connections per (cluster, IP), against a global limit and cluster overrides."""

    def __init__(self) -> None:
        self.global_limit = 0
        self.cluster_limits: dict[str, int] = {}
        self.counts: defaultdict[tuple[str, str], int] = defaultdict(int)

    def limit_for(self, cluster_id: str) -> int:
        return self.cluster_limits.get(cluster_id) or self.global_limit

    def acquire(self, cluster_id: str, ip: str) -> bool:
        """Count one more connection of ``ip`` to ``cluster_id``; False if over the limit
        (nothing is counted then)."""
        limit = self.limit_for(cluster_id)
        key = (cluster_id, ip)
        if limit and self.counts[key] >= limit:
            if not self.counts[key]:
                del self.counts[key]
            return False
        self.counts[key] += 1
        return True

    def release(self, cluster_id: str, ip: str) -> None:
        key = (cluster_id, ip)
        count = self.counts.get(key, 0) - 1
        if count > 0:
            self.counts[key] = count
        else:
            self.counts.pop(key, None)
