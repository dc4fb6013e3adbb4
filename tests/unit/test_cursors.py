from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from taskcore.cursors import CURSOR_MAX, CursorCodec
from taskcore.errors import FieldError, InvalidCursor, InvalidInput

SECRET = b"s" * 32
NOW = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
SCOPE = "tasks|alice||"
POSITION = {"pk": "USER#alice", "sk": "TASK#01JD0000000000000000000001"}
URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def rejected(codec: CursorCodec, token: str, *, scope: str = SCOPE, now: datetime = NOW) -> str:
    """Decode a cursor that must be refused; return the reason."""
    with pytest.raises(InvalidCursor) as info:
        codec.decode(scope, token, now)
    error = info.value
    assert isinstance(error, InvalidInput)
    assert error.fields == ("cursor",)
    assert error.code == "invalid-cursor"
    return error.errors[0].message


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def signed(codec: CursorCodec, body: str) -> str:
    """A token whose signature is valid, whatever its body says."""
    return f"{body}.{codec._sign(body)}"


def signed_payload(codec: CursorCodec, payload: object) -> str:
    return signed(codec, b64(json.dumps(payload).encode()))


def good_payload(codec: CursorCodec, **changes: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "p": dict(POSITION),
        "s": codec._scope_digest(SCOPE),
        "e": int((NOW + timedelta(hours=1)).timestamp()),
    }
    payload.update(changes)
    return payload


def flip(char: str) -> str:
    return "B" if char == "A" else "A"


@pytest.fixture
def codec() -> CursorCodec:
    return CursorCodec(SECRET)


class TestRoundTrip:
    def test_a_cursor_decodes_to_its_position(self, codec: CursorCodec) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        assert codec.decode(SCOPE, token, NOW) == POSITION

    def test_an_empty_position_round_trips(self, codec: CursorCodec) -> None:
        assert codec.decode(SCOPE, codec.encode(SCOPE, {}, NOW), NOW) == {}

    def test_non_ascii_positions_round_trip(self, codec: CursorCodec) -> None:
        position = {"sk": "TASK#é✓", "title": 'quote " and dot .'}
        token = codec.encode(SCOPE, position, NOW)
        assert codec.decode(SCOPE, token, NOW) == position

    def test_a_cursor_is_opaque_url_safe_text_with_one_dot(self, codec: CursorCodec) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        body, signature = token.split(".")
        assert set(body) <= URLSAFE
        assert set(signature) <= URLSAFE
        assert "USER#alice" not in token
        assert len(signature) == 32  # 24 bytes of HMAC-SHA256, unpadded base64

    def test_encoding_is_deterministic(self, codec: CursorCodec) -> None:
        assert codec.encode(SCOPE, POSITION, NOW) == codec.encode(SCOPE, POSITION, NOW)

    def test_another_codec_with_the_same_secret_accepts_it(self, codec: CursorCodec) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        assert CursorCodec(bytes(SECRET)).decode(SCOPE, token, NOW) == POSITION

    def test_a_cursor_is_valid_until_it_expires(self, codec: CursorCodec) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        assert codec.decode(SCOPE, token, NOW + timedelta(hours=24)) == POSITION

    def test_the_secret_is_not_in_the_repr(self, codec: CursorCodec) -> None:
        assert repr(SECRET) not in repr(codec)


class TestTampering:
    def test_a_tampered_body_is_refused(self, codec: CursorCodec) -> None:
        body, signature = codec.encode(SCOPE, POSITION, NOW).split(".")
        tampered = flip(body[0]) + body[1:]
        assert rejected(codec, f"{tampered}.{signature}") == "has an invalid signature"

    def test_a_body_for_another_position_with_the_old_signature_is_refused(
        self, codec: CursorCodec
    ) -> None:
        _, signature = codec.encode(SCOPE, POSITION, NOW).split(".")
        other_body, _ = codec.encode(SCOPE, {"pk": "USER#bob"}, NOW).split(".")
        assert rejected(codec, f"{other_body}.{signature}") == "has an invalid signature"

    @pytest.mark.parametrize("index", [0, 15, -1])
    def test_a_tampered_signature_is_refused(self, codec: CursorCodec, index: int) -> None:
        body, signature = codec.encode(SCOPE, POSITION, NOW).split(".")
        chars = list(signature)
        chars[index] = flip(chars[index])
        assert rejected(codec, f"{body}.{''.join(chars)}") == "has an invalid signature"

    def test_a_truncated_signature_is_refused(self, codec: CursorCodec) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        assert rejected(codec, token[:-1]) == "has an invalid signature"

    def test_an_empty_signature_is_refused(self, codec: CursorCodec) -> None:
        body, _ = codec.encode(SCOPE, POSITION, NOW).split(".")
        assert rejected(codec, f"{body}.") == "has an invalid signature"

    def test_a_cursor_signed_with_another_secret_is_refused(self, codec: CursorCodec) -> None:
        token = CursorCodec(b"t" * 32).encode(SCOPE, POSITION, NOW)
        assert rejected(codec, token) == "has an invalid signature"


