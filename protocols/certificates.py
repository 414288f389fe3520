"""TLS certificates of a listener: parsed and checked once, then found by SNI at handshake.

The counterpart of Sōzu's ``lib/src/tls.rs`` (``CertificateResolver``) and
``command/src/certificate.rs`` (parsing, fingerprints, names). Pure: no sockets; pyOpenSSL
``SSL.Context`` objects are made by a factory the caller gives, and cached here.

Theory of operation
-------------------
:func:`parse_certificate` turns Sōzu's ``CertificateAndKey`` (PEM certificate, PEM chain,
PEM key, optional ``names``) into a :class:`Certificate`, refusing with a
:class:`CertificateError` (a ``ValueError`` whose message says what is wrong) a PEM that does
not parse, a key that does not match the certificate, or a certificate with no name. What is
kept:

* ``fingerprint``: hex SHA-256 of the certificate's DER (Sōzu's ``Fingerprint``);
* ``names``: the ``names`` given, else the certificate's DNS subject alternative names, else
  its common name; lowercased, IDNA-encoded, without a trailing dot;
* ``not_after``: the end of validity, which picks among several certificates for a name.

:class:`CertificateResolver` indexes certificates by fingerprint and by name. A name is exact
(``www.example.com``) or a wildcard (``*.example.com``, standing for exactly one leftmost
label, RFC 6125 §6.4.3). :meth:`CertificateResolver.resolve` looks an SNI up:

1. the certificates whose exact name is the SNI;
2. else those whose wildcard covers it (``a.example.com`` → ``*.example.com``);
3. else the listener's default certificate (:attr:`CertificateResolver.default`), if any.

Among several certificates for the same name, the one valid the longest (latest
``not_after``; then the one added last) is served, so adding a renewed certificate before
removing the old one switches new handshakes at once. The lookups are two dictionary probes
(the exact table, and the wildcard table keyed by the SNI without its first label): the cost
does not grow with the number of certificates.

Changes (:meth:`add`, :meth:`replace`, :meth:`remove`) apply to the next lookup; nothing held
by an established connection is touched (its ``SSL.Connection`` keeps its own context).
:meth:`context` builds one ``SSL.Context`` per certificate on first use, with the factory the
listener set, and drops it with the certificate.
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import (
    dsa,
    ec,
    ed448,
    ed25519,
    rsa,
)
from cryptography.x509.oid import NameOID

__all__ = [
    "Certificate",
    "CertificateError",
    "CertificateResolver",
    "covers",
    "names_cover",
    "normalise_name",
    "parse_certificate",
    "split_certificate_chain",
]


class CertificateError(ValueError):
    """A certificate, chain or key that cannot be served, with the reason."""

    @property
    def part(self) -> str:
        """Which part of a ``CertificateAndKey`` is at fault: ``key``, ``certificate_chain``
        or ``certificate`` (the messages of :func:`parse_certificate` start with it), so a
        caller can name the file or key it came from."""
        head = str(self).split(":", 1)[0].split("[", 1)[0]
        return head if head in ("key", "certificate_chain") else "certificate"


@dataclass(frozen=True, slots=True, eq=False)
class Certificate:
    """One certificate with its key, ready to be served (see the module docstring)."""

    fingerprint: str
    names: tuple[str, ...]
    not_after: datetime.datetime
    certificate_pem: str
    chain_pem: tuple[str, ...] = ()
    key_pem: str = field(default="", repr=False)
    #: names and validity as the certificate says, for queries
    subject_names: tuple[str, ...] = ()


def normalise_name(name: str) -> str:
    """A server name as certificates and SNI are compared: lowercase ASCII (IDNA), no
    trailing dot. :class:`CertificateError` for an empty name, an empty label, or a ``*``
    anywhere but as the whole leftmost label."""
    text = name.strip().rstrip(".").lower()
    if not text:
        raise CertificateError(f"invalid server name {name!r}: empty")
    labels = text.split(".")
    out: list[str] = []
    for index, label in enumerate(labels):
        if not label:
            raise CertificateError(f"invalid server name {name!r}: empty label")
        if "*" in label:
            if label != "*" or index:
                raise CertificateError(
                    f"invalid server name {name!r}: '*' must be the whole leftmost label"
                )
            out.append(label)
            continue
        if not label.isascii():
            try:
                label = label.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise CertificateError(f"invalid server name {name!r}: {exc}") from None
        out.append(label)
    if out[0] == "*" and len(out) < 3:
        raise CertificateError(
            f"invalid server name {name!r}: a wildcard needs at least two labels after it"
        )
    return ".".join(out)


def _load_certificate(pem: str, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{what}: not a PEM certificate ({exc})") from None


def _public_bytes(key: Any) -> bytes:
    return bytes(key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ))


def _certificate_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    if not names:
        names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return names


def parse_certificate(
    certificate: str, key: str, chain: Iterable[str] = (), names: Iterable[str] = ()
) -> Certificate:
    """Check and index a certificate (Sōzu's ``CertificateAndKey``); see the module doc."""
    cert = _load_certificate(certificate, "certificate")
    chain_pems = tuple(chain)
    for index, pem in enumerate(chain_pems):
        _load_certificate(pem, f"certificate_chain[{index}]")
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"key: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(private, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey,
                                ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey,
                                dsa.DSAPrivateKey)):
        raise CertificateError("key: unsupported key type")
    if _public_bytes(private.public_key()) != _public_bytes(cert.public_key()):
        raise CertificateError("key: does not match the certificate's public key")
    subject_names = tuple(normalise_name(n) for n in _certificate_names(cert))
    given = tuple(normalise_name(n) for n in names)
    served = given or subject_names
    if not served:
        raise CertificateError("certificate: no DNS name (no subject alternative name, no "
                               "common name) and no names given")
    der = cert.public_bytes(serialization.Encoding.DER)
    return Certificate(
        fingerprint=hashlib.sha256(der).hexdigest(),
        names=tuple(dict.fromkeys(served)),
        not_after=cert.not_valid_after_utc,
        certificate_pem=certificate,
        chain_pem=chain_pems,
        key_pem=key,
        subject_names=subject_names,
    )


_PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL
)


def split_certificate_chain(text: str) -> list[str]:
    """The PEM certificates of a file, in order, each as its own PEM text (Sōzu's
    ``split_certificate_chain``: a chain file holds several); text between them is dropped."""
    return [match.group() + "\n" for match in _PEM_CERTIFICATE.finditer(text)]


def names_cover(names: Iterable[str], host: str) -> bool:
    """Whether one of the DNS ``names`` (lowercase, no trailing dot) covers ``host``:
    exactly, or as a ``*.`` wildcard standing for its whole first label, with at least two
    labels after it (RFC 6125 §6.4.3)."""
    host = host.rstrip(".").lower()
    dot = host.find(".")
    suffix = host[dot + 1 :] if dot > 0 else None
    for name in names:
        if name == host:
            return True
        if suffix is not None and name.startswith("*.") and name[2:] == suffix \
                and name.count(".") >= 2:
            return True
    return False


def covers(certificate: Certificate, host: str) -> bool:
    """Whether ``certificate`` names ``host`` (see :func:`names_cover`)."""
    return names_cover(certificate.names, host)


ContextFactory = Callable[[Certificate], Any]


class CertificateResolver:
    """A listener's certificates by fingerprint and by name (see the module docstring)."""

    def __init__(self, context_factory: ContextFactory | None = None) -> None:
        self.by_fingerprint: dict[str, Certificate] = {}
        self._exact: dict[str, list[Certificate]] = {}
        self._wildcard: dict[str, list[Certificate]] = {}  # key: the name without "*."
        self._order: dict[str, int] = {}  # fingerprint -> when it was added (ties)
        self._added = 0
        self._contexts: dict[str, Any] = {}
        self.context_factory = context_factory
        #: the listener's default certificate (its fingerprint), served to unknown names
        self.default: str | None = None

    def __len__(self) -> int:
        return len(self.by_fingerprint)

    def __iter__(self) -> Iterator[Certificate]:
        return iter(self.by_fingerprint.values())

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self.by_fingerprint

    # -- changes ------------------------------------------------------------------------------
    def add(self, certificate: Certificate) -> bool:
        """Index ``certificate``; False when the same fingerprint is already there (Sōzu
        answers OK to a duplicate add and changes nothing)."""
        fingerprint = certificate.fingerprint
        if fingerprint in self.by_fingerprint:
            return False
        self.by_fingerprint[fingerprint] = certificate
        self._added += 1
        self._order[fingerprint] = self._added
        for name in certificate.names:
            table, key = self._slot(name)
            table.setdefault(key, []).append(certificate)
        return True

    def remove(self, fingerprint: str) -> Certificate:
        """Drop a certificate; :class:`CertificateError` for an unknown fingerprint."""
        certificate = self.by_fingerprint.pop(fingerprint, None)
        if certificate is None:
            raise CertificateError(f"no certificate with fingerprint {fingerprint}")
        del self._order[fingerprint]
        self._contexts.pop(fingerprint, None)
        for name in certificate.names:
            table, key = self._slot(name)
            entries = [c for c in table.get(key, ()) if c is not certificate]
            if entries:
                table[key] = entries
            else:
                table.pop(key, None)
        if self.default == fingerprint:
            self.default = None
        return certificate

    def replace(self, old_fingerprint: str, certificate: Certificate) -> Certificate:
        """Swap ``old_fingerprint`` for ``certificate`` as one change: both checked first,
        so a refused replace leaves everything as it was. Returns the old certificate."""
        if old_fingerprint not in self.by_fingerprint:
            raise CertificateError(f"no certificate with fingerprint {old_fingerprint}")
        if certificate.fingerprint in self.by_fingerprint \
                and certificate.fingerprint != old_fingerprint:
            raise CertificateError(
                f"the new certificate {certificate.fingerprint} is already there"
            )
        was_default = self.default == old_fingerprint
        old = self.remove(old_fingerprint)
        self.add(certificate)
        if was_default:
            self.default = certificate.fingerprint
        return old

    # -- lookups ------------------------------------------------------------------------------
    def resolve(self, server_name: str | None) -> Certificate | None:
        """The certificate to serve for an SNI (None: no SNI), or None when nothing fits."""
        return self.resolve_named(server_name)[0]

    def resolve_named(self, server_name: str | None) -> tuple[Certificate | None, bool]:
        """``resolve``, and whether the certificate names the SNI (False: no SNI, or the
        default certificate served a name it does not cover: ``tls.default_cert_used``)."""
        if server_name:
            name = server_name.rstrip(".").lower()
            found = self._exact.get(name)
            if found:
                return self._best(found), True
            dot = name.find(".")
            if dot > 0:
                found = self._wildcard.get(name[dot + 1 :])
                if found:
                    return self._best(found), True
        if self.default is None:
            return None, False
        default = self.by_fingerprint.get(self.default)
        if default is not None and server_name:
            return default, covers(default, server_name)
        return default, False

    def covers(self, certificate: Certificate, host: str) -> bool:
        """Whether ``certificate`` names ``host`` (strict SNI binding: 421 otherwise)."""
        return covers(certificate, host)

    def by_domain(self, domain: str) -> list[Certificate]:
        """Every certificate with ``domain`` among its names (exact text, wildcards too)."""
        name = normalise_name(domain)
        table, key = self._slot(name)
        return list(table.get(key, ()))

    def context(self, certificate: Certificate) -> Any:
        """The ``SSL.Context`` serving ``certificate``, made once by the factory."""
        context = self._contexts.get(certificate.fingerprint)
        if context is None:
            if self.context_factory is None:
                raise RuntimeError("this resolver has no context factory")
            context = self._contexts[certificate.fingerprint] = self.context_factory(certificate)
        return context

    def clear_contexts(self) -> None:
        """Forget every context (the listener's TLS settings changed)."""
        self._contexts.clear()

    # -- helpers ------------------------------------------------------------------------------
    def _slot(self, name: str) -> tuple[dict[str, list[Certificate]], str]:
        if name.startswith("*."):
            return self._wildcard, name[2:]
        return self._exact, name

    def _best(self, candidates: list[Certificate]) -> Certificate:
        order = self._order
        return max(candidates, key=lambda c: (c.not_after, order[c.fingerprint]))
