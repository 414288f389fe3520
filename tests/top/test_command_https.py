"""HTTPS and certificate request types of pysozu.command (defaults, refusals), and the
state rules for certificates (pysozu.state): what the channel accepts before a worker
touches OpenSSL."""

from __future__ import annotations

from typing import Any

import pytest

from pysozu.command import CommandError, make_request, parse_request
from pysozu.protocols.http_rules import Hsts
from pysozu.protocols.tls import DEFAULT_CIPHER_LIST, DEFAULT_CIPHER_SUITES, TlsSettings
from pysozu.state import ConfigState, StateError
from tests.protocols.test_certificates import make

L = "127.0.0.1:8443"


def test_https_listener_defaults_are_sozus() -> None:
    fields = parse_request({"id": "l", "type": "ADD_HTTPS_LISTENER", "address": L}).fields
    assert fields["versions"] == ["TLS_V1_2", "TLS_V1_3"]
    assert fields["alpn_protocols"] == ["h2", "http/1.1"]  # Sōzu's, in order of preference
    assert fields["strict_sni_binding"] is True
    assert fields["disable_http11"] is False
    assert fields["send_tls13_tickets"] == 4
    assert fields["certificate"] is None and fields["hsts"] is None
    assert fields["request_timeout"] == 10 and fields["sticky_name"] == "SOZUBALANCEID"
    patch = parse_request({"id": "u", "type": "UPDATE_HTTPS_LISTENER", "address": L}).fields
    assert set(patch) == set(fields) - {"active"}
    assert all(v is None for k, v in patch.items() if k != "address")


def test_https_frontend_hsts_and_certificate_defaults() -> None:
    front = parse_request({"id": "f", "type": "ADD_HTTPS_FRONTEND", "address": L,
                           "hostname": "a.test", "cluster_id": "c",
                           "hsts": {"enabled": True}}).fields
    assert front["hsts"] == {"enabled": True, "max_age": 31536000, "include_subdomains": False,
                             "preload": False, "force_replace_backend": False}
    cert = parse_request({"id": "c", "type": "ADD_CERTIFICATE", "address": L,
                          "certificate": {"certificate": "x", "key": "y"}}).fields
    assert cert == {"address": L, "expired_at": None, "certificate": {
        "certificate": "x", "key": "y", "certificate_chain": [], "versions": [], "names": []}}
    query = parse_request({"id": "q", "type": "QUERY_CERTIFICATES_FROM_WORKERS"}).fields
    assert query == {"filters": {"domain": None, "fingerprint": None}}
    fingerprint = "AB" * 32
    removal = parse_request({"id": "r", "type": "REMOVE_CERTIFICATE", "address": L,
                             "fingerprint": fingerprint}).fields
    assert removal["fingerprint"] == fingerprint.lower()


@pytest.mark.parametrize(("obj", "message"), [
    ({"type": "ADD_HTTPS_LISTENER", "versions": ["TLS_V9"]}, "unknown TLS version 'TLS_V9'"),
    ({"type": "ADD_HTTPS_LISTENER", "disable_http11": True, "alpn_protocols": ["http/1.1"]},
     "disable_http11 needs 'h2' in alpn_protocols"),
    ({"type": "ADD_HTTPS_LISTENER", "alpn_protocols": ["spdy/3"]},
     "unsupported ALPN protocol 'spdy/3'"),
    ({"type": "ADD_HTTPS_LISTENER", "hsts": {"max_age": -1}}, "field 'hsts.max_age'"),
    ({"type": "REMOVE_CERTIFICATE", "fingerprint": "12"}, "invalid fingerprint '12'"),
    ({"type": "ADD_CERTIFICATE", "certificate": {"certificate": "x"}},
     "missing field 'certificate.key'"),
    ({"type": "ADD_CERTIFICATE", "certificate": {"certificate": "x", "key": "y",
                                                 "names": ["a b"]}}, "invalid server name"),
    ({"type": "QUERY_CERTIFICATES_FROM_WORKERS", "filters": {"domain": "bad host!"}},
     "field 'filters.domain'"),
])  # fmt: skip
def test_refusals_name_the_field(obj: dict[str, Any], message: str) -> None:
    if obj["type"] != "QUERY_CERTIFICATES_FROM_WORKERS":
        obj = {"address": L, **obj}
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        parse_request({"id": "x", **obj})


