"""Default answers: built-in templates, user templates, rendering rules and lookup order
(Sōzu's lib/src/protocol/kawa_h1/answers.rs and doc/configure.md "Custom HTTP answer
templates")."""

from __future__ import annotations

import http.client
import io
import re

import pytest

from pysozu.parser.errors import ERRORS
from pysozu.protocols import answers as answers_module
from pysozu.protocols.answers import (
    ANSWER_STATUSES,
    BODY_ONLY_PLACEHOLDERS,
    BUILTIN_TEMPLATE_TEXTS,
    HEADER_ONLY_PLACEHOLDERS,
    MAX_TEMPLATE_SIZE,
    PLACEHOLDERS,
    STATUS_PLACEHOLDERS,
    AnswerError,
    Answers,
    RenderedAnswer,
    Template,
    builtin_template,
    load_template_source,
)

# ----------------------------------------------------------------------------- helpers

_STATUS_LINE = re.compile(rb"HTTP/1\.[01] [0-9]{3} [\t\x20-\x7e\x80-\xff]*")
_HEADER_LINE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [\t\x20-\x7e\x80-\xff]*")


class _FakeSocket:
    """Just enough of a socket for http.client.HTTPResponse."""

    def __init__(self, data: bytes) -> None:
        self._file = io.BytesIO(data)

    def makefile(self, *_args, **_kwargs):
        return self._file


def strict_parse(data: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    """Parse a rendered answer strictly (CRLF only, token names, no control bytes, a single
    Content-Length equal to the body length) and cross-check it with http.client."""
    head, sep, body = data.partition(b"\r\n\r\n")
    assert sep, "no end of head"
    lines = head.split(b"\r\n")
    for line in lines:
        assert b"\n" not in line and b"\r" not in line, line
    assert _STATUS_LINE.fullmatch(lines[0]), lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        assert _HEADER_LINE.fullmatch(line), line
        name, _, value = line.partition(b": ")
        headers.append((name.decode(), value.decode("utf-8")))
    lengths = [v for n, v in headers if n.lower() == "content-length"]
    assert len(lengths) <= 1
    if lengths:
        assert int(lengths[0]) == len(body)
    status = int(lines[0].split(b" ")[1])

    response = http.client.HTTPResponse(_FakeSocket(data))  # type: ignore[arg-type]
    response.begin()
    assert response.status == status
    assert response.read() == body
    return status, headers, body


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n.lower() == name.lower()]


FULL = {name: f"v-{name.lower()}" for name in PLACEHOLDERS}


# ----------------------------------------------------------------------------- built-ins


def test_builtin_statuses_are_soezu_s_and_the_parser_s():
    assert ANSWER_STATUSES == (
        301, 302, 308, 400, 401, 404, 408, 413, 414, 421, 429, 431, 501, 502, 503, 504, 505,
        507,
    )
    assert set(BUILTIN_TEMPLATE_TEXTS) == set(ANSWER_STATUSES) == set(STATUS_PLACEHOLDERS)


def test_every_parser_status_has_an_answer():
    # whatever the HTTP/1 parser refuses a request with, a template answers it
    assert {status for status, _ in ERRORS.values()} <= set(ANSWER_STATUSES)


@pytest.mark.parametrize("status", ANSWER_STATUSES)
def test_builtin_renders_a_valid_response(status):
    template = builtin_template(status)
    assert template.status == status
    assert template.closes and template.has_content_length and template.escapes_html
    rendered = template.render(FULL)
    assert isinstance(rendered, RenderedAnswer)
    assert rendered.close is True
    code, headers, body = strict_parse(rendered.data)
    assert code == status
    assert header(headers, "Cache-Control") == ["no-cache"]
    assert header(headers, "Connection") == ["close"]
    assert header(headers, "Sozu-Id") == ["v-request_id"]
    assert body.startswith(b"<!DOCTYPE html>") and f"<h1>{status} ".encode() in body
    # Every placeholder the template uses was substituted, and no placeholder is left over.
    assert not re.search(rb"%[A-Z_]{4,}", rendered.data)
    for name in template.placeholders:
        assert FULL[name].encode() in rendered.data, name


