"""HTTPS listeners, frontends and certificates in the TOML configuration (Sōzu's layout):
certificate files read at load into PEM requests, in an order ``ConfigState`` accepts, and
errors that name the key and its line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pysozu.command import Request
from pysozu.config import ConfigError, load_config, normalise_tls_version, parse_config
from pysozu.state import ConfigState
from tests.e2e.https_helpers import TestCA as CertificateAuthority
from tests.e2e.https_helpers import fingerprint_of, make_ca


@dataclass
class Files:
    """Certificate files in ``folder``: ``a`` (a.test), ``b`` (b.test, *.b.test), the CA."""

    folder: Path
    ca: CertificateAuthority
    a_pem: str
    a_key: str
    b_pem: str
    b_key: str


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("https-config")
    ca = make_ca(folder)
    certs = folder / "certs"
    certs.mkdir()
    a_pem, a_key = ca.issue(["a.test"])
    b_pem, b_key = ca.issue(["b.test", "*.b.test"])
    for name, text in (("a.pem", a_pem), ("a.key", a_key), ("b.pem", b_pem), ("b.key", b_key),
                       ("chain.pem", ca.pem), ("fullchain.pem", a_pem + ca.pem),
                       ("garbage.pem", "not a certificate\n")):
        (certs / name).write_text(text)
    return Files(folder, ca, a_pem, a_key, b_pem, b_key)


def write(files: Files, text: str, name: str = "pysozu.toml") -> Path:
    path = files.folder / name
    path.write_text(text)
    return path


def types(requests: list[Request]) -> list[str]:
    return [r.type for r in requests]


FULL = """
request_timeout = 7

[[listeners]]
protocol = "https"
address = "127.0.0.1:8443"
sticky_name = "LB"
answers = { "404" = "HTTP/1.1 404 Nope\\r\\n\\r\\n" }
tls_versions = ["TLS_V12", "TLS_V13"]
cipher_list = ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES256-GCM-SHA384"]
cipher_suites = ["TLS_AES_128_GCM_SHA256"]
signature_algorithms = ["ECDSA+SHA256"]
groups_list = ["x25519", "P-256"]
send_tls13_tickets = 2
alpn_protocols = ["http/1.1"]
strict_sni_binding = false
disable_http11 = false
certificate = "certs/b.pem"
key = "certs/b.key"
certificate_chain = "certs/chain.pem"

[listeners.hsts]
enabled = true
include_subdomains = true

[clusters.app]
protocol = "http"
backends = [{ address = "127.0.0.1:4000" }]

[[clusters.app.frontends]]
address = "127.0.0.1:8443"
hostname = "a.test"
certificate = "certs/a.pem"
key = "certs/a.key"
tls_versions = ["TLS_V13"]

[[clusters.app.frontends]]
address = "127.0.0.1:8443"
hostname = "a.test"
path = "/api"
certificate = "certs/a.pem"      # the same certificate: added once
key = "certs/a.key"

[clusters.app.frontends.hsts]
enabled = false

[[clusters.app.frontends]]
address = "127.0.0.1:8443"
hostname = "x.b.test"            # no certificate: the listener's default serves it

