"""Reliability, part "abuse": hostile requests over real HTTP get a 4xx and store nothing.

Against the session's `platform` (`python -m local_platform`), a user with some tasks, one with
an attachment (the *abuser*), and another user (the *victim*) are made once; every test throws
one kind of abuse at the API and ends by checking that both users' task lists, versions and
attachments are exactly what they were before. Every response passes `check`: never a 5xx,
never a stack trace or a server path in the body; an error from the handler is
`application/problem+json` fitting the OpenAPI `Problem` schema, an error from the gateway
itself is API Gateway's `{"message": "..."}` (401, and 400/413 for paths and bodies it refuses).

What each kind of abuse gets, and why:

* **Bodies over `api.max_body_bytes`** (64 KiB, `Pulumi.dev.yaml`): the handler's 413
  `body-too-large`, on every route that takes a body, counted in bytes (not characters),
  chunked or not. The gateway, like API Gateway, passes anything up to its own 10 MiB payload
  quota to the function (HTTP APIs have no body limit of their own to configure); over it, the
  gateway answers 413 `{"message":"Request Entity Too Large"}` itself, before the authorizer,
  without reading a body whose `Content-Length` already says so.
* **Deep nesting**: past what the parser takes, 400 `malformed-json`; a nested value where a
  string belongs, 422 naming the field.
* **10,000-character fields** (ASCII, astral, combining): 422 naming the field (title 200,
  description 4,000, tag 32, filename 255 characters; code points are what count); a 10k
  `Idempotency-Key` 400, a 10k `If-Match` 412, a 10k cursor 400.
* **Unicode that is not text**: bytes that are not UTF-8 (overlong, CESU-8 surrogates, 5-byte
  forms, > U+10FFFF), UTF-16/32 bodies and a leading BOM are 400 `malformed-json` (RFC 8259:
  JSON between systems is UTF-8, without a BOM). Lone surrogates (`"\\ud800"`, valid JSON
  grammar, not Unicode: RFC 8259 section 8.2, forbidden by I-JSON) are 400 wherever they are,
  keys included: no UTF-8 response could echo them, and none may be stored. NUL and other
  control characters, escaped, are 422 in any field; raw in a string, 400 (JSON forbids them).
* **Unicode that is text** is the user's to write: emoji (ZWJ sequences, flags, skin tones),
  right-to-left scripts, bidirectional controls and isolates in a title (mixed-direction text
  needs them; showing them safely is the client's job), combining marks (never normalized:
  `e` + U+0301 stays two code points), a U+FEFF inside a string. These are 201 and come back
  byte for byte, in the create answer, the task and the list.
* **Attachment names** that are, or could be read as, a path or another name are 422: `../`,
  absolute and drive paths, backslashes, percent-encoded (`..%2F`, `%252F`, `%c0%af`),
  fullwidth and look-alike slashes, only dots, and bidirectional controls (`invoice\\u202efdp
  .exe` shows as `invoiceexe.pdf`). The same in the URL is 404 (or the gateway's 400 for a path
  that is not UTF-8 twice decoded); it never reaches another object.
* **Forged tokens** (another key, a tampered payload or signature, `alg: none`, HS256 keyed
  with the public key, an embedded `jwk`, a traversal `kid`, expired, not yet valid, wrong
  issuer or audience) are the gateway's 401 on every route, the victim's tasks included; a
  genuine token without a subject is the handler's 401.
* **Tampered cursors** (every character flipped at soak scale, re-encoded payloads, guessed
  secrets, another user's or another route's cursor) are 400 `invalid-cursor`.

Every request counts into the ledger part "abuse".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from local_platform.auth import DevIssuer
from local_platform.gateway import MAX_PAYLOAD_BYTES
from local_platform.process import ROOT, Platform
from stack.config import StackConfig
from tests.e2e.api_client import assert_schema, create, describe, list_all, new_user
from tests.e2e.tokens import b64url, claims_for, unauthorized_headers_for
from tests.reliability.ledger import LEDGER, counting, scale

PART = "abuse"
MAX_BODY = StackConfig.from_stack_file("dev").max_body_bytes  # the stack the platform runs
JSON = "application/json"
PROBLEM = "application/problem+json"
JSON_HEADERS = {"Content-Type": JSON}
GATEWAY_MESSAGES = {
    400: "Bad Request",
    401: "Unauthorized",
    413: "Request Entity Too Large",
}
LEAKS = ("Traceback", 'File "', str(ROOT), "site-packages", "botocore", "pynamodb")
APPROVERS = "approvers"
MEBIBYTE = 1024 * 1024
CURSOR_FLIPS = scale(12, 10_000)  # characters of a cursor flipped one at a time (soak: all)
TOKEN_STRIDE = scale(4, 1)  # a forged token on every n-th request (soak: on every one)
Expected = tuple[int, str]  # (status, problem code, or the gateway's message)


# -- checking every answer ---------------------------------------------------------------------


def check(response: httpx.Response) -> None:
    """Every answer: no 5xx, no internals; errors are problems (handler) or the gateway's own."""
    response.read()
    assert response.status_code < 500, f"server error: {describe(response)}"
    text = response.text
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked: {describe(response)}"
    if response.status_code < 400:
        return
    content_type = response.headers.get("content-type", "").split(";")[0].strip()
    if content_type == PROBLEM:
        body = response.json()
        assert_schema("Problem", body)
        assert body["status"] == response.status_code, describe(response)
    else:
        assert content_type == JSON, describe(response)
        message = GATEWAY_MESSAGES.get(response.status_code)
        assert response.json() == {"message": message}, describe(response)