@pytest.mark.parametrize(
    ("status", "used"),
    [
        (301, {"ROUTE", "REQUEST_ID", "REDIRECT_LOCATION"}),
        (302, {"ROUTE", "REQUEST_ID", "REDIRECT_LOCATION"}),
        (308, {"ROUTE", "REQUEST_ID", "REDIRECT_LOCATION"}),
        (400, {"ROUTE", "REQUEST_ID", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED",
               "PARTIALLY_PARSED", "INVALID"}),
        (401, {"ROUTE", "REQUEST_ID", "WWW_AUTHENTICATE"}),
        (404, {"ROUTE", "REQUEST_ID"}),
        (408, {"ROUTE", "REQUEST_ID", "DURATION"}),
        (413, {"ROUTE", "REQUEST_ID", "CAPACITY", "MESSAGE", "PHASE"}),
        (414, {"ROUTE", "REQUEST_ID", "CAPACITY", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED",
               "PARTIALLY_PARSED", "INVALID"}),
        (421, {"ROUTE", "REQUEST_ID"}),
        (429, {"ROUTE", "REQUEST_ID", "CLUSTER_ID", "RETRY_AFTER"}),
        (431, {"ROUTE", "REQUEST_ID", "CAPACITY", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED",
               "PARTIALLY_PARSED", "INVALID"}),
        (501, {"ROUTE", "REQUEST_ID", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED",
               "PARTIALLY_PARSED", "INVALID"}),
        (502, {"ROUTE", "REQUEST_ID", "CLUSTER_ID", "BACKEND_ID", "MESSAGE", "PHASE",
               "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID"}),
        (503, {"ROUTE", "REQUEST_ID", "CLUSTER_ID", "BACKEND_ID", "MESSAGE"}),
        (504, {"ROUTE", "REQUEST_ID", "CLUSTER_ID", "BACKEND_ID", "DURATION"}),
        (505, {"ROUTE", "REQUEST_ID", "MESSAGE", "PHASE", "SUCCESSFULLY_PARSED",
               "PARTIALLY_PARSED", "INVALID"}),
        (507, {"ROUTE", "REQUEST_ID", "CLUSTER_ID", "BACKEND_ID", "CAPACITY", "MESSAGE",
               "PHASE"}),
    ],
)
def test_builtin_uses_every_placeholder_of_its_status(status, used):
    assert STATUS_PLACEHOLDERS[status] == used
    assert builtin_template(status).placeholders == used


@pytest.mark.parametrize(
    ("status", "name", "variable", "value"),
    [
        (301, "Location", "REDIRECT_LOCATION", "https://example.com/a?b=c"),
        (302, "Location", "REDIRECT_LOCATION", "https://example.com/"),
        (308, "Location", "REDIRECT_LOCATION", "https://example.com/x"),
        (401, "WWW-Authenticate", "WWW_AUTHENTICATE", 'Basic realm="app"'),
        (429, "Retry-After", "RETRY_AFTER", "30"),
    ],
)
def test_builtin_special_headers_render_and_elide(status, name, variable, value):
    _, headers, _ = strict_parse(builtin_template(status).render({variable: value}).data)
    assert header(headers, name) == [value]
    # Empty (or missing) value: the whole line goes, and so does Sozu-Id without a request id.
    _, headers, _ = strict_parse(builtin_template(status).render({variable: ""}).data)
    assert header(headers, name) == []
    assert header(headers, "Sozu-Id") == []


def test_builtin_with_no_variables_still_parses():
    for status in ANSWER_STATUSES:
        code, _, _ = strict_parse(builtin_template(status).render({}).data)
        assert code == status