[[clusters.app.frontends]]
address = "127.0.0.1:9443"       # no listener: a default https one
hostname = "a.test"
certificate = "certs/a.pem"
key = "certs/a.key"
"""


def test_https_listener_frontends_and_certificates(files: Files) -> None:
    config = load_config(write(files, FULL))
    requests = config.requests
    assert types(requests) == [
        "ADD_HTTPS_LISTENER",
        "ADD_HTTPS_LISTENER",  # the default one of 127.0.0.1:9443
        "ADD_CLUSTER",
        "ADD_CERTIFICATE",
        "ADD_HTTPS_FRONTEND",
        "ADD_HTTPS_FRONTEND",
        "ADD_HTTPS_FRONTEND",
        "ADD_CERTIFICATE",
        "ADD_HTTPS_FRONTEND",
        "ADD_BACKEND",
        "ACTIVATE_LISTENER",
        "ACTIVATE_LISTENER",
    ]
    listener = requests[0]
    assert listener["address"] == "127.0.0.1:8443"
    assert listener["versions"] == ["TLS_V1_2", "TLS_V1_3"]
    assert listener["cipher_list"] == [
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES256-GCM-SHA384"
    ]
    assert listener["cipher_suites"] == ["TLS_AES_128_GCM_SHA256"]
    assert listener["signature_algorithms"] == ["ECDSA+SHA256"]
    assert listener["groups_list"] == ["x25519", "P-256"]
    assert (listener["send_tls13_tickets"], listener["alpn_protocols"]) == (2, ["http/1.1"])
    assert (listener["strict_sni_binding"], listener["disable_http11"]) == (False, False)
    assert listener["hsts"] == {"enabled": True, "max_age": 31536000,
                                "include_subdomains": True, "preload": False,
                                "force_replace_backend": False}
    # the files' PEM text travels in the request
    assert listener["certificate"] == files.b_pem
    assert listener["key"] == files.b_key
    assert listener["certificate_chain"] == [files.ca.pem]
    # HTTP listener keys and the server-wide timeouts apply to https listeners too
    assert (listener["sticky_name"], listener["request_timeout"]) == ("LB", 7)
    assert listener["answers"] == {"404": "HTTP/1.1 404 Nope\r\n\r\n"}
    assert [r["proxy"] for r in requests[-2:]] == ["HTTPS", "HTTPS"]

    default = requests[1]
    assert default["address"] == "127.0.0.1:9443"
    assert (default["certificate"], default["versions"]) == (None, ["TLS_V1_2", "TLS_V1_3"])
    assert default["request_timeout"] == 7

    first = requests[3]
    assert first["address"] == "127.0.0.1:8443"
    assert first["certificate"] == {"certificate": files.a_pem, "key": files.a_key,
                                    "certificate_chain": [], "versions": ["TLS_V1_3"],
                                    "names": []}
    fronts = [r for r in requests if r.type == "ADD_HTTPS_FRONTEND"]
    assert [(f["address"], f["hostname"], f["path"]["value"]) for f in fronts] == [
        ("127.0.0.1:8443", "a.test", ""),
        ("127.0.0.1:8443", "a.test", "/api"),
        ("127.0.0.1:8443", "x.b.test", ""),
        ("127.0.0.1:9443", "a.test", ""),
    ]
    assert fronts[0]["hsts"] is None
    assert fronts[1]["hsts"] is not None and fronts[1]["hsts"]["enabled"] is False
    assert requests[7]["address"] == "127.0.0.1:9443"

    state = ConfigState.from_requests(requests)  # the order satisfies the state's checks
    a = fingerprint_of(files.a_pem)
    assert {address: list(certs) for address, certs in state.certificates().items()} == {
        "127.0.0.1:8443": [a], "127.0.0.1:9443": [a]
    }
    assert len(state.https_frontends) == 4
    assert set(state.https_listeners) == {"127.0.0.1:8443", "127.0.0.1:9443"}


def test_fullchain_file_serves_its_first_certificate(files: Files) -> None:
    config = load_config(write(files, """
[[listeners]]
protocol = "https"
address = "127.0.0.1:8443"
certificate = "certs/fullchain.pem"
key = "certs/a.key"
certificate_chain = "certs/chain.pem"
"""))
    listener = config.requests[0]
    assert listener["certificate"] == files.a_pem
    assert listener["certificate_chain"] == [files.ca.pem, files.ca.pem]


def test_frontend_certificate_equal_to_the_listener_default_is_not_added_again(
    files: Files,
) -> None:
    config = load_config(write(files, """
[[listeners]]
protocol = "https"
address = "127.0.0.1:8443"
certificate = "certs/a.pem"
key = "certs/a.key"

[clusters.app]
protocol = "http"

[[clusters.app.frontends]]
address = "127.0.0.1:8443"
hostname = "a.test"
certificate = "certs/a.pem"
key = "certs/a.key"
"""))
    assert "ADD_CERTIFICATE" not in types(config.requests)


def test_absolute_paths_and_parse_config_base_dir(files: Files) -> None:
    certs = files.folder / "certs"
    text = f"""
[clusters.app]
protocol = "http"