def expect(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """`status`, and `kind`: the problem's code (`urn:tasks:problem:<kind>`), or for an answer
    of the gateway's own, its message."""
    assert response.status_code == status, describe(response)
    body: dict[str, Any] = response.json()
    if response.headers["content-type"].startswith(PROBLEM):
        assert body["type"] == f"urn:tasks:problem:{kind}", describe(response)
    else:
        assert body == {"message": kind}, describe(response)
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Bearer"), describe(response)
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {error["field"] for error in body.get("errors", [])}


@contextmanager
def client_for(
    platform: Platform,
    user: str | None,
    *groups: str,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> Iterator[httpx.Client]:
    """A client as `user` (none: no token), counted into the ledger, every answer checked."""
    token = {"Authorization": f"Bearer {platform.token(user, *groups)}"} if user else {}
    with (
        httpx.Client(
            base_url=platform.url,
            headers={**token, **(headers or {})},
            timeout=timeout,
            trust_env=False,
            event_hooks={"request": [], "response": []},
        ) as client,
        counting(PART, client),
    ):
        client.event_hooks["response"].append(check)
        yield client


def raw_request(
    platform: Platform,
    method: str,
    target: str,
    headers: dict[str, str],
    body: bytes | None = None,
) -> httpx.Response:
    """A request sent as written, by http.client: no dot-segment removal, no re-encoding of the
    target, and any `Content-Length`, true or not (the body is not sent when it lies)."""
    url = urlsplit(platform.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        answer = connection.getresponse()
        response = httpx.Response(
            answer.status,
            headers=answer.getheaders(),
            content=answer.read(),
            request=httpx.Request(method, platform.url + target),
        )
    finally:
        connection.close()
    LEDGER.part(PART).sent(response)
    check(response)
    return response


# -- the users, and what they have -------------------------------------------------------------


@attrs.frozen
class Owner:
    user: str
    tasks: tuple[str, ...]
    before: tuple[dict[str, Any], ...]  # the full list, newest first


@attrs.frozen
class People:
    abuser: Owner
    victim: Owner
    attachment: str  # on abuser.tasks[0]

    def assert_unchanged(self, platform: Platform) -> None:
        """Both users' tasks (every field, the version, the attachments) are as they were."""
        for owner in (self.abuser, self.victim):
            with client_for(platform, owner.user) as client:
                now = list_all(client)
            assert now == list(owner.before), (
                f"{owner.user}'s tasks changed:\nbefore {owner.before}\nnow    {now}"
            )
        part = LEDGER.part(PART)
        assert part.server_errors == 0, f"{part.server_errors} 5xx answers in part {PART!r}"


@pytest.fixture(scope="module")
def people(platform: Platform) -> People:
    abuser, victim = new_user("abuser"), new_user("victim")
    with client_for(platform, abuser) as client:
        mine = create(client, "Abuser's task", tags=["mine"])
        attached = client.post(
            f"/tasks/{mine['id']}/attachments",
            json={"filename": "notes.txt", "contentType": "text/plain", "size": 6},
        )
        assert attached.status_code == 201, describe(attached)
        awaiting = create(client, "Abuser's urgent task", priority="high")
        plain = create(client, "Abuser's other task", description="keep me")
        abuser_before = tuple(list_all(client))
    with client_for(platform, victim) as client:
        # Two tasks in the approvers' queue, so an approver sees a queue of at least two.
        theirs = [create(client, f"Victim's task {n}", priority="high") for n in range(2)]
        theirs.append(create(client, "Victim's plain task"))
        victim_before = tuple(list_all(client))
    return People(
        abuser=Owner(abuser, (mine["id"], awaiting["id"], plain["id"]), abuser_before),
        victim=Owner(victim, tuple(t["id"] for t in theirs), victim_before),
        attachment=attached.json()["attachment"]["id"],
    )


def body_routes(people: People) -> list[tuple[str, str]]:
    """Every route that takes a body, on the abuser's own task where it needs one."""
    task = people.abuser.tasks[0]
    return [
        ("POST", "/tasks"),
        ("PATCH", f"/tasks/{task}"),
        ("PUT", f"/tasks/{task}"),
        ("POST", f"/tasks/{task}/complete"),
        ("POST", f"/tasks/{task}/attachments"),
        ("POST", f"/tasks/{task}/approval"),
        ("POST", "/exports"),
    ]


def padded(size: int, char: str = "a") -> bytes:
    """A create body of exactly `size` bytes (UTF-8): a title and a long description of
    `char`s (topped up with `a`s)."""
    head, tail = b'{"title":"padded","description":"', b'"}'
    unit = char.encode()
    room = size - len(head) - len(tail)
    assert room >= 0, (size, char)
    return head + unit * (room // len(unit)) + b"a" * (room % len(unit)) + tail


# -- bodies ------------------------------------------------------------------------------------


def test_bodies_over_the_limit_are_413_on_every_route(platform: Platform, people: People) -> None:
    big = json.dumps({"title": "big", "description": "a" * MEBIBYTE}).encode()
    with client_for(platform, people.abuser.user, headers=JSON_HEADERS) as client:
        for method, path in body_routes(people):
            response = client.request(method, path, content=big)
            problem = expect(response, 413, "body-too-large")
            assert f"the limit is {MAX_BODY}" in problem["detail"], describe(response)

        # The limit is in bytes, to the byte: at it, the body is read (and judged: 422)...
        at_limit = client.post("/tasks", content=padded(MAX_BODY))
        assert fields(expect(at_limit, 422, "invalid-task")) == {"description"}
        # ...one byte over, it is not; and three-byte characters count three.
        expect(client.post("/tasks", content=padded(MAX_BODY + 1)), 413, "body-too-large")
        euros = padded(MAX_BODY + 2, "\u20ac")
        assert len(euros.decode()) < MAX_BODY < len(euros)
        expect(client.post("/tasks", content=euros), 413, "body-too-large")
        # Chunked (no Content-Length): the same.
        chunks = (big[i : i + 65536] for i in range(0, len(big), 65536))
        expect(client.post("/tasks", content=chunks), 413, "body-too-large")
        # Base64 (a content type the gateway does not pass as text): decoded bytes count.
        octets = client.post(
            "/tasks", content=big, headers={"Content-Type": "application/octet-stream"}
        )
        expect(octets, 413, "body-too-large")
    people.assert_unchanged(platform)


def test_the_gateway_refuses_what_api_gateway_would(platform: Platform, people: People) -> None:
    """Up to API Gateway's 10 MB payload quota the function judges the body; over it the
    gateway answers 413 itself, before the authorizer and without reading the body."""
    quota = b'{"title":"quota","description":"' + b"q" * (MAX_PAYLOAD_BYTES - 34) + b'"}'
    assert len(quota) == MAX_PAYLOAD_BYTES
    over = quota + b" "
    with client_for(platform, people.abuser.user, headers=JSON_HEADERS) as client:
        at_quota = client.post("/tasks", content=quota)
        problem = expect(at_quota, 413, "body-too-large")  # the handler's: it got the body
        assert f"the body is {MAX_PAYLOAD_BYTES} bytes" in problem["detail"]
        expect(client.post("/tasks", content=over), 413, "Request Entity Too Large")
        chunks = (over[i : i + MEBIBYTE] for i in range(0, len(over), MEBIBYTE))
        expect(client.post("/tasks", content=chunks), 413, "Request Entity Too Large")
    with client_for(platform, None, headers=JSON_HEADERS) as anonymous:
        expect(anonymous.post("/tasks", content=over), 413, "Request Entity Too Large")
    # A Content-Length of a tebibyte, and no body: answered at once, not awaited.
    lying = raw_request(
        platform,
        "POST",
        "/tasks",
        {
            "Authorization": f"Bearer {platform.token(people.abuser.user)}",
            "Content-Type": JSON,
            "Content-Length": str(1 << 40),
            "Connection": "close",
        },
    )
    expect(lying, 413, "Request Entity Too Large")
    people.assert_unchanged(platform)


def test_deeply_nested_json(platform: Platform, people: People) -> None:
    def arrays(depth: int) -> bytes:
        return b"[" * depth + b"]" * depth

    too_deep = {
        "arrays": arrays(20_000),
        "objects": b'{"a":' * 8_000 + b"1" + b"}" * 8_000,
        "in a field": b'{"title":' + arrays(20_000) + b"}",
    }
    with client_for(platform, people.abuser.user, headers=JSON_HEADERS) as client:
        expect(client.post("/tasks", content=arrays(100_000)), 413, "body-too-large")
        for name, body in too_deep.items():
            assert len(body) <= MAX_BODY, name
            for method, path in body_routes(people):
                expect(client.request(method, path, content=body), 400, "malformed-json")
        # Parsed, but nested where a string belongs: the field is named.
        nested_tag = b'{"title":"deep","tags":[' + arrays(300) + b"]}"
        assert fields(expect(client.post("/tasks", content=nested_tag), 422, "invalid-task")) == {
            "tags/0"
        }
        nested_extra = b'{"title":"deep","extra":' + arrays(300) + b"}"
        created = client.post("/tasks", content=nested_extra)
        assert fields(expect(created, 422, "invalid-task")) == {"extra"}
        nested_title = b'{"title":' + b'{"a":' * 300 + b"1" + b"}" * 300 + b"}"
        patched = client.patch(f"/tasks/{people.abuser.tasks[0]}", content=nested_title)
        assert fields(expect(patched, 422, "invalid-task")) == {"title"}
    people.assert_unchanged(platform)


def test_ten_thousand_character_fields(platform: Platform, people: People) -> None:
    long = "t" * 10_000
    task = people.abuser.tasks[0]
    creates: dict[str, tuple[dict[str, Any], str]] = {
        "ascii title": ({"title": long}, "title"),
        "astral title": ({"title": "\U0001f600" * 10_000}, "title"),
        "combining title": ({"title": "a" + "\u0301" * 9_999}, "title"),
        "description": ({"title": "x", "description": long}, "description"),
        "tag": ({"title": "x", "tags": [long]}, "tags/0"),
    }
    with client_for(platform, people.abuser.user) as client:
        for name, (body, field) in creates.items():
            response = client.post("/tasks", json=body)
            assert fields(expect(response, 422, "invalid-task")) == {field}, name
        patched = client.patch(f"/tasks/{task}", json={"title": long})
        assert fields(expect(patched, 422, "invalid-task")) == {"title"}
        for field, value in (("filename", long + ".txt"), ("contentType", "text/" + long)):
            attachment = {"filename": "a.txt", "contentType": "text/plain", "size": 1}
            response = client.post(f"/tasks/{task}/attachments", json={**attachment, field: value})
            assert fields(expect(response, 422, "invalid-task")) == {field}
        keyed = client.post("/tasks", json={"title": "x"}, headers={"Idempotency-Key": long})
        expect(keyed, 400, "invalid-header")
        matched = client.patch(
            f"/tasks/{task}", json={"title": "x"}, headers={"If-Match": f'"{"9" * 10_000}"'}
        )
        expect(matched, 412, "precondition-failed")
        expect(client.get("/tasks", params={"cursor": long}), 400, "invalid-cursor")
        expect(client.get("/tasks", params={"status": long}), 400, "invalid-query")
    people.assert_unchanged(platform)


# -- Unicode -----------------------------------------------------------------------------------

NOT_UTF8 = {
    "invalid byte": b'{"title":"a\xffb"}',
    "overlong slash": b'{"title":"a\xc0\xafb"}',
    "truncated sequence": b'{"title":"a\xe2\x82"}',
    "CESU-8 surrogate": b'{"title":"a\xed\xa0\x80b"}',
    "five-byte form": b'{"title":"a\xf8\x88\x80\x80\x80b"}',
    "above U+10FFFF": b'{"title":"a\xf4\x90\x80\x80b"}',
    "latin-1": '{"title":"caf\xe9"}'.encode("latin-1"),
    "UTF-16 with BOM": '{"title":"utf16"}'.encode("utf-16"),
    "UTF-32": '{"title":"utf32"}'.encode("utf-32"),
}
LONE_SURROGATES = {
    "high": b'{"title":"a\\ud800b"}',
    "low": b'{"title":"a\\udc00b"}',
    "reversed pair": b'{"title":"\\ude00\\ud83d"}',
    "two highs": b'{"title":"\\ud83d\\ud83d"}',
    "in a key": b'{"\\ud800":1,"title":"x"}',
    "in an unknown key only": b'{"\\udfff":1}',
    "in a tag": b'{"title":"x","tags":["\\udbff"]}',
    "in a nested value": b'{"title":"x","extra":[{"k":"\\ud800"}]}',
}


def test_unicode_that_is_not_text_is_refused(platform: Platform, people: People) -> None:
    task = people.abuser.tasks[0]
    with client_for(platform, people.abuser.user, headers=JSON_HEADERS) as client:
        for name, body in NOT_UTF8.items():
            problem = expect(client.post("/tasks", content=body), 400, "malformed-json")
            assert problem["detail"] == "the body is not UTF-8", name
        # UTF-16LE of ASCII text is valid UTF-8, NULs and all: JSON refuses the raw NULs.
        utf16le = client.post("/tasks", content='{"title":"utf16"}'.encode("utf-16-le"))
        expect(utf16le, 400, "malformed-json")
        declared = client.post(
            "/tasks",
            content=NOT_UTF8["UTF-16 with BOM"],
            headers={"Content-Type": "application/json; charset=utf-16"},
        )
        expect(declared, 400, "malformed-json")
        bom = b"\xef\xbb\xbf" + b'{"title":"bom"}'
        expect(client.post("/tasks", content=bom), 400, "malformed-json")

        for name, body in LONE_SURROGATES.items():
            problem = expect(client.post("/tasks", content=body), 400, "malformed-json")
            assert problem["detail"] == "a string holds a lone surrogate", name
        for method, path, body in [
            ("PATCH", f"/tasks/{task}", b'{"description":"\\ud800"}'),
            ("PUT", f"/tasks/{task}", b'{"\\ud800":"x"}'),
            ("POST", f"/tasks/{task}/complete", b'{"\\ud800":1}'),
            ("POST", f"/tasks/{task}/attachments", b'{"filename":"\\ud800.txt"}'),
            ("POST", f"/tasks/{task}/approval", b'{"decision":"\\ud800"}'),
            ("POST", "/exports", b'{"\\udc00":1}'),
        ]:
            expect(client.request(method, path, content=body), 400, "malformed-json")

        # Control characters: escaped, not text for any field (422); raw, not JSON (400).
        for body, field in [
            (b'{"title":"a\\u0000b"}', "title"),
            (b'{"title":"x","description":"a\\u0000"}', "description"),
            (b'{"title":"x","tags":["a\\u0000"]}', "tags/0"),
            (b'{"title":"a\\u0085b"}', "title"),
            (b'{"title":"a\\u007fb"}', "title"),
            (b'{"title":"a\\u001bb"}', "title"),
        ]:
            response = client.post("/tasks", content=body)
            assert fields(expect(response, 422, "invalid-task")) == {field}, body
        nul_name = b'{"filename":"a\\u0000.txt","contentType":"text/plain","size":1}'
        attached = client.post(f"/tasks/{task}/attachments", content=nul_name)
        assert fields(expect(attached, 422, "invalid-task")) == {"filename"}
        for body in (b'{"title":"a\x00b"}', b'{"title":"a\x1bb"}', b'{"title":"x"}\x00'):
            expect(client.post("/tasks", content=body), 400, "malformed-json")
    people.assert_unchanged(platform)


VALID_TEXT = {
    "emoji": "Ship \U0001f680 today \U0001f469\u200d\U0001f469\u200d\U0001f467 "
    "\U0001f1fa\U0001f1e6 \U0001f44d\U0001f3fd",
    "right-to-left": "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd \u2013 "
    "\u0645\u0631\u062d\u0628\u0627 123",
    "bidi controls": "abc\u202edcba \u2067isolated\u2069 \u200fmark\u200e",
    "combining marks": "Cafe\u0301 Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f",
    "Hangul jamo": "\u1112\u1161\u11ab\u1100\u1173\u11af",
    "U+FEFF inside": "\ufeffstarts with U+FEFF",
    "200 astral characters": "\U0001d538" * 200,
}


def test_unicode_that_is_text_round_trips_byte_exact(platform: Platform) -> None:
    """Accepted (201), stored and returned exactly: not normalized, not escaped away."""
    user = new_user("unicode")
    with client_for(platform, user) as client:
        made: dict[str, str] = {}
        for name, title in VALID_TEXT.items():
            response = client.post("/tasks", json={"title": title})
            assert response.status_code == 201, (name, describe(response))
            assert response.json()["title"] == title, name
            assert title.encode() in response.content, f"{name}: not byte-exact in the answer"
            got = client.get(f"/tasks/{response.json()['id']}")
            assert got.json()["title"] == title, name
            assert title.encode() in got.content, f"{name}: not byte-exact when read back"
            made[response.json()["id"]] = title
        # An escaped surrogate *pair* is one character: stored as that character.
        paired = client.post(
            "/tasks", content=b'{"title":"\\ud83d\\ude80 pair"}', headers=JSON_HEADERS
        )
        assert paired.status_code == 201, describe(paired)
        assert paired.json()["title"] == "\U0001f680 pair"
        made[paired.json()["id"]] = "\U0001f680 pair"
        # NFC and NFD are different titles, both kept as sent.
        assert VALID_TEXT["combining marks"] != "Caf\u00e9 Z\u0351\u036b\u0343\u036a"
        listed = {task["id"]: task["title"] for task in list_all(client)}
        assert listed == made

        one_too_many = client.post("/tasks", json={"title": "\U0001d538" * 201})
        assert fields(expect(one_too_many, 422, "invalid-task")) == {"title"}

        task = next(iter(made))
        text = "\u05e9\u05dc\u05d5\u05dd\n\U0001f600\te\u0301 \u202eevil"
        patched = client.patch(
            f"/tasks/{task}", json={"description": text, "tags": ["\u65e5\u672c", "\U0001f3f7"]}
        )
        assert patched.status_code == 200, describe(patched)
        again = client.get(f"/tasks/{task}").json()
        assert (again["description"], again["tags"]) == (text, ["\u65e5\u672c", "\U0001f3f7"])

        for filename in ("r\u00e9sum\u00e9 \U0001f4c4.pdf", "\u05e9\u05dc\u05d5\u05dd.txt"):
            attached = client.post(
                f"/tasks/{task}/attachments",
                json={"filename": filename, "contentType": "application/pdf", "size": 9},
            )
            assert attached.status_code == 201, describe(attached)
            assert attached.json()["attachment"]["filename"] == filename
        names = [a["filename"] for a in client.get(f"/tasks/{task}").json()["attachments"]]
        assert names == ["r\u00e9sum\u00e9 \U0001f4c4.pdf", "\u05e9\u05dc\u05d5\u05dd.txt"]
    part = LEDGER.part(PART)
    assert part.server_errors == 0


# -- attachment names and paths ----------------------------------------------------------------

TRAVERSING_NAMES = [
    "../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "\\\\server\\share\\x.txt",
    "file:///etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "..%252F..%252Fetc%252Fpasswd",
    "..%5c..%5cwin.ini",
    "%c0%ae%c0%ae%c0%af",
    "passwd%00.txt",
    "..\uff0f..\uff0fetc\uff0fpasswd",
    "..\uff3c..\uff3cwin.ini",
    "..\u2215..\u2215etc\u2215passwd",
    "..\u2044etc",
    "...",
    ". .",
    "\uff0e\uff0e",
    "..",
    "invoice\u202efdp.exe",
    "passwd\x00.txt",
]


def test_path_traversal_in_attachment_names_is_422(platform: Platform, people: People) -> None:
    task = people.abuser.tasks[0]
    with client_for(platform, people.abuser.user) as client:
        for name in TRAVERSING_NAMES:
            response = client.post(
                f"/tasks/{task}/attachments",
                json={"filename": name, "contentType": "text/plain", "size": 3},
            )
            assert fields(expect(response, 422, "invalid-task")) == {"filename"}, name
    people.assert_unchanged(platform)


def test_path_traversal_in_urls_reaches_nothing(platform: Platform, people: People) -> None:
    task, attachment = people.abuser.tasks[0], people.attachment
    base = f"/tasks/{task}/attachments"
    not_found: Expected = (404, "not-found")  # a route, but no such attachment or task
    no_route: Expected = (404, "no-route")  # decoded into more segments: no route at all
    undecodable: Expected = (400, "Bad Request")  # the gateway: not UTF-8, twice decoded
    cases: dict[str, Expected] = {
        f"{base}/..%2F..%2Fetc%2Fpasswd": no_route,
        f"{base}/..%252F..%252Fetc%252Fpasswd": no_route,
        f"{base}/%2e%2e%2f%2e%2e%2f{attachment}": no_route,
        f"{base}/..%5C..%5Cetc%5Cpasswd": not_found,
        f"{base}/%2e%2e": not_found,
        f"{base}/{attachment}%00": not_found,
        f"{base}/{attachment}%2500": not_found,
        f"{base}/%c0%af": undecodable,
        f"{base}/%ff": undecodable,
        f"{base}/%25": undecodable,
        f"/tasks/..%2F{task}/attachments/{attachment}": no_route,
        f"/tasks/%2e%2e/attachments/{attachment}": not_found,
    }
    with client_for(platform, people.abuser.user) as client:
        for path, (status, kind) in cases.items():
            expect(client.get(httpx.URL(platform.url + path)), status, kind)
        created = client.post(
            httpx.URL(platform.url + "/tasks/..%2F..%2Fetc%2Fpasswd/attachments"),
            json={"filename": "x.txt", "contentType": "text/plain", "size": 1},
        )
        expect(created, 404, "no-route")
    token = {"Authorization": f"Bearer {platform.token(people.abuser.user)}"}
    # Dot segments as sent (httpx would remove them), and a backslash in the path.
    for target, (status, kind) in {
        f"{base}/../../../etc/passwd": no_route,
        f"{base}/../{attachment}": no_route,
        f"/tasks/{task}/../{people.victim.tasks[0]}": no_route,
        f"{base}/..\\..\\etc\\passwd": not_found,
    }.items():
        expect(raw_request(platform, "GET", target, token), status, kind)
    people.assert_unchanged(platform)


# -- tokens --------------------------------------------------------------------------------------


def forged_headers(platform: Platform, people: People, tmp: Path) -> dict[str, dict[str, str]]:
    """Authorization headers the authorizer must refuse: the gateway suite's cases (another
    key, tampering, `alg: none`, HS256 with the public key, expired, issuer, audience...) and
    a few aimed at the victim and at the key lookup."""
    issuer = platform.issuer
    other = DevIssuer(key_dir=tmp / "other-issuer")
    cases = {  # HTTP strips a value's surrounding spaces, and httpx refuses to send them
        name: {key: value.strip() for key, value in headers.items()}
        for name, headers in unauthorized_headers_for(issuer, other).items()
        if headers is not None
    }
    cases["missing-header"] = {}
    good = issuer.mint(people.abuser.user)
    header, _, signature = good.split(".")
    escalated = b64url(
        claims_for(issuer, sub=people.victim.user, **{"cognito:groups": [APPROVERS]})
    )
    cases["victim-and-approver-claims-on-a-real-signature"] = {
        "Authorization": f"Bearer {header}.{escalated}.{signature}"
    }
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    attacker_jwk = RSAAlgorithm.to_jwk(attacker.public_key(), as_dict=True)
    victim_claims = claims_for(issuer, sub=people.victim.user)
    cases["embedded-jwk-with-our-kid"] = {
        "Authorization": "Bearer "
        + jwt.encode(
            victim_claims,
            attacker,
            algorithm="RS256",
            headers={"kid": issuer.kid, "jwk": attacker_jwk},
        )
    }
    cases["traversal-kid"] = {
        "Authorization": "Bearer "
        + jwt.encode(
            victim_claims, attacker, algorithm="RS256", headers={"kid": "../../../../dev/null"}
        )
    }
    cases["expired-victim-token"] = {
        "Authorization": f"Bearer {issuer.mint(people.victim.user, ttl=timedelta(seconds=-30))}"
    }
    cases["extra-segment"] = {"Authorization": f"Bearer {good}.e30"}
    cases["token-of-8k-garbage"] = {"Authorization": "Bearer " + "A" * 8192}
    return cases


def test_forged_tokens_are_401_everywhere_and_write_nothing(
    platform: Platform, people: People, tmp_path: Path
) -> None:
    cases = forged_headers(platform, people, tmp_path)
    assert len(cases) >= 25, sorted(cases)
    requests: list[tuple[str, str, Any]] = [
        ("GET", "/tasks", None),
        ("POST", "/tasks", {"title": "forged"}),
        ("GET", "/stats", None),
        ("POST", "/exports", None),
        ("GET", "/approvals", None),
    ]
    for task in (people.abuser.tasks[0], people.victim.tasks[0], people.victim.tasks[2]):
        requests += [
            ("GET", f"/tasks/{task}", None),
            ("PATCH", f"/tasks/{task}", {"title": "pwned"}),
            ("PUT", f"/tasks/{task}", {"status": "cancelled"}),
            ("DELETE", f"/tasks/{task}", None),
            ("POST", f"/tasks/{task}/complete", None),
            (
                "POST",
                f"/tasks/{task}/attachments",
                {"filename": "x", "contentType": "a/b", "size": 1},
            ),
            ("POST", f"/tasks/{task}/approval", {"decision": "approve"}),
        ]
    requests.append(
        ("GET", f"/tasks/{people.abuser.tasks[0]}/attachments/{people.attachment}", None)
    )
    sent = 0
    for index, (name, headers) in enumerate(cases.items()):
        # Each kind on every TOKEN_STRIDE-th request, shifted by one per kind, so every request
        # meets several kinds (soak: every kind on every request).
        with client_for(platform, None, headers=headers) as client:
            for method, path, body in requests[index % TOKEN_STRIDE :: TOKEN_STRIDE]:
                response = client.request(method, path, json=body)
                assert response.status_code == 401, (name, describe(response))
                expect(response, 401, "Unauthorized")
                sent += 1

    # A genuine signature on claims without a subject passes the authorizer (API Gateway does
    # not require `sub`); the handler refuses it.
    no_subject = {k: v for k, v in claims_for(platform.issuer).items() if k != "sub"}
    private_key = platform.issuer._key_pair().private_key
    for claims in (no_subject, {**no_subject, "sub": ""}):
        token = jwt.encode(
            claims, private_key, algorithm="RS256", headers={"kid": platform.issuer.kid}
        )
        with client_for(platform, None, headers={"Authorization": f"Bearer {token}"}) as client:
            expect(client.post("/tasks", json={"title": "nobody"}), 401, "unauthenticated")
            expect(
                client.patch(f"/tasks/{people.victim.tasks[2]}", json={"title": "pwned"}),
                401,
                "unauthenticated",
            )
    LEDGER.part(PART).note(
        f"forged tokens: {len(cases)} kinds on {len(requests)} routes and tasks, "
        f"{sent} requests, all 401"
    )
    people.assert_unchanged(platform)


# -- cursors -------------------------------------------------------------------------------------


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, body.encode("ascii"), hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


def tampered_cursors(cursor: str, foreign: str) -> dict[str, str]:
    body, signature = cursor.split(".")
    payload = json.loads(_b64decode(body))
    cases: dict[str, str] = {}
    positions = [
        (part, i) for part, text in (("body", body), ("sig", signature)) for i in range(len(text))
    ]
    step = max(1, len(positions) // CURSOR_FLIPS)
    for part, index in positions[::step]:
        flipped = (
            f"{_flip(body, index)}.{signature}"
            if part == "body"
            else f"{body}.{_flip(signature, index)}"
        )
        cases[f"flip {part}[{index}]"] = flipped
    for name, changed in {
        "expiry far away": {**payload, "e": 4_102_444_800},
        "another query": {**payload, "s": "0" * 16},
        "position moved": {**payload, "p": {k: v + "0" for k, v in payload["p"].items()}},
    }.items():
        text = base64.urlsafe_b64encode(json.dumps(changed, separators=(",", ":")).encode())
        new_body = text.rstrip(b"=").decode("ascii")
        cases[f"{name}, old signature"] = f"{new_body}.{signature}"
        for secret in (b"", b"secret", b"tasks-local", b"changeme"):
            cases[f"{name}, signed with {secret!r}"] = f"{new_body}.{_sign(secret, new_body)}"
    cases |= {
        "no signature": f"{body}.",
        "no dot": body,
        "three parts": f"{cursor}.{signature}",
        "only a signature": f".{signature}",
        "padded": f"{body}==.{signature}",
        "leading space": f" {cursor}",
        "non-ASCII": f"{body}\u00e9.{signature}",
        "NUL": f"{body}\x00.{signature}",
        "just a dot": ".",
        "over 2048 characters": f"{body * (2049 // len(body) + 1)}.{signature}",
        "another user's": foreign,
    }
    return cases


def test_tampered_cursors_are_400(platform: Platform, people: People) -> None:
    with client_for(platform, people.victim.user) as client:
        foreign = client.get("/tasks", params={"limit": 1}).json()["nextCursor"]
    with client_for(platform, people.abuser.user, APPROVERS) as client:
        first = client.get("/tasks", params={"limit": 1})
        cursor = first.json()["nextCursor"]
        assert isinstance(cursor, str)
        assert isinstance(foreign, str)
        queue = client.get("/approvals", params={"limit": 1})
        queue_cursor = queue.json()["nextCursor"]
        assert isinstance(queue_cursor, str), describe(queue)

        cases = tampered_cursors(cursor, foreign)
        for name, tampered in cases.items():
            response = client.get("/tasks", params={"limit": 1, "cursor": tampered})
            assert response.status_code == 400, (name, describe(response))
            expect(response, 400, "invalid-cursor")
        queue_cases = {
            **tampered_cursors(queue_cursor, cursor),
            "a task-list cursor": cursor,
        }
        for name, tampered in queue_cases.items():
            response = client.get("/approvals", params={"limit": 1, "cursor": tampered})
            assert response.status_code == 400, (name, describe(response))
            expect(response, 400, "invalid-cursor")
        wrong_route = client.get("/tasks", params={"limit": 1, "cursor": queue_cursor})
        expect(wrong_route, 400, "invalid-cursor")
        # The genuine cursors still work: the refusals were about the tampering.
        second = client.get("/tasks", params={"limit": 1, "cursor": cursor})
        assert second.status_code == 200, describe(second)
        assert second.json()["items"][0]["id"] != first.json()["items"][0]["id"]
        assert (
            client.get("/approvals", params={"limit": 1, "cursor": queue_cursor}).status_code == 200
        )
    LEDGER.part(PART).note(
        f"tampered cursors: {len(cases) + len(queue_cases) + 1} kinds, all 400 invalid-cursor"
    )
    people.assert_unchanged(platform)