def test_builtin_body_values_are_html_escaped():
    rendered = builtin_template(404).render({"ROUTE": "GET /<script>alert('x')</script>&"})
    _, _, body = strict_parse(rendered.data)
    assert b"<script>" not in body
    assert b"GET /&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;" in body


PARSER_REASONS = {
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


@pytest.mark.parametrize("status", sorted(PARSER_REASONS))
def test_builtin_parser_statuses(status):
    """The parser's statuses: RFC 9110 reason phrase, a closing HTML page that shows the
    parser's reason (%MESSAGE) and the parse details, like 400."""
    reason = PARSER_REASONS[status]
    template = builtin_template(status)
    assert template.closes and template.has_content_length and template.escapes_html
    assert BUILTIN_TEMPLATE_TEXTS[status].startswith(f"HTTP/1.1 {status} {reason}\r\n")
    assert STATUS_PLACEHOLDERS[status] >= STATUS_PLACEHOLDERS[400]
    variables = {
        "REQUEST_ID": "req-1", "ROUTE": "/r", "MESSAGE": "the parser said no",
        "PHASE": "head", "SUCCESSFULLY_PARSED": "GET /", "PARTIALLY_PARSED": "HTT",
        "INVALID": "P/9.9", "CAPACITY": 16383,
    }
    data, close = template.render(variables)
    assert close is True
    assert data.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode())
    code, headers, body = strict_parse(data)
    assert code == status
    assert header(headers, "Connection") == ["close"]
    assert header(headers, "Sozu-Id") == ["req-1"]
    assert header(headers, "Content-Type") == ["text/html; charset=utf-8"]
    assert f"<title>{status} {reason}</title>".encode() in body
    assert b"the parser said no</p>" in body
    assert b"request id: req-1\nroute:      /r\n" in body
    assert b"phase:      head\nparsed:     GET /\npartial:    HTT\ninvalid:    P/9.9" in body
    if status in (414, 431):
        assert b"head limit: 16383\n" in body
    else:
        assert b"head limit" not in body
    # rendered bare (what a parse error before any request id would give): still valid
    code, headers, body = strict_parse(template.render({"MESSAGE": "m"}).data)
    assert code == status and header(headers, "Sozu-Id") == []


@pytest.mark.parametrize("status", sorted(PARSER_REASONS))
def test_builtin_parser_statuses_escape_the_message(status):
    message = "<img src=x onerror='alert(1)'> & \"more\""
    _, _, body = strict_parse(
        builtin_template(status).render({"MESSAGE": message, "INVALID": "</pre><b>"}).data
    )
    assert b"<img" not in body and b"</pre><b>" not in body
    assert (b"&lt;img src=x onerror=&#x27;alert(1)&#x27;&gt; &amp; &quot;more&quot;</p>"
            in body)
    assert b"invalid:    &lt;/pre&gt;&lt;b&gt;</pre>" in body


@pytest.mark.parametrize("status", sorted(PARSER_REASONS))
def test_parser_status_templates_are_overridable(status):
    reason = PARSER_REASONS[status]
    text = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            "custom: %MESSAGE")
    answers = Answers({str(status): text})
    data, close = answers.render(status, None, {"MESSAGE": "why"})
    assert close is True
    assert body_of(RenderedAnswer(data, close)) == b"custom: why"
    answers.set_cluster("app", {status: text.replace("custom", "cluster")})
    assert body_of(answers.render(status, "app", {"MESSAGE": "why"})) == b"cluster: why"
    assert body_of(answers.render(status, "other", {"MESSAGE": "why"})) == b"custom: why"
    answers.set_listener({})
    assert answers.template(status) is builtin_template(status)