def test_tls_settings_map_sozu_names_and_keep_defaults() -> None:
    settings = TlsSettings.from_fields({
        "versions": ["TLS_V1_3"],
        "cipher_list": ["TLS13_CHACHA20_POLY1305_SHA256",
                        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
        "groups_list": ["P-256"], "send_tls13_tickets": 0,
    })
    assert settings.cipher_suites == "TLS_CHACHA20_POLY1305_SHA256"
    assert settings.cipher_list == "ECDHE-RSA-AES128-GCM-SHA256"
    assert settings.groups == ("P-256",) and settings.tickets is False
    assert settings.version_range()[0] == settings.version_range()[1]
    default = TlsSettings.from_fields({})
    assert (default.cipher_list, default.cipher_suites) == (DEFAULT_CIPHER_LIST,
                                                            DEFAULT_CIPHER_SUITES)


def test_hsts_header_line() -> None:
    assert Hsts.from_fields({"enabled": False}).line == b""
    hsts = Hsts.from_fields({"enabled": True, "max_age": 10, "include_subdomains": True,
                             "preload": True, "force_replace_backend": True})
    assert hsts.line == b"Strict-Transport-Security: max-age=10; includeSubDomains; preload\r\n"
    assert hsts.force_replace


def _state_with_listener() -> ConfigState:
    return ConfigState.from_requests([make_request("l", "ADD_HTTPS_LISTENER", address=L)])


def test_state_certificates_add_replace_remove_and_diff() -> None:
    state = _state_with_listener()
    pem, key = make(["a.test"])
    state.apply(make_request("c", "ADD_CERTIFICATE", address=L,
                             certificate={"certificate": pem, "key": key}))
    (fingerprint,) = state.certificates(L)[L]
    with pytest.raises(StateError, match=f"certificate {fingerprint} already exists"):
        state.check(make_request("c2", "ADD_CERTIFICATE", address=L,
                                 certificate={"certificate": pem, "key": key}))
    before = state.copy()
    new_pem, new_key = make(["a.test"])
    state.apply(make_request("r", "REPLACE_CERTIFICATE", address=L, old_fingerprint=fingerprint,
                             new_certificate={"certificate": new_pem, "key": new_key}))
    (new_fingerprint,) = state.certificates(L)[L]
    assert new_fingerprint != fingerprint
    steps = before.diff(state)
    assert [r.type for r in steps] == ["REMOVE_CERTIFICATE", "ADD_CERTIFICATE"]
    replayed = before.copy()
    for step in steps:
        replayed.apply(step)
    assert replayed == state
    state.apply(make_request("d", "REMOVE_CERTIFICATE", address=L, fingerprint=new_fingerprint))
    assert state.certificates() == {}


def test_state_refuses_bad_certificates_and_unknown_listeners() -> None:
    state = _state_with_listener()
    pem, key = make(["a.test"])
    _, other_key = make(["a.test"])
    with pytest.raises(StateError, match="does not match"):
        state.check(make_request("c", "ADD_CERTIFICATE", address=L,
                                 certificate={"certificate": pem, "key": other_key}))
    with pytest.raises(StateError, match=r"HTTPS listener 127\.0\.0\.1:1 not found"):
        state.check(make_request("c", "ADD_CERTIFICATE", address="127.0.0.1:1",
                                 certificate={"certificate": pem, "key": key}))
    with pytest.raises(StateError, match="no certificate with fingerprint"):
        state.check(make_request("d", "REMOVE_CERTIFICATE", address=L, fingerprint="0" * 64))


def test_removing_a_listener_drops_its_certificates_and_diff_readds_them() -> None:
    state = _state_with_listener()
    pem, key = make(["a.test"])
    state.apply(make_request("c", "ADD_CERTIFICATE", address=L,
                             certificate={"certificate": pem, "key": key}))
    target = state.copy()
    state.apply(make_request("x", "REMOVE_LISTENER", address=L, proxy="HTTPS"))
    assert state.certificates() == {}
    steps = state.diff(target)
    assert [r.type for r in steps] == ["ADD_HTTPS_LISTENER", "ADD_CERTIFICATE"]
    # a listener whose default certificate goes away is re-added, certificates with it
    with_default = ConfigState.from_requests([
        make_request("l", "ADD_HTTPS_LISTENER", address=L, certificate=pem, key=key),
        make_request("c", "ADD_CERTIFICATE", address=L,
                     certificate={"certificate": pem, "key": key}),
    ])
    without = ConfigState.from_requests([
        make_request("l", "ADD_HTTPS_LISTENER", address=L),
        make_request("c", "ADD_CERTIFICATE", address=L,
                     certificate={"certificate": pem, "key": key}),
    ])
    steps = with_default.diff(without)
    assert [r.type for r in steps] == ["REMOVE_LISTENER", "ADD_HTTPS_LISTENER", "ADD_CERTIFICATE"]
    replayed = with_default.copy()
    for step in steps:
        replayed.apply(step)
    assert replayed == without