class TestForeignCursors:
    def test_a_cursor_issued_to_another_user_is_refused(self, codec: CursorCodec) -> None:
        token = codec.encode("tasks|bob||", POSITION, NOW)
        assert rejected(codec, token, scope="tasks|alice||") == "was issued for another query"

    @pytest.mark.parametrize(
        "other_scope", ["tasks|alice|completed|", "tasks|alice||high", "approvals|"]
    )
    def test_a_cursor_issued_for_another_filter_is_refused(
        self, codec: CursorCodec, other_scope: str
    ) -> None:
        token = codec.encode(other_scope, POSITION, NOW)
        assert rejected(codec, token) == "was issued for another query"


class TestExpiry:
    def test_an_expired_cursor_is_refused(self, codec: CursorCodec) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        later = NOW + timedelta(hours=24, seconds=1)
        assert rejected(codec, token, now=later) == "has expired"

    def test_a_custom_ttl_is_honoured(self) -> None:
        codec = CursorCodec(SECRET, ttl=timedelta(minutes=5))
        token = codec.encode(SCOPE, POSITION, NOW)
        assert codec.decode(SCOPE, token, NOW + timedelta(minutes=5)) == POSITION
        later = NOW + timedelta(minutes=5, seconds=1)
        assert rejected(codec, token, now=later) == "has expired"

    def test_the_default_ttl_is_a_day(self) -> None:
        assert CursorCodec(SECRET).ttl == timedelta(hours=24)

    def test_the_scope_is_checked_before_expiry(self, codec: CursorCodec) -> None:
        token = codec.encode("tasks|bob||", POSITION, NOW)
        later = NOW + timedelta(days=30)
        assert rejected(codec, token, now=later) == "was issued for another query"