@pytest.mark.parametrize(
    ("status", "text", "message"),
    [
        (414, "HTTP/1.1 414 URI Too Long\r\n\r\n%CLUSTER_ID",
         "%CLUSTER_ID is not available in the 414"),
        (431, "HTTP/1.1 431 X\r\nX-M: %MESSAGE\r\n\r\n", "only be used in the body"),
        (501, "HTTP/1.1 501 Not Implemented\r\n\r\n%CAPACITY",
         "%CAPACITY is not available in the 501"),
        (505, "HTTP/1.1 505 X\r\n\r\n%BACKEND_ID", "%BACKEND_ID is not available in the 505"),
        (505, "HTTP/1.1 400 Bad Request\r\n\r\n", "says 400, expected 505"),
    ],
)
def test_parser_status_templates_are_checked(status, text, message):
    with pytest.raises(AnswerError, match=message):
        Template.parse(text, status)


def test_builtin_template_unknown_status():
    with pytest.raises(AnswerError, match="no answer is defined for status 500"):
        builtin_template(500)


# ----------------------------------------------------------------------------- user templates


def test_user_template_content_length_is_recomputed():
    text = (
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 4\r\n\r\n"
        "busy: %MESSAGE (%CLUSTER_ID)"
    )
    template = Template.parse(text, 503)
    assert template.has_content_length and template.closes and not template.escapes_html
    data, close = template.render({"MESSAGE": "no backend", "CLUSTER_ID": "app"})
    assert close is True
    _, headers, body = strict_parse(data)
    assert body == b"busy: no backend (app)"
    assert header(headers, "Content-Length") == [str(len(body))]


def test_user_template_without_content_length_gets_none_and_closes():
    template = Template.parse("HTTP/1.1 404 Not Found\n\nnothing here %ROUTE", 404)
    assert not template.has_content_length
    assert template.closes  # the body is delimited by the close
    data, close = template.render({"ROUTE": "/x"})
    assert close is True
    assert data == b"HTTP/1.1 404 Not Found\r\n\r\nnothing here /x"
    assert b"Content-Length" not in data


@pytest.mark.parametrize(
    ("connection", "content_length", "closes"),
    [
        ("Connection: close\r\n", True, True),
        ("connection: Close\r\n", True, True),
        ("Connection: keep-alive, close\r\n", True, True),
        ("Connection: keep-alive\r\n", True, False),
        ("", True, False),
        ("", False, True),
        ("Connection: keep-alive\r\n", False, True),
    ],
)
def test_closes_flag(connection, content_length, closes):
    length = "Content-Length: 2\r\n" if content_length else ""
    template = Template.parse(f"HTTP/1.1 503 Busy\r\n{connection}{length}\r\nok", 503)
    assert template.closes is closes
    assert template.render({}).close is closes


def test_keep_alive_template_renders():
    template = Template.parse(
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-Route: %ROUTE\r\n\r\n", 404
    )
    data, close = template.render({"ROUTE": "/a"})
    assert close is False
    assert data == b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nX-Route: /a\r\n\r\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # LF only: the head is rewritten with CRLF, the body keeps its bytes.
        ("HTTP/1.1 404 Not Found\nContent-Length: 1\nX-A: b\n\nline1\nline2\n",
         b"HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nX-A: b\r\n\r\nline1\nline2\n"),
        # Mixed endings.
        ("HTTP/1.1 404 Not Found\r\nX-A: b\n\r\nbody\r\n",
         b"HTTP/1.1 404 Not Found\r\nX-A: b\r\n\r\nbody\r\n"),
        # Optional whitespace around values is trimmed; a missing reason phrase is allowed.
        ("HTTP/1.0 404\r\nX-A:   b \t\r\n\r\n", b"HTTP/1.0 404 \r\nX-A: b\r\n\r\n"),
        # A header written empty (no placeholder) is kept.
        ("HTTP/1.1 404 Not Found\r\nX-Empty:\r\n\r\n",
         b"HTTP/1.1 404 Not Found\r\nX-Empty: \r\n\r\n"),
        # %word that is not a placeholder is plain text, in headers and body.
        ("HTTP/1.1 404 Not Found\r\nX-P: 100%\r\n\r\n%20 %route %FOO 50%",
         b"HTTP/1.1 404 Not Found\r\nX-P: 100%\r\n\r\n%20 %route %FOO 50%"),
    ],
)
def test_normalisation(text, expected):
    assert Template.parse(text, 404).render({}).data == expected


