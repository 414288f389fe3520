"""Certificate parsing and the SNI resolver (``protocols/certificates.py``), certificates made
at test time with ``cryptography`` (nothing with a private key is committed)."""

from __future__ import annotations

import datetime
import hashlib
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pysozu.protocols.certificates import (
    CertificateError,
    CertificateResolver,
    normalise_name,
    parse_certificate,
)

NOW = datetime.datetime.now(datetime.UTC)


def make(names: list[str], *, days: int = 30, cn: str | None = None,
         key: ec.EllipticCurvePrivateKey | None = None) -> tuple[str, str]:
    """A self-signed certificate for ``names`` (DNS SANs) valid ``days``: (cert PEM, key PEM)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or (names or ["x"])[0])])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    cert = builder.sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def cert(names: list[str], **kwargs):
    pem, key = make(names, **kwargs)
    return parse_certificate(pem, key)


def test_parse_fingerprint_names_and_validity():
    pem, key = make(["Www.Example.com", "*.example.com"], days=10)
    c = parse_certificate(pem, key)
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    assert c.fingerprint == hashlib.sha256(der).hexdigest()
    assert c.names == ("www.example.com", "*.example.com")
    assert abs(c.not_after - (NOW + datetime.timedelta(days=10))) < datetime.timedelta(seconds=2)


def test_names_override_and_common_name_fallback():
    pem, key = make([], cn="legacy.example.org")
    assert parse_certificate(pem, key).names == ("legacy.example.org",)
    assert parse_certificate(pem, key, names=["a.test", "A.test."]).names == ("a.test",)


@pytest.mark.parametrize("bad,message", [
    ("cert", "certificate: not a PEM certificate"),
    ("key", "key: not an unencrypted PEM private key"),
    ("mismatch", "does not match the certificate"),
    ("chain", "certificate_chain[0]: not a PEM certificate"),
])
def test_bad_input_is_refused_with_a_reason(bad, message):
    pem, key = make(["a.test"])
    _, other_key = make(["b.test"])
    args = {"certificate": pem, "key": key, "chain": ()}
    if bad == "cert":
        args["certificate"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    elif bad == "key":
        args["key"] = "not a key"
    elif bad == "mismatch":
        args["key"] = other_key
    else:
        args["chain"] = ("garbage",)
    with pytest.raises(CertificateError, match=re.escape(message)):
        parse_certificate(**args)


@pytest.mark.parametrize("name", ["", "a..b", "a.*.c", "*x.example.com", "*.com"])
def test_invalid_names(name):
    with pytest.raises(CertificateError):
        normalise_name(name)


def test_exact_beats_wildcard_beats_default():
    resolver = CertificateResolver()
    wild = cert(["*.example.com"])
    exact = cert(["www.example.com"])
    default = cert(["default.test"])
    for c in (wild, exact, default):
        assert resolver.add(c)
    assert resolver.resolve("www.example.com") is exact
    assert resolver.resolve("WWW.example.com.") is exact
    assert resolver.resolve("api.example.com") is wild
    assert resolver.resolve("a.b.example.com") is None  # one label only, no default yet
    assert resolver.resolve("example.com") is None
    resolver.default = default.fingerprint
    assert resolver.resolve("a.b.example.com") is default
    assert resolver.resolve(None) is default  # no SNI


def test_resolve_named_tells_when_the_default_stands_in():
    # what tls.default_cert_used counts: no SNI, or a name only the fallback answered
    resolver = CertificateResolver()
    wild = cert(["*.example.com"])
    default = cert(["default.test"])
    for c in (wild, default):
        assert resolver.add(c)
    resolver.default = default.fingerprint
    assert resolver.resolve_named("api.example.com") == (wild, True)
    assert resolver.resolve_named("default.test") == (default, True)
    assert resolver.resolve_named("other.test") == (default, False)
    assert resolver.resolve_named(None) == (default, False)
    resolver.default = None
    assert resolver.resolve_named("other.test") == (None, False)


def test_longest_lived_wins_then_latest_added():
    resolver = CertificateResolver()
    short, long_ = cert(["a.test"], days=10), cert(["a.test"], days=90)
    resolver.add(long_)
    resolver.add(short)
    assert resolver.resolve("a.test") is long_
    resolver.remove(long_.fingerprint)
    assert resolver.resolve("a.test") is short  # removal falls back to the other one


def test_replace_is_one_change_and_keeps_the_default_role():
    resolver = CertificateResolver(context_factory=lambda c: object())
    old, new = cert(["a.test"]), cert(["a.test", "b.test"])
    resolver.add(old)
    resolver.default = old.fingerprint
    context = resolver.context(old)
    assert resolver.context(old) is context  # one context per certificate, cached
    assert resolver.replace(old.fingerprint, new) is old
    assert resolver.resolve("b.test") is new and resolver.default == new.fingerprint
    assert old.fingerprint not in resolver and len(resolver) == 1
    with pytest.raises(CertificateError, match="no certificate with fingerprint"):
        resolver.replace(old.fingerprint, cert(["c.test"]))
    assert resolver.resolve("a.test") is new  # the refused replace changed nothing


def test_duplicate_add_and_unknown_removal():
    resolver = CertificateResolver()
    c = cert(["a.test"])
    assert resolver.add(c) and not resolver.add(c)
    with pytest.raises(CertificateError, match="no certificate with fingerprint ff"):
        resolver.remove("ff")
    assert resolver.resolve("a.test") is c


def test_by_domain_and_covers():
    resolver = CertificateResolver()
    wild, exact = cert(["*.example.com"]), cert(["www.example.com", "example.com"])
    resolver.add(wild)
    resolver.add(exact)
    assert resolver.by_domain("*.example.com") == [wild]
    assert resolver.by_domain("example.com") == [exact]
    assert resolver.covers(wild, "api.example.com")
    assert not resolver.covers(wild, "example.com")
    assert resolver.covers(exact, "EXAMPLE.com.")
    assert not resolver.covers(exact, "api.example.com")


def test_many_certificates_each_found_by_its_names():
    resolver = CertificateResolver()
    certs = [cert([f"host{n}.test", f"*.zone{n}.test"]) for n in range(40)]
    for c in certs:
        resolver.add(c)
    for n, c in enumerate(certs):
        assert resolver.resolve(f"host{n}.test") is c
        assert resolver.resolve(f"www.zone{n}.test") is c
    assert resolver.resolve("host40.test") is None