class TestMalformed:
    @pytest.mark.parametrize("token", ["", "nodot", "a.b.c", "..", "abc.def.", ".abc.def"])
    def test_a_token_without_exactly_one_dot_is_malformed(
        self, codec: CursorCodec, token: str
    ) -> None:
        assert rejected(codec, token) == "is malformed"

    def test_an_over_long_token_is_malformed(self, codec: CursorCodec) -> None:
        body = b64(json.dumps(good_payload(codec, p={"k": "v" * CURSOR_MAX})).encode())
        token = signed(codec, body)
        assert len(token) > CURSOR_MAX
        assert rejected(codec, token) == "is malformed"

    def test_a_token_of_the_maximum_length_is_checked_for_its_signature(
        self, codec: CursorCodec
    ) -> None:
        token = "a" * (CURSOR_MAX - 2) + ".a"
        assert len(token) == CURSOR_MAX
        assert rejected(codec, token) == "has an invalid signature"

    def test_a_non_ascii_body_is_refused(self, codec: CursorCodec) -> None:
        _, signature = codec.encode(SCOPE, POSITION, NOW).split(".")
        assert rejected(codec, f"é.{signature}") == "has an invalid signature"

    def test_a_non_ascii_signature_is_refused(self, codec: CursorCodec) -> None:
        body, _ = codec.encode(SCOPE, POSITION, NOW).split(".")
        assert rejected(codec, f"{body}.é") == "has an invalid signature"

    @pytest.mark.parametrize(
        "body",
        [
            b64(b"not json"),
            b64(b"\xff\xfe\x00"),
            b64(b""),
            "A",
            b64(b"[1, 2]"),
            b64(b"null"),
            b64(b'"text"'),
            b64(b"42"),
            b64(b"{}"),
        ],
    )
    def test_a_signed_body_that_is_not_a_payload_is_malformed(
        self, codec: CursorCodec, body: str
    ) -> None:
        assert rejected(codec, signed(codec, body)) == "is malformed"

    @pytest.mark.parametrize("missing", ["p", "s", "e"])
    def test_a_signed_payload_missing_a_key_is_malformed(
        self, codec: CursorCodec, missing: str
    ) -> None:
        payload = good_payload(codec)
        del payload[missing]
        assert rejected(codec, signed_payload(codec, payload)) == "is malformed"

    @pytest.mark.parametrize("expiry", ["soon", None, [1], {"at": 1}, "1.5"])
    def test_a_signed_payload_with_a_bad_expiry_is_malformed(
        self, codec: CursorCodec, expiry: object
    ) -> None:
        token = signed_payload(codec, good_payload(codec, e=expiry))
        assert rejected(codec, token) == "is malformed"

    def test_a_signed_payload_with_a_nan_expiry_is_malformed(self, codec: CursorCodec) -> None:
        token = signed(codec, b64(b'{"p": {}, "s": "x", "e": NaN}'))
        assert rejected(codec, token) == "is malformed"

    def test_a_signed_payload_with_an_infinite_expiry_is_malformed(
        self, codec: CursorCodec
    ) -> None:
        token = signed(codec, b64(b'{"p": {}, "s": "x", "e": Infinity}'))
        assert rejected(codec, token) == "is malformed"

    @pytest.mark.parametrize(
        "position",
        [[], ["pk", "x"], "USER#alice", None, 1, {"pk": 1}, {"pk": None}, {"pk": ["x"]}],
    )
    def test_a_signed_payload_with_a_bad_position_is_malformed(
        self, codec: CursorCodec, position: object
    ) -> None:
        token = signed_payload(codec, good_payload(codec, p=position))
        assert rejected(codec, token) == "is malformed"

    def test_a_signed_payload_with_an_unhashable_scope_is_foreign(self, codec: CursorCodec) -> None:
        token = signed_payload(codec, good_payload(codec, s=["x"]))
        assert rejected(codec, token) == "was issued for another query"

    def test_a_hand_made_payload_of_the_right_shape_is_accepted(self, codec: CursorCodec) -> None:
        token = signed_payload(codec, good_payload(codec))
        assert codec.decode(SCOPE, token, NOW) == POSITION

    def test_an_expiry_given_as_numeric_text_is_read(self, codec: CursorCodec) -> None:
        expiry = str(int((NOW + timedelta(hours=1)).timestamp()))
        token = signed_payload(codec, good_payload(codec, e=expiry))
        assert codec.decode(SCOPE, token, NOW) == POSITION

    def test_the_error_is_a_field_error_on_cursor(self, codec: CursorCodec) -> None:
        with pytest.raises(InvalidCursor, match=r"^cursor: is malformed$") as info:
            codec.decode(SCOPE, "nodot", NOW)
        assert info.value.errors == (FieldError("cursor", "is malformed"),)


class TestRotation:
    """A new signing secret keeps the cursors signed with the one it replaced valid."""

    NEW = b"n" * 32

    def test_cursors_of_the_previous_secret_still_decode(self, codec: CursorCodec) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        rotated = CursorCodec(self.NEW, previous=(SECRET,))
        assert rotated.decode(SCOPE, token, NOW) == POSITION

    def test_new_cursors_are_signed_with_the_new_secret_only(self, codec: CursorCodec) -> None:
        rotated = CursorCodec(self.NEW, previous=[SECRET])
        token = rotated.encode(SCOPE, POSITION, NOW)
        assert CursorCodec(self.NEW).decode(SCOPE, token, NOW) == POSITION
        with pytest.raises(InvalidCursor, match="invalid signature"):
            codec.decode(SCOPE, token, NOW)  # the old secret alone does not accept it

    def test_a_secret_dropped_from_previous_no_longer_signs_anything_accepted(
        self, codec: CursorCodec
    ) -> None:
        token = codec.encode(SCOPE, POSITION, NOW)
        with pytest.raises(InvalidCursor, match="invalid signature"):
            CursorCodec(self.NEW).decode(SCOPE, token, NOW)

    def test_previous_secrets_are_not_in_the_repr(self) -> None:
        assert repr(SECRET) not in repr(CursorCodec(self.NEW, previous=(SECRET,)))