def test_bytes_template_and_non_utf8_body():
    template = Template.parse(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n\xff\xfe", 404)
    _, _, body = strict_parse(template.render({}).data)
    assert body == b"\xff\xfe"


def test_placeholders_anywhere_in_a_header_value():
    template = Template.parse(
        "HTTP/1.1 503 Service Unavailable\r\nLink: </status/%CLUSTER_ID>; rel=%BACKEND_ID\r\n"
        "Content-Length: 0\r\n\r\n",
        503,
    )
    _, headers, _ = strict_parse(template.render({"CLUSTER_ID": "c", "BACKEND_ID": "b"}).data)
    assert header(headers, "Link") == ["</status/c>; rel=b"]


@pytest.mark.parametrize(
    ("variables", "kept"),
    [
        ({"CLUSTER_ID": "app"}, ["app"]),
        ({"CLUSTER_ID": ""}, []),
        ({"CLUSTER_ID": "   "}, []),  # blanks only: empty once trimmed
        ({}, []),
        ({"CLUSTER_ID": b""}, []),
        ({"CLUSTER_ID": 0}, ["0"]),
    ],
)
def test_header_elision(variables, kept):
    template = Template.parse(
        "HTTP/1.1 503 Service Unavailable\r\nX-Cluster: %CLUSTER_ID\r\nContent-Length: 0\r\n"
        "X-Static: yes\r\n\r\n",
        503,
    )
    _, headers, _ = strict_parse(template.render(variables).data)
    assert header(headers, "X-Cluster") == kept
    assert header(headers, "X-Static") == ["yes"]


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("a\r\nSet-Cookie: owned=1", b"a%0D%0ASet-Cookie: owned=1"),
        ("a\n\nbody", b"a%0A%0Abody"),
        ("\r\n\r\nHTTP/1.1 200 OK", b"%0D%0A%0D%0AHTTP/1.1 200 OK"),
        ("nul\x00byte", b"nul%00byte"),
        ("del\x7f", b"del%7F"),
        ("tab\there", b"tab%09here"),
        (b"raw\r\nX-Evil: 1", b"raw%0D%0AX-Evil: 1"),
        ("é/ü", "é/ü".encode()),
    ],
)
def test_header_injection_is_neutralised(value, escaped):
    for status, name, variable in [
        (301, "Location", "REDIRECT_LOCATION"),
        (401, "WWW-Authenticate", "WWW_AUTHENTICATE"),
        (503, "Sozu-Id", "REQUEST_ID"),
    ]:
        rendered = builtin_template(status).render({variable: value}).data
        code, headers, _ = strict_parse(rendered)
        assert code == status
        assert header(headers, name) == [escaped.decode()]
        assert header(headers, "Set-Cookie") == header(headers, "X-Evil") == []
        assert rendered.count(b"\r\n\r\n") >= 1
        assert rendered.index(b"\r\n\r\n") > rendered.index(name.encode())