[[clusters.app.frontends]]
address = "127.0.0.1:8443"
hostname = "a.test"
certificate = "{certs / 'a.pem'}"
key = "certs/a.key"
"""
    config = parse_config(text, base_dir=files.folder)
    assert types(config.requests)[:3] == ["ADD_HTTPS_LISTENER", "ADD_CLUSTER", "ADD_CERTIFICATE"]


def test_reload_diff_replaces_a_changed_certificate(files: Files) -> None:
    template = """
[[listeners]]
protocol = "https"
address = "127.0.0.1:8443"

[clusters.app]
protocol = "http"

[[clusters.app.frontends]]
address = "127.0.0.1:8443"
hostname = "a.test"
certificate = "certs/{0}.pem"
key = "certs/{0}.key"
"""
    before = ConfigState.from_requests(load_config(write(files, template.format("a"))).requests)
    after = ConfigState.from_requests(load_config(write(files, template.format("b"))).requests)
    diff = before.diff(after)
    assert [r.type for r in diff] == ["REMOVE_CERTIFICATE", "ADD_CERTIFICATE"]
    assert diff[0]["fingerprint"] == fingerprint_of(files.a_pem)
    assert diff[1]["certificate"]["certificate"] == files.b_pem


@pytest.mark.parametrize(("word", "name"), [
    ("TLS_V12", "TLS_V1_2"), ("TLS_V13", "TLS_V1_3"), ("tls_v1_2", "TLS_V1_2"),
    ("TLSv1.3", "TLS_V1_3"), ("TLSv1", "TLS_V1_0"), ("TLS_V11", "TLS_V1_1"), ("SSL_V3", "SSL_V3"),
])  # fmt: skip
def test_tls_version_spellings(word: str, name: str) -> None:
    assert normalise_tls_version(word) == name


# ---------------------------------------------------------------------------------------------
# Errors: key and line
# ---------------------------------------------------------------------------------------------

HS = '[[listeners]]\nprotocol = "https"\naddress = "127.0.0.1:8443"\n'  # lines 1-3
CL = '[clusters.app]\nprotocol = "http"\n'


def front(extra: str, address: str = "127.0.0.1:8443") -> str:
    """An http cluster whose only frontend (after ``HS``: on line 6) has ``extra`` keys."""
    return CL + f'frontends = [{{ address = "{address}", hostname = "a.test"{extra} }}]\n'


A = ', certificate = "certs/a.pem", key = "certs/a.key"'

ERRORS: list[tuple[str, str, str, int, str]] = [
    # listener files
    ("missing certificate file", HS + 'certificate = "certs/none.pem"\nkey = "certs/a.key"\n',
     "listeners[0].certificate", 4,
     "cannot read the certificate file certs/none.pem: No such file or directory"),
    ("missing key file", HS + 'certificate = "certs/a.pem"\nkey = "certs/none.key"\n',
     "listeners[0].key", 5, "cannot read the key file certs/none.key"),
    ("missing chain file", HS + 'certificate = "certs/a.pem"\nkey = "certs/a.key"\n'
     'certificate_chain = "nope.pem"\n', "listeners[0].certificate_chain", 6,
     "cannot read the certificate chain file nope.pem"),
    ("not a PEM certificate", HS + 'certificate = "certs/garbage.pem"\nkey = "certs/a.key"\n',
     "listeners[0].certificate", 4, "no PEM certificate in certs/garbage.pem"),
    ("chain without certificates", HS + 'certificate = "certs/a.pem"\nkey = "certs/a.key"\n'
     'certificate_chain = "certs/garbage.pem"\n', "listeners[0].certificate_chain", 6,
     "no PEM certificate in certs/garbage.pem"),
    ("key is not a key", HS + 'certificate = "certs/a.pem"\nkey = "certs/a.pem"\n',
     "listeners[0].key", 5, "not an unencrypted PEM private key"),
    ("key of another certificate", HS + 'certificate = "certs/a.pem"\nkey = "certs/b.key"\n',
     "listeners[0].key", 5, "does not match the certificate's public key"),
    ("key without certificate", HS + 'key = "certs/a.key"\n', "listeners[0].key", 4,
     "needs both certificate and key (missing 'certificate')"),
    ("certificate path not a string", HS + "certificate = 1\nkey = 'certs/a.key'\n",
     "listeners[0].certificate", 4, "must be a string"),
    # listener TLS settings
    ("old TLS version", HS + 'tls_versions = ["TLS_V11", "TLS_V12"]\n',
     "listeners[0].tls_versions", 4, "TLS versions TLS_V1_1 are refused: TLS 1.2 and 1.3 only"),
    ("unknown TLS version", HS + 'tls_versions = ["TLS_V12", "TLS_V14"]\n',
     "listeners[0].tls_versions[1]", 4, "unknown TLS version 'TLS_V14'"),
    ("no TLS version", HS + "tls_versions = []\n", "listeners[0].tls_versions", 4,
     "must name at least one TLS version"),
    ("versions not strings", HS + "tls_versions = [12]\n", "listeners[0].tls_versions[0]", 4,
     "must be a string"),
    ("unknown cipher", HS + 'cipher_list = ["ECDHE-RSA-AES128-GCM-SHA256", "NOPE"]\n',
     "listeners[0].cipher_list", 4, "unknown TLS 1.2 cipher 'NOPE'"),
    ("unknown suite", HS + 'cipher_suites = ["TLS_NOPE"]\n', "listeners[0].cipher_suites", 4,
     "unknown TLS 1.3 cipher suite 'TLS_NOPE'"),
    ("unknown group", HS + 'groups_list = ["x25519", "P-999"]\n', "listeners[0].groups_list", 4,
     "unknown key exchange group 'P-999'"),
    ("unknown signature algorithm", HS + 'signature_algorithms = ["NOPE+SHA1"]\n',
     "listeners[0].signature_algorithms", 4, "unknown signature algorithm 'NOPE+SHA1'"),
    ("unknown ALPN protocol", HS + 'alpn_protocols = ["h2", "spdy/3"]\n',
     "listeners[0].alpn_protocols", 4, "unsupported ALPN protocol 'spdy/3'"),
    ("no ALPN protocol", HS + "alpn_protocols = []\n", "listeners[0].alpn_protocols", 4,
     "must name at least one protocol"),
    ("disable_http11 without h2", HS + 'alpn_protocols = ["http/1.1"]\ndisable_http11 = true\n',
     "listeners[0].disable_http11", 5, "disable_http11 needs 'h2' in alpn_protocols"),
    ("bad disable_http11", HS + 'disable_http11 = "yes"\n', "listeners[0].disable_http11", 4,
     "must be a boolean"),
    ("bad tickets", HS + "send_tls13_tickets = -1\n", "listeners[0].send_tls13_tickets", 4,
     "must be between 0 and"),
    ("bad strict_sni_binding", HS + 'strict_sni_binding = "no"\n',
     "listeners[0].strict_sni_binding", 4, "must be a boolean"),
    ("hsts without enabled", HS + "[listeners.hsts]\nmax_age = 60\n", "listeners[0].hsts", 4,
     "missing key 'enabled' for an hsts table"),
    ("unknown hsts key", HS + "[listeners.hsts]\nenabled = true\nmax_agee = 60\n",
     "listeners[0].hsts.max_agee", 6, "unknown key for an hsts table"),
    ("bad hsts max_age", HS + "hsts = { enabled = true, max_age = -5 }\n",
     "listeners[0].hsts.max_age", 4, "must be between 0 and"),
    ("unknown https listener key", HS + "h2_stream_shrink_ratio = 2\n",
     "listeners[0].h2_stream_shrink_ratio", 4, "unknown key for an https listener"),
    ("tls key on a tcp listener", '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:1"\n'
     'tls_versions = ["TLS_V12"]\n', "listeners[0].tls_versions", 4,
     "only valid for https listeners"),
    ("hsts on an http listener", '[[listeners]]\nprotocol = "http"\naddress = "127.0.0.1:1"\n'
     "hsts = { enabled = true }\n", "listeners[0].hsts", 4, "only valid for https listeners"),
    # frontends
    ("missing frontend certificate", HS + front(', certificate = "x.pem", key = "certs/a.key"'),
     "clusters.app.frontends[0].certificate", 6, "cannot read the certificate file x.pem"),
    ("frontend key mismatch", HS + front(', certificate = "certs/a.pem", key = "certs/b.key"'),
     "clusters.app.frontends[0].key", 6, "does not match"),
    ("frontend chain without certificate", HS + front(', certificate_chain = "certs/chain.pem"'),
     "clusters.app.frontends[0].certificate_chain", 6, "needs both certificate and key"),
    ("frontend tls_versions without certificate",
     HS + 'certificate = "certs/a.pem"\nkey = "certs/a.key"\n'
     + front(', tls_versions = ["TLS_V13"]'),
     "clusters.app.frontends[0].tls_versions", 8, "only valid with certificate and key"),
    ("frontend bad tls version", HS + front(A + ', tls_versions = ["TLS_V9"]'),
     "clusters.app.frontends[0].tls_versions[0]", 6, "unknown TLS version 'TLS_V9'"),
    ("frontend hsts without enabled", HS + front(A + ", hsts = { max_age = 5 }"),
     "clusters.app.frontends[0].hsts", 6, "missing key 'enabled'"),
    ("https listener with no certificate at all", HS + front(""),
     "clusters.app.frontends[0]", 6,
     "the https listener 127.0.0.1:8443 has no certificate: give this frontend certificate"),
    ("certificate on an http listener",
     '[[listeners]]\nprotocol = "http"\naddress = "127.0.0.1:8443"\n' + front(A),
     "clusters.app.frontends[0].certificate", 6,
     "only valid for https frontends (127.0.0.1:8443 is an http listener)"),
    ("hsts without certificate and no listener", front(", hsts = { enabled = true }"),
     "clusters.app.frontends[0].hsts", 3,
     "only valid for https frontends (with certificate and key files)"),
    ("certificate on a tcp frontend", '[clusters.t]\nprotocol = "tcp"\n'
     'frontends = [{ address = "127.0.0.1:1", certificate = "a.pem" }]\n',
     "clusters.t.frontends[0].certificate", 3, "only valid for http frontends"),
    ("https frontend on a tcp listener",
     '[[listeners]]\nprotocol = "tcp"\naddress = "127.0.0.1:8443"\n' + front(A),
     "clusters.app.frontends[0].address", 6, "is a tcp listener"),
    ("same rule twice", HS + CL + 'frontends = [\n'
     '  { address = "127.0.0.1:8443", hostname = "a.test"' + A + ' },\n'
     '  { address = "127.0.0.1:8443", hostname = "a.test" },\n]\n',
     "clusters.app.frontends[1]", 8, "this cluster already has a frontend with this rule"),
    ("shared certificate, other chain", HS + CL + 'frontends = [\n'
     '  { address = "127.0.0.1:8443", hostname = "a.test"' + A + ' },\n'
     '  { address = "127.0.0.1:8443", hostname = "b.test"' + A
     + ', certificate_chain = "certs/chain.pem" },\n]\n',
     "clusters.app.frontends[1].certificate_chain", 8,
     "this certificate is also given at clusters.app.frontends[0] with another "
     "certificate_chain"),
    ("shared certificate, other versions", HS + CL + 'frontends = [\n'
     '  { address = "127.0.0.1:8443", hostname = "a.test"' + A
     + ', tls_versions = ["TLS_V12"] },\n'
     '  { address = "127.0.0.1:8443", hostname = "b.test"' + A
     + ', tls_versions = ["TLS_V13"] },\n]\n',
     "clusters.app.frontends[1].tls_versions", 8, "with another tls_versions"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "key", "line", "reason"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_errors(files: Files, text: str, key: str, line: int, reason: str) -> None:
    path = write(files, text, "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert reason in error.reason
    assert (error.key, error.line) == (key, line)
    assert str(error).startswith(f"{path}:{line}: {key}: ")


def test_relative_files_need_a_base_dir(files: Files, monkeypatch: pytest.MonkeyPatch) -> None:
    """``parse_config`` without ``base_dir`` reads relative files from the working folder."""
    monkeypatch.chdir(files.folder)
    config = parse_config(HS + 'certificate = "certs/a.pem"\nkey = "certs/a.key"\n')
    assert config.requests[0]["certificate"] == files.a_pem
