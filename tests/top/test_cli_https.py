"""The command line's HTTPS verbs: listeners and frontends with ``--https``, ``certificate
add/replace/remove/list`` (files read by the client), their rendering, and ``pysozu start``
serving HTTPS from a configuration file, driven by the CLI against the running proxy."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pysozu.cli import CliError, _certificate_lines, _cluster_lines, _listener_lines, main
from pysozu.cli import request_for as cli_request
from pysozu.command import make_request
from tests.e2e.http_helpers import HttpBackend
from tests.e2e.https_helpers import TestCA as CertificateAuthority
from tests.e2e.https_helpers import fingerprint_of, https_get, make_ca
from tests.top.test_cli import ProxyProcess, free_address

L = "127.0.0.1:8443"
FP = "ab" * 32


@dataclass
class Files:
    """PEM files (absolute paths) made by a test CA."""

    folder: Path
    ca: CertificateAuthority
    a_pem: str
    a_key: str
    b_pem: str
    b_key: str

    def path(self, name: str) -> str:
        return str(self.folder / name)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    folder = tmp_path_factory.mktemp("https-cli")
    ca = make_ca(folder)
    a_pem, a_key = ca.issue(["a.test"])
    b_pem, b_key = ca.issue(["b.test"])
    b2_pem, b2_key = ca.issue(["b.test"], days=60)  # a renewal of b
    for name, text in (("a.pem", a_pem), ("a.key", a_key), ("b.pem", b_pem), ("b.key", b_key),
                       ("b2.pem", b2_pem), ("b2.key", b2_key), ("chain.pem", ca.pem),
                       ("garbage.pem", "-----BEGIN NOTHING-----\n")):
        (folder / name).write_text(text)
    return Files(folder, ca, a_pem, a_key, b_pem, b_key)


def fill(text: str, files: Files) -> str:
    """``text`` with each ``{NAME}`` replaced by the path of that file of ``files``."""
    return re.sub(r"\{([\w.]+)\}", lambda m: files.path(m.group(1)), text)


def request_for(argv: list[str], files: Files) -> tuple[str, dict[str, Any]]:
    """``request_for`` with ``{a.pem}``-style placeholders replaced by the files' paths."""
    return cli_request([fill(arg, files) for arg in argv])


# --------------------------------------------------------------------------------------------
# Arguments -> requests
# --------------------------------------------------------------------------------------------