def test_body_values_are_verbatim_without_html_content_type():
    template = Template.parse(
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n{\"msg\": %MESSAGE}", 400
    )
    data, _ = template.render({"MESSAGE": '"a\r\n\r\n<b>"'})
    _, _, body = strict_parse(data)
    assert body == b'{"msg": "a\r\n\r\n<b>"}'


def test_substitution_is_single_pass():
    template = Template.parse(
        "HTTP/1.1 404 Not Found\r\nX-Id: %REQUEST_ID\r\nContent-Length: 0\r\n\r\n%REQUEST_ID",
        404,
    )
    data, _ = template.render({"REQUEST_ID": "%ROUTE", "ROUTE": "/never"})
    assert b"/never" not in data
    assert data.endswith(b"\r\n\r\n%ROUTE")


def test_repeated_placeholder_and_static_template():
    template = Template.parse(
        "HTTP/1.1 301 Moved Permanently\r\nLocation: %REDIRECT_LOCATION\r\n"
        "Content-Length: 0\r\n\r\n<a href='%REDIRECT_LOCATION'>%REDIRECT_LOCATION</a>",
        301,
    )
    _, _, body = strict_parse(template.render({"REDIRECT_LOCATION": "/n"}).data)
    assert body == b"<a href='/n'>/n</a>"
    static = Template.parse("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno route.", 404)
    assert static.placeholders == frozenset()
    assert static.render({"ROUTE": "x"}).data is static.render({}).data


@pytest.mark.parametrize(
    ("text", "status", "message"),
    [
        ("", 503, "the template is empty"),
        (b"", 503, "the template is empty"),
        ("\r\n\r\n", 503, "must start with a status line"),
        ("HTTP/1.1 503 Service Unavailable\r\nConnection: close", 503, "empty line"),
        ("HTTP/1.1 503 Service Unavailable", 503, "empty line"),
        ("HTTP/1.1 404 Not Found\r\n\r\n", 503, "says 404, expected 503"),
        ("HTTP/2 503 Service Unavailable\r\n\r\n", 503, "not a status line"),
        ("HTTP/1.1 5O3 Service Unavailable\r\n\r\n", 503, "not a status line"),
        ("GET / HTTP/1.1\r\n\r\n", 503, "not a status line"),
        (" HTTP/1.1 503 Service Unavailable\r\n\r\n", 503, "not a status line"),
        ("HTTP/1.1 503 Bad\x00Reason\r\n\r\n", 503, "reason phrase"),
        ("HTTP/1.1 503 X\r\nX-A: b\r\n folded\r\n\r\n", 503, "line 3: obsolete line folding"),
        ("HTTP/1.1 503 X\r\nNoColon\r\n\r\n", 503, "line 2: .* is not a 'Name: value'"),
        ("HTTP/1.1 503 X\r\nX-A : b\r\n\r\n", 503, "blank between the header name"),
        ("HTTP/1.1 503 X\r\nBad Name: b\r\n\r\n", 503, "not a valid header name"),
        ("HTTP/1.1 503 X\r\n: b\r\n\r\n", 503, "not a valid header name"),
        ("HTTP/1.1 503 X\r\nX-Ü: b\r\n\r\n", 503, "not a valid header name"),
        ("HTTP/1.1 503 X\r\nX-A: a\rb\r\n\r\n", 503, "control byte"),
        ("HTTP/1.1 503 X\r\nX-A: a\x00b\r\n\r\n", 503, "control byte"),
        ("HTTP/1.1 503 X\r\nX-A: a\x7f\r\n\r\n", 503, "control byte"),
        ("HTTP/1.1 503 X\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\nx", 503,
         "second Content-Length"),
        ("HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 503,
         "Transfer-Encoding"),
        ("HTTP/1.1 401 X\r\n\r\n%WWW_AUTHENTICATE", 401, "only be used in a header"),
        ("HTTP/1.1 429 X\r\n\r\nretry in %RETRY_AFTER s", 429, "only be used in a header"),
        ("HTTP/1.1 503 X\r\nX-Msg: %MESSAGE\r\n\r\n", 503, "only be used in the body"),
        ("HTTP/1.1 400 X\r\nX-I: %INVALID\r\n\r\n", 400, "only be used in the body"),
        ("HTTP/1.1 404 X\r\n\r\n%CLUSTER_ID", 404, "%CLUSTER_ID is not available in the 404"),
        ("HTTP/1.1 503 X\r\nLocation: %REDIRECT_LOCATION\r\n\r\n", 503,
         "line 2: %REDIRECT_LOCATION is not available"),
        ("HTTP/1.1 500 Internal Server Error\r\n\r\n", 500, "no answer is defined for status"),
        ("file:///etc/sozu/503.http", 503, "file:// source"),
    ],
)
def test_invalid_templates_are_rejected(text, status, message):
    with pytest.raises(AnswerError, match=message):
        Template.parse(text, status)


def test_oversized_template_is_rejected():
    text = "HTTP/1.1 503 X\r\n\r\n" + "x" * MAX_TEMPLATE_SIZE
    with pytest.raises(AnswerError, match="more than"):
        Template.parse(text, 503)


def test_answer_error_is_a_value_error():
    assert issubclass(AnswerError, ValueError)


def test_placeholder_classes_match_soezu():
    assert {"WWW_AUTHENTICATE", "RETRY_AFTER"} == HEADER_ONLY_PLACEHOLDERS
    assert {
        "MESSAGE", "SUCCESSFULLY_PARSED", "PARTIALLY_PARSED", "INVALID",
    } == BODY_ONLY_PLACEHOLDERS
    assert len(PLACEHOLDERS) == 14


# ----------------------------------------------------------------------------- sources

TEMPLATE_503 = "HTTP/1.1 503 Service Unavailable\nContent-Length: 0\n\nfrom file %MESSAGE\n"


def test_inline_source_is_returned_unchanged():
    inline = "HTTP/1.1 503 Service Unavailable\r\n\r\nbusy"
    assert load_template_source(inline) == inline
    assert load_template_source(inline, "/nonexistent") == inline
    assert load_template_source("") == ""


def test_file_source_absolute_relative_and_cwd(tmp_path, monkeypatch):
    (tmp_path / "t").mkdir()
    path = tmp_path / "t" / "503.http"
    path.write_text(TEMPLATE_503, encoding="utf-8")
    assert load_template_source(f"file://{path}") == TEMPLATE_503
    assert load_template_source(f"file://{path}", "/elsewhere") == TEMPLATE_503  # absolute wins
    assert load_template_source("file://t/503.http", str(tmp_path)) == TEMPLATE_503
    monkeypatch.chdir(tmp_path)
    assert load_template_source("file://t/503.http") == TEMPLATE_503
    text = load_template_source("file://t/503.http")
    data, _ = Template.parse(text, 503).render({"MESSAGE": "m"})
    assert strict_parse(data)[2] == b"from file m\n"


@pytest.mark.parametrize(
    ("make", "source", "message"),
    [
        (None, "file://missing.http", r"cannot read answer template file '.*missing\.http'"),
        ("dir", "file://adir", r"cannot read answer template file '.*adir'"),
        ("latin1", "file://latin1.http", r"'.*latin1\.http' is not UTF-8 \(invalid byte at"),
        ("big", "file://big.http", r"'.*big\.http' is larger than"),
        (None, "file://", "no path after file://"),
    ],
)
def test_file_source_errors(tmp_path, make, source, message):
    if make == "dir":
        (tmp_path / "adir").mkdir()
    elif make == "latin1":
        (tmp_path / "latin1.http").write_bytes(b"HTTP/1.1 503 X\r\n\r\nd\xe9j\xe0")
    elif make == "big":
        (tmp_path / "big.http").write_bytes(b"x" * (MAX_TEMPLATE_SIZE + 1))
    with pytest.raises(AnswerError, match=message):
        load_template_source(source, str(tmp_path))


# ----------------------------------------------------------------------------- registry


def _custom(status: int, marker: str) -> str:
    reason = http.client.responses[status]
    return f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n\r\n{marker}"


def body_of(rendered: RenderedAnswer) -> bytes:
    return strict_parse(rendered.data)[2]


def test_lookup_order_cluster_then_listener_then_builtin():
    answers = Answers({503: _custom(503, "listener-503"), "404": _custom(404, "listener-404")})
    answers.set_cluster("app", {"503": _custom(503, "app-503")})

    cases = [
        (503, "app", b"app-503"),        # cluster override
        (404, "app", b"listener-404"),   # the cluster has no 404: listener
        (503, "other", b"listener-503"),  # unknown cluster: listener
        (503, None, b"listener-503"),    # no cluster: listener
        (502, "app", None),              # nobody overrides 502: built-in
    ]
    for status, cluster, expected in cases:
        rendered = answers.render(status, cluster, {"REQUEST_ID": "r"})
        if expected is None:
            assert rendered.data == builtin_template(status).render({"REQUEST_ID": "r"}).data
        else:
            assert body_of(rendered) == expected
        assert answers.template(status, cluster).status == status

    answers.remove_cluster("app")
    assert not answers.has_cluster("app")
    assert body_of(answers.render(503, "app", {})) == b"listener-503"
    answers.remove_cluster("app")  # removing twice is harmless


def test_default_registry_is_builtin():
    answers = Answers()
    for status in ANSWER_STATUSES:
        assert answers.template(status, "any") is builtin_template(status)
    data, close = answers.render(504, None, {"DURATION": "30s", "CLUSTER_ID": "c"})
    assert close is True and b"30s" in data


def test_set_cluster_replaces_and_empty_removes():
    answers = Answers()
    answers.set_cluster("app", {503: _custom(503, "one"), 404: _custom(404, "nf")})
    answers.set_cluster("app", {503: _custom(503, "two")})
    assert body_of(answers.render(503, "app", {})) == b"two"
    assert answers.template(404, "app") is builtin_template(404)  # the old 404 is gone
    answers.set_cluster("app", {})
    assert not answers.has_cluster("app")


def test_set_listener_replaces():
    answers = Answers({503: _custom(503, "old")})
    answers.set_listener({404: _custom(404, "new")})
    assert answers.template(503) is builtin_template(503)
    assert body_of(answers.render(404, None, {})) == b"new"


def test_empty_template_text_means_no_override():
    answers = Answers({503: ""})
    assert answers.template(503) is builtin_template(503)


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        ({500: _custom(500, "x")}, r"listener: no answer is defined for status 500"),
        ({"418": _custom(418, "x")}, r"listener: no answer is defined for status 418"),
        ({"5xx": "x"}, r"listener: answer key '5xx' is not an HTTP status code"),
        ({"0503": "x"}, r"not an HTTP status code"),
        ({True: "x"}, r"not an HTTP status code"),
        ({503: _custom(404, "x")}, r"listener: answer template for 503: .*says 404"),
        ({503: "file://503.http"}, r"load_template_source"),
    ],
)
def test_registry_rejects_at_configuration_time(templates, message):
    with pytest.raises(AnswerError, match=message):
        Answers(templates)


def test_failed_update_changes_nothing():
    answers = Answers()
    answers.set_cluster("app", {503: _custom(503, "kept")})
    with pytest.raises(AnswerError, match=r"cluster 'app': answer template for 404"):
        answers.set_cluster("app", {503: _custom(503, "new"), 404: "HTTP/1.1 404 X\r\n"})
    assert body_of(answers.render(503, "app", {})) == b"kept"
    answers2 = Answers({503: _custom(503, "listener")})
    with pytest.raises(AnswerError):
        answers2.set_listener({503: "garbage"})
    assert body_of(answers2.render(503, None, {})) == b"listener"


def test_render_unknown_status_is_an_error():
    with pytest.raises(AnswerError, match="no answer is defined for status 500"):
        Answers().render(500, None, {})


def test_templates_are_parsed_at_configuration_time_only(monkeypatch):
    answers = Answers({503: _custom(503, "l")})
    answers.set_cluster("app", {404: _custom(404, "c")})
    calls = []
    original = Template.parse.__func__  # type: ignore[attr-defined]

    def counting(cls, text, status):
        calls.append(status)
        return original(cls, text, status)

    monkeypatch.setattr(answers_module.Template, "parse", classmethod(counting))
    for _ in range(3):
        for status in ANSWER_STATUSES:
            answers.render(status, "app", FULL)
    assert calls == []