MAPPINGS: list[tuple[list[str], str, Callable[[Files], dict[str, Any]]]] = [
    (["listener", "add", L, "--https"], "ADD_HTTPS_LISTENER",
     lambda f: {"address": L, "active": True}),
    (["listener", "add", L, "--protocol", "https", "--inactive", "--sticky-name", "LB",
      "--request-timeout", "4", "--answer", "503=busy", "--tls-versions", "TLS_V12,tls_v1_3",
      "--cipher-list", "ECDHE-RSA-AES128-GCM-SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
      "--cipher-suites", "TLS_AES_128_GCM_SHA256", "--signature-algorithms", "ECDSA+SHA256",
      "--groups", "x25519, P-256", "--alpn", "http/1.1", "--send-tls13-tickets", "0",
      "--no-strict-sni-binding", "--hsts-max-age", "600", "--hsts-include-subdomains",
      "--hsts-preload", "--hsts-force-replace-backend",
      "--certificate", "{a.pem}", "--key", "{a.key}", "--chain", "{chain.pem}"],
     "ADD_HTTPS_LISTENER",
     lambda f: {"address": L, "active": False, "sticky_name": "LB", "request_timeout": 4,
                "answers": {"503": "busy"}, "versions": ["TLS_V1_2", "TLS_V1_3"],
                "cipher_list": ["ECDHE-RSA-AES128-GCM-SHA256",
                                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
                "cipher_suites": ["TLS_AES_128_GCM_SHA256"],
                "signature_algorithms": ["ECDSA+SHA256"], "groups_list": ["x25519", "P-256"],
                "alpn_protocols": ["http/1.1"], "send_tls13_tickets": 0,
                "strict_sni_binding": False,
                "hsts": {"enabled": True, "max_age": 600, "include_subdomains": True,
                         "preload": True, "force_replace_backend": True},
                "certificate": f.a_pem, "key": f.a_key, "certificate_chain": [f.ca.pem]}),
    (["listener", "update", L, "--https", "--no-hsts"], "UPDATE_HTTPS_LISTENER",
     lambda f: {"address": L, "hsts": {"enabled": False}}),
    (["listener", "update", L, "--https", "--hsts", "--strict-sni-binding"],
     "UPDATE_HTTPS_LISTENER",
     lambda f: {"address": L, "hsts": {"enabled": True}, "strict_sni_binding": True}),
    (["listener", "update", L, "--https", "--certificate", "{b.pem}", "--key", "{b.key}"],
     "UPDATE_HTTPS_LISTENER",
     lambda f: {"address": L, "certificate": f.b_pem, "key": f.b_key, "certificate_chain": []}),
    (["listener", "update", L, "--https", "--send-x-real-ip"], "UPDATE_HTTPS_LISTENER",
     lambda f: {"address": L, "send_x_real_ip": True}),
    (["listener", "remove", L, "--https"], "REMOVE_LISTENER",
     lambda f: {"address": L, "proxy": "HTTPS"}),
    (["listener", "activate", L, "--protocol", "HTTPS"], "ACTIVATE_LISTENER",
     lambda f: {"address": L, "proxy": "HTTPS"}),
    (["listener", "deactivate", L, "--https"], "DEACTIVATE_LISTENER",
     lambda f: {"address": L, "proxy": "HTTPS"}),
    (["frontend", "add", "app", L, "--https", "--hostname", "a.test", "--path", "/api",
      "--tag", "k=v", "--header", "response:X-A=1", "--hsts-max-age", "60"],
     "ADD_HTTPS_FRONTEND",
     lambda f: {"cluster_id": "app", "address": L, "hostname": "a.test",
                "path": {"kind": "PREFIX", "value": "/api"}, "tags": {"k": "v"},
                "headers": [{"position": "RESPONSE", "key": "X-A", "val": "1"}],
                "hsts": {"enabled": True, "max_age": 60}}),
    (["frontend", "add", "app", L, "--https", "--hostname", "a.test", "--no-hsts"],
     "ADD_HTTPS_FRONTEND",
     lambda f: {"cluster_id": "app", "address": L, "hostname": "a.test",
                "path": {"kind": "PREFIX", "value": ""}, "tags": {},
                "hsts": {"enabled": False}}),
    (["frontend", "add", "-", L, "--protocol", "https", "--hostname", "old.test", "--redirect",
      "permanent"], "ADD_HTTPS_FRONTEND",
     lambda f: {"address": L, "hostname": "old.test", "path": {"kind": "PREFIX", "value": ""},
                "tags": {}, "redirect": "PERMANENT"}),
    (["frontend", "remove", "app", L, "--https", "--hostname", "a.test", "--method", "GET"],
     "REMOVE_HTTPS_FRONTEND",
     lambda f: {"cluster_id": "app", "address": L, "hostname": "a.test",
                "path": {"kind": "PREFIX", "value": ""}, "method": "GET"}),
    (["certificate", "add", "--address", L, "--certificate", "{a.pem}", "--key", "{a.key}"],
     "ADD_CERTIFICATE",
     lambda f: {"address": L, "certificate": {"certificate": f.a_pem, "key": f.a_key,
                                              "certificate_chain": []}}),
    (["certificate", "add", "--address", L, "--certificate", "{a.pem}", "--key", "{a.key}",
      "--certificate-chain", "{chain.pem}", "--names", "a.test", "www.a.test", "--tls-versions",
      "TLS_V13", "--expired-at", "1900000000"],
     "ADD_CERTIFICATE",
     lambda f: {"address": L, "expired_at": 1900000000,
                "certificate": {"certificate": f.a_pem, "key": f.a_key,
                                "certificate_chain": [f.ca.pem], "versions": ["TLS_V1_3"],
                                "names": ["a.test", "www.a.test"]}}),
    (["certificate", "replace", "--address", L, "--old-fingerprint", FP.upper(),
      "--certificate", "{b.pem}", "--key", "{b.key}", "--expired-at", "5"],
     "REPLACE_CERTIFICATE",
     lambda f: {"address": L, "old_fingerprint": FP, "new_expired_at": 5,
                "new_certificate": {"certificate": f.b_pem, "key": f.b_key,
                                    "certificate_chain": []}}),
    (["certificate", "remove", "--address", L, "--fingerprint", FP], "REMOVE_CERTIFICATE",
     lambda f: {"address": L, "fingerprint": FP}),
    (["certificate", "list"], "QUERY_CERTIFICATES_FROM_WORKERS",
     lambda f: {"filters": {"domain": None, "fingerprint": None}}),
    (["certificate", "list", "--domain", "a.test"], "QUERY_CERTIFICATES_FROM_WORKERS",
     lambda f: {"filters": {"domain": "a.test", "fingerprint": None}}),
    (["certificate", "list", "--fingerprint", FP], "QUERY_CERTIFICATES_FROM_WORKERS",
     lambda f: {"filters": {"domain": None, "fingerprint": FP}}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "request_type", "fields"), MAPPINGS, ids=[" ".join(m[0][:4]) for m in MAPPINGS]
)
def test_arguments_map_to_requests(
    files: Files, argv: list[str], request_type: str, fields: Callable[[Files], dict[str, Any]]
) -> None:
    expected = fields(files)
    assert request_for(argv, files) == (request_type, expected)
    make_request("cli", request_type, **expected)  # and the worker would accept its shape


USAGE_ERRORS: list[tuple[list[str], str]] = [
    (["listener", "add", L, "--tls-versions", "TLS_V12"], "--tls-versions needs --protocol https"),
    (["listener", "add", L, "--http", "--certificate", "x.pem"],
     "--certificate needs --protocol https"),
    (["listener", "update", L, "--http", "--no-strict-sni-binding"],
     "--strict-sni-binding needs --protocol https"),
    (["listener", "update", L, "--no-hsts"], "--hsts needs --protocol https"),
    (["listener", "add", L, "--groups", "x25519"], "--groups needs --protocol https"),
    (["listener", "add", L, "--https", "--tls-versions", "TLS_V9"], "unknown TLS version 'TLS_V9'"),
    (["listener", "add", L, "--https", "--alpn", ","], "expected NAME[,NAME...]"),
    (["listener", "add", L, "--https", "--no-hsts", "--hsts-max-age", "5"],
     "--no-hsts takes no other --hsts-"),
    (["listener", "add", L, "--https", "--key", "k.pem"], "--key needs both --certificate"),
    (["listener", "update", L, "--https"], "nothing to update"),
    (["frontend", "add", "app", L, "--hsts"], "--hsts needs --protocol https"),
    (["frontend", "add", "app", L, "--http", "--hostname", "a", "--hsts-preload"],
     "--hsts-preload needs --protocol https"),
    (["frontend", "add", "app", L, "--https"], "--hostname is required for an HTTPS frontend"),
    (["frontend", "remove", "app", L, "--https", "--hostname", "a", "--hsts"],
     "unrecognized arguments: --hsts"),
    (["certificate", "add", "--address", L, "--certificate", "c.pem"],
     "the following arguments are required: --key"),
    (["certificate", "add", "--certificate", "c.pem", "--key", "k.pem"],
     "the following arguments are required: --address"),
    (["certificate", "remove", "--address", L, "--fingerprint", "abc"], "invalid fingerprint"),
    (["certificate", "replace", "--address", L, "--certificate", "c", "--key", "k"],
     "the following arguments are required: --old-fingerprint"),
    (["certificate", "list", "--domain", "a.test", "--fingerprint", FP],
     "not allowed with argument"),
    (["certificate", "add", "--address", L, "--certificate", "c", "--key", "k",
      "--expired-at", "-1"], "must not be negative"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"), USAGE_ERRORS, ids=[" ".join(u[0][:5]) for u in USAGE_ERRORS]
)
def test_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli_request(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: pysozu" in err
    assert message in err


FILE_ERRORS: list[tuple[list[str], str]] = [
    (["certificate", "add", "--address", L, "--certificate", "{nope}", "--key", "{a.key}"],
     "cannot read the certificate file {nope}: No such file or directory"),
    (["certificate", "add", "--address", L, "--certificate", "{a.pem}", "--key", "{nope}"],
     "cannot read the key file {nope}"),
    (["certificate", "replace", "--address", L, "--old-fingerprint", FP, "--certificate",
      "{a.pem}", "--key", "{a.key}", "--chain", "{nope}"],
     "cannot read the certificate chain file {nope}"),
    (["certificate", "add", "--address", L, "--certificate", "{garbage.pem}", "--key",
      "{a.key}"], "no PEM certificate in {garbage.pem}"),
    (["certificate", "add", "--address", L, "--certificate", "{a.pem}", "--key", "{b.key}"],
     "{b.key}: key: does not match the certificate's public key"),
    (["certificate", "add", "--address", L, "--certificate", "{a.pem}", "--key", "{a.pem}"],
     "{a.pem}: key: not an unencrypted PEM private key"),
    (["listener", "add", L, "--https", "--certificate", "{nope}", "--key", "{a.key}"],
     "cannot read the certificate file {nope}"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "message"), FILE_ERRORS, ids=[" ".join(e[0][:2]) + f" {i}"
                                           for i, e in enumerate(FILE_ERRORS)]
)
def test_unreadable_or_bad_files_send_nothing(
    files: Files, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [fill(arg, files) for arg in argv]
    message = fill(message, files)
    with pytest.raises(CliError, match="^" + re.escape(message)):
        cli_request(argv)
    # main reads the files before it connects: the missing socket is never reached
    assert main(["-s", files.path("none.sock"), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pysozu: error: {message}")
    assert "cannot reach the proxy" not in err


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def test_rendering_of_https_listeners_frontends_and_certificates(files: Files) -> None:
    listener = make_request(
        "r", "ADD_HTTPS_LISTENER", address=L, certificate=files.a_pem, key=files.a_key,
        strict_sni_binding=False, hsts={"enabled": True, "max_age": 60, "preload": True},
        versions=["TLS_V1_3"],
    ).fields
    lines = _listener_lines({"https_listeners": {L: listener}, "tcp_listeners": {}})
    assert lines == [
        "HTTPS listeners (1):",
        f"  {L}  inactive, timeouts front 60s, back 30s, connect 3s, request 10s, TLS 1.3, "
        "ALPN h2,http/1.1, default certificate, no strict SNI binding, HSTS max-age 60 preload",
        "TCP listeners (0):",
    ]
    assert "PRIVATE KEY" not in "\n".join(lines)

    front = make_request("r", "ADD_HTTPS_FRONTEND", cluster_id="web", address=L,
                         hostname="a.test", hsts={"enabled": False}).fields
    plain = make_request("r", "ADD_HTTP_FRONTEND", cluster_id="web", address="0.0.0.0:80",
                         hostname="a.test").fields
    config = make_request("r", "ADD_CLUSTER", cluster_id="web").fields
    lines = _cluster_lines(
        "web", {"configuration": config, "http_frontends": [plain], "https_frontends": [front]},
        None,
    )
    assert lines == [
        "cluster web: ROUND_ROBIN",
        "  http frontend a.test on 0.0.0.0:80",
        f"  https frontend a.test on {L}, HSTS off",
        "  no backend",
    ]
    only_https = _cluster_lines("web", {"configuration": config, "https_frontends": [front]}, None)
    assert "  no frontend" not in only_https

    content = {"certificates": {
        L: [{"fingerprint": FP, "names": ["a.test", "*.a.test"], "subject_names": ["a.test"],
             "expired_at": 1900000000, "default": True}],
        "127.0.0.1:9443": [{"fingerprint": "cd" * 32, "names": ["b.test"], "subject_names": [],
                            "expired_at": 0, "default": False,
                            "certificate": files.b_pem, "certificate_chain": [files.ca.pem]}],
    }}
    lines = _certificate_lines(content)
    assert lines[0].split() == ["ADDRESS", "FINGERPRINT", "NAMES", "EXPIRES", "DEFAULT"]
    assert lines[1].split() == [L, FP, "a.test,", "*.a.test", "2030-03-17", "17:46:40", "UTC",
                                "yes"]
    assert lines[2].split() == ["127.0.0.1:9443", "cd" * 32, "b.test", "1970-01-01",
                                "00:00:00", "UTC", "no"]
    assert lines[3:] == [files.b_pem.rstrip("\n"), files.ca.pem.rstrip("\n")]
    assert _certificate_lines({"certificates": {}}) == ["no certificates"]


# --------------------------------------------------------------------------------------------
# End to end: `pysozu start` serves HTTPS from a file, the CLI reconfigures it
# --------------------------------------------------------------------------------------------


@pytest.fixture
def workdir(files: Files, tmp_path: Path) -> Iterator[Path]:
    """A folder short enough for a unix socket, holding a copy of the PEM files."""
    folder = tmp_path if len(str(tmp_path / "pysozu.sock")) < 100 else Path(
        tempfile.mkdtemp(prefix="pysozu-https-"))
    try:
        (folder / "certs").mkdir()
        for name in ("a.pem", "a.key", "chain.pem"):
            shutil.copy(files.folder / name, folder / "certs" / name)
        yield folder
    finally:
        if folder != tmp_path:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def backend() -> Iterator[HttpBackend]:
    server = HttpBackend("app")
    try:
        yield server
    finally:
        server.close()


def test_start_serves_https_and_the_cli_manages_certificates(
    files: Files, workdir: Path, backend: HttpBackend
) -> None:
    listen = free_address()
    config = workdir / "pysozu.toml"
    config.write_text(f"""
command_socket = "pysozu.sock"
log_level = "warn"

[[listeners]]
protocol = "https"
address = "{listen}"
tls_versions = ["TLS_V12", "TLS_V13"]

[clusters.app]
protocol = "http"
backends = [{{ address = "{backend.address}" }}]

[[clusters.app.frontends]]
address = "{listen}"
hostname = "a.test"
certificate = "certs/a.pem"        # relative to this file
key = "certs/a.key"
certificate_chain = "certs/chain.pem"
""")
    proxy = ProxyProcess(workdir, "-c", str(config), socket_path=workdir / "pysozu.sock")
    try:
        proxy.wait_ready()
        assert f"https listener {listen} -> clusters app, active" in proxy.stdout

        result = https_get(listen, "a.test", "/hello", ca=files.ca)  # verified against the CA
        assert result.response is not None and result.response.status == 200
        assert result.body == b"app GET /hello"
        assert result.fingerprint == fingerprint_of(files.a_pem)

        a_fp = fingerprint_of(files.a_pem)
        header, row = proxy.ok("certificate", "list").splitlines()
        assert header.split()[:2] == ["ADDRESS", "FINGERPRINT"]
        assert row.split()[:3] == [listen, a_fp, "a.test"] and row.split()[-1] == "no"
        answer = json.loads(proxy.ok("--json", "certificate", "list", "--domain", "a.test"))
        assert [c["fingerprint"] for c in answer["content"]["certificates"][listen]] == [a_fp]
        assert "https frontend a.test on" in proxy.ok("cluster", "show", "app")
        assert f"{listen}  active" in proxy.ok("listener", "list")

        # a second site: its certificate, then its frontend
        b_fp = fingerprint_of(files.b_pem)
        out = proxy.ok("certificate", "add", "--address", listen, "--certificate",
                       files.path("b.pem"), "--key", files.path("b.key"))
        assert out.strip() == f"certificate {b_fp} added to {listen}"
        proxy.ok("frontend", "add", "app", listen, "--https", "--hostname", "b.test",
                 "--hsts-max-age", "600")
        result = https_get(listen, "b.test", "/b", ca=files.ca)
        assert result.fingerprint == b_fp
        assert result.response is not None
        assert result.response.getheader("Strict-Transport-Security") == "max-age=600"

        # a renewal, then removal
        b2_fp = fingerprint_of((files.folder / "b2.pem").read_text())
        out = proxy.ok("certificate", "replace", "--address", listen, "--old-fingerprint", b_fp,
                       "--certificate", files.path("b2.pem"), "--key", files.path("b2.key"))
        assert out.strip() == f"certificate {b_fp} replaced by {b2_fp} on {listen}"
        assert https_get(listen, "b.test", "/b", ca=files.ca).fingerprint == b2_fp
        assert b2_fp in proxy.ok("certificate", "list", "--fingerprint", b2_fp)
        proxy.ok("certificate", "remove", "--address", listen, "--fingerprint", b2_fp)
        assert b2_fp not in proxy.ok("certificate", "list")

        # listener TLS settings change live; a refused one is the worker's FAILURE
        proxy.ok("listener", "update", listen, "--https", "--hsts", "--hsts-include-subdomains")
        result = https_get(listen, "a.test", "/", ca=files.ca)
        assert result.response is not None
        assert result.response.getheader("Strict-Transport-Security") == (
            "max-age=31536000; includeSubDomains")
        failed = proxy.cli("listener", "update", listen, "--https", "--groups", "nope")
        assert failed.returncode == 1 and "nope" in failed.stderr

        # an unreadable file is the client's error: nothing reaches the proxy
        failed = proxy.cli("certificate", "add", "--address", listen, "--certificate",
                           files.path("missing.pem"), "--key", files.path("a.key"))
        assert failed.returncode == 1
        assert failed.stderr.startswith("pysozu: error: cannot read the certificate file")
        assert "Traceback" not in failed.stderr

        proxy.ok("stop", "--hard")
        assert proxy.wait_exit() == 0
    finally:
        proxy.kill()


def test_help_lists_the_certificate_verb(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "certificate" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["certificate", "add", "--help"])
    out = capsys.readouterr().out
    for option in ("--address", "--certificate", "--key", "--certificate-chain", "--names",
                   "--expired-at"):
        assert option in out
