from __future__ import annotations

from datetime import date
from typing import Any

import attrs
import pytest

from taskcore.commands import (
    ATTACHMENT_SIZE_MAX,
    CONTENT_TYPE_MAX,
    LIST_LIMIT_DEFAULT,
    LIST_LIMIT_MAX,
    UNSET,
    AddAttachment,
    CreateTask,
    Decide,
    TaskQuery,
    UpdateTask,
    _Collector,
    parse_attachment,
    parse_create,
    parse_decision,
    parse_query,
    parse_update,
)
from taskcore.errors import (
    ConcurrentModification,
    Conflict,
    DomainError,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidInput,
    InvalidQuery,
    InvalidTask,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from taskcore.model import (
    DESCRIPTION_MAX,
    FILENAME_MAX,
    TAG_MAX,
    TAGS_MAX,
    TITLE_MAX,
    Decision,
    Priority,
    Status,
)

PRIORITIES = "must be one of: low, medium, high, critical"
STATUSES = "must be one of: pending, in_progress, completed, cancelled"
DECISIONS = "must be one of: approve, reject"
DATE_MESSAGE = "must be a calendar date like 2030-01-31"
LIMIT_MESSAGE = f"must be an integer from 1 to {LIST_LIMIT_MAX}"
SIZE_MESSAGE = f"must be an integer from 1 to {ATTACHMENT_SIZE_MAX}"
MEDIA_TYPE = "must be a media type like application/pdf"
PLAIN_MEDIA_TYPE = "must be a plain media type without parameters"

NON_OBJECTS: list[object] = [None, [], ["title"], "title", 1, 1.5, True]


def errors_of(exc: InvalidInput) -> dict[str, str]:
    return {e.field: e.message for e in exc.errors}


def create_error(body: object) -> InvalidTask:
    with pytest.raises(InvalidTask) as info:
        parse_create(body)
    return info.value


def update_error(body: object) -> InvalidTask:
    with pytest.raises(InvalidTask) as info:
        parse_update(body)
    return info.value


def query_error(params: dict[str, str]) -> InvalidQuery:
    with pytest.raises(InvalidQuery) as info:
        parse_query(params)
    return info.value


def attachment_error(body: object) -> InvalidTask:
    with pytest.raises(InvalidTask) as info:
        parse_attachment(body)
    return info.value


def decision_error(body: object) -> InvalidTask:
    with pytest.raises(InvalidTask) as info:
        parse_decision(body)
    return info.value


class TestParseCreate:
    def test_title_alone_gives_the_defaults(self) -> None:
        assert parse_create({"title": "Write the report"}) == CreateTask(
            title="Write the report",
            description="",
            priority=Priority.MEDIUM,
            tags=(),
            due_date=None,
        )

    def test_every_field_is_read(self) -> None:
        command = parse_create(
            {
                "title": "Write the report",
                "description": "Line one\nLine two\twith a tab\r\n",
                "priority": "critical",
                "tags": ["work", "q1"],
                "dueDate": "2030-01-31",
            }
        )
        assert command == CreateTask(
            title="Write the report",
            description="Line one\nLine two\twith a tab\r\n",
            priority=Priority.CRITICAL,
            tags=("work", "q1"),
            due_date=date(2030, 1, 31),
        )
        assert type(command.priority) is Priority
        assert isinstance(command.tags, tuple)

    @pytest.mark.parametrize("body", NON_OBJECTS)
    def test_a_non_object_body_is_refused_and_the_title_reported_missing(
        self, body: object
    ) -> None:
        exc = create_error(body)
        assert errors_of(exc) == {"": "must be a JSON object", "title": "is required"}
        assert exc.fields == ("", "title")

    def test_the_title_is_required(self) -> None:
        exc = create_error({"description": "no title"})
        assert exc.errors == (FieldError("title", "is required"),)

    @pytest.mark.parametrize(
        ("title", "message"),
        [
            (None, "must be a string"),
            (42, "must be a string"),
            (["a"], "must be a string"),
            ("", "must not be empty"),
            ("  \t ", "must not be empty"),
            ("x" * (TITLE_MAX + 1), f"must be at most {TITLE_MAX} characters"),
            ("bad\x00title", "must not contain control characters"),
            ("bad\ntitle", "must not contain control characters"),
        ],
    )
    def test_an_invalid_title_is_reported_once(self, title: object, message: str) -> None:
        exc = create_error({"title": title})
        assert exc.errors == (FieldError("title", message),)

    def test_a_title_of_the_maximum_length_is_accepted(self) -> None:
        assert parse_create({"title": "x" * TITLE_MAX}).title == "x" * TITLE_MAX

    @pytest.mark.parametrize(
        ("description", "message"),
        [
            (None, "must be a string"),
            (7, "must be a string"),
            ("x" * (DESCRIPTION_MAX + 1), f"must be at most {DESCRIPTION_MAX} characters"),
            ("bell\x07", "must not contain control characters other than newlines and tabs"),
        ],
    )
    def test_an_invalid_description_is_refused(self, description: object, message: str) -> None:
        exc = create_error({"title": "t", "description": description})
        assert exc.errors == (FieldError("description", message),)

    def test_a_description_of_the_maximum_length_is_accepted(self) -> None:
        body = {"title": "t", "description": "d" * DESCRIPTION_MAX}
        assert parse_create(body).description == "d" * DESCRIPTION_MAX

    @pytest.mark.parametrize("priority", ["urgent", "HIGH", "", None, 1, ["high"], {"p": 1}])
    def test_a_bad_priority_lists_the_allowed_values(self, priority: object) -> None:
        exc = create_error({"title": "t", "priority": priority})
        assert exc.errors == (FieldError("priority", PRIORITIES),)

    @pytest.mark.parametrize("priority", list(Priority))
    def test_every_priority_value_is_accepted(self, priority: Priority) -> None:
        assert parse_create({"title": "t", "priority": priority.value}).priority is priority

    @pytest.mark.parametrize("tags", ["work", None, 3, {"work": True}])
    def test_tags_must_be_a_list(self, tags: object) -> None:
        exc = create_error({"title": "t", "tags": tags})
        assert exc.errors == (FieldError("tags", "must be a list of strings"),)

    def test_too_many_tags_are_refused(self) -> None:
        exc = create_error({"title": "t", "tags": [f"t{i}" for i in range(TAGS_MAX + 1)]})
        assert exc.errors == (FieldError("tags", f"must have at most {TAGS_MAX} tags"),)

    def test_the_maximum_number_of_tags_is_accepted(self) -> None:
        tags = [f"t{i}" for i in range(TAGS_MAX)]
        assert parse_create({"title": "t", "tags": tags}).tags == tuple(tags)

    def test_every_bad_tag_is_reported_at_its_index(self) -> None:
        exc = create_error(
            {"title": "t", "tags": ["ok", 1, " ", "x" * (TAG_MAX + 1), " pad", "a\x01", "ok"]}
        )
        assert exc.errors == (
            FieldError("tags/1", "must be a string"),
            FieldError("tags/2", "must not be empty"),
            FieldError("tags/3", f"must be at most {TAG_MAX} characters"),
            FieldError("tags/4", "must not contain control or surrounding spaces"),
            FieldError("tags/5", "must not contain control or surrounding spaces"),
            FieldError("tags/6", "is a duplicate"),
        )

    def test_an_empty_tag_list_is_accepted(self) -> None:
        assert parse_create({"title": "t", "tags": []}).tags == ()

    def test_a_null_due_date_means_none(self) -> None:
        assert parse_create({"title": "t", "dueDate": None}).due_date is None

    @pytest.mark.parametrize(
        "due",
        [
            "2030-02-30",
            "2030-13-01",
            "2030-1-1",
            "20300131",
            "2030-W01",
            "30-01-2030",
            "2030/01/31",
            "2030-01-31T00:00:00",
            "2030-01-31 ",
            "tomorrow",
            "",
            "\uff12\uff10\uff13\uff10-01-31",  # full-width digits
            20300131,
            1893456000.0,
            ["2030-01-31"],
            {"date": "2030-01-31"},
            True,
        ],
    )
    def test_a_bad_due_date_is_refused(self, due: object) -> None:
        exc = create_error({"title": "t", "dueDate": due})
        assert exc.errors == (FieldError("dueDate", DATE_MESSAGE),)

    @pytest.mark.parametrize("due", ["2030-W01-1", "2030013199", "20300131xx"])
    def test_only_extended_calendar_dates_are_accepted(self, due: str) -> None:
        with pytest.raises(InvalidTask):
            parse_create({"title": "t", "dueDate": due})

    def test_the_snake_case_name_is_not_the_api_name(self) -> None:
        exc = create_error({"title": "t", "due_date": "2030-01-31"})
        assert exc.errors == (FieldError("due_date", "is not a known field"),)

    def test_unknown_fields_are_each_refused_in_sorted_order(self) -> None:
        exc = create_error({"title": "t", "zeta": 1, "Title": "t", "alpha": None})
        assert exc.fields == ("Title", "alpha", "zeta")
        assert {e.message for e in exc.errors} == {"is not a known field"}

    def test_non_string_keys_are_reported_without_crashing(self) -> None:
        exc = create_error({"title": "t", 1: "x", "b": "y"})
        assert exc.fields == ("1", "b")

    def test_every_field_error_is_collected_in_one_exception(self) -> None:
        exc = create_error(
            {
                "title": "",
                "description": 5,
                "priority": "urgent",
                "tags": ["a", "a"],
                "dueDate": "soon",
                "owner": "mallory",
            }
        )
        assert exc.fields == ("owner", "title", "description", "priority", "tags/1", "dueDate")
        assert exc.message == (
            "owner: is not a known field; title: must not be empty; "
            "description: must be a string; "
            f"priority: {PRIORITIES}; tags/1: is a duplicate; dueDate: {DATE_MESSAGE}"
        )
        assert exc.code == "invalid-task"

    def test_a_missing_title_is_collected_with_the_other_errors(self) -> None:
        exc = create_error({"priority": "nope", "tags": "x"})
        assert exc.fields == ("title", "priority", "tags")


class TestCollectorDay:
    """Every public parser allows a null date; the non-nullable mode is only reachable here."""

    def test_null_is_refused_where_a_date_is_not_nullable(self) -> None:
        collector = _Collector({"day": None}, ("day",))
        assert collector.day("day", nullable=False) is UNSET
        assert collector.errors == [FieldError("day", DATE_MESSAGE)]

    def test_null_is_read_as_none_where_a_date_is_nullable(self) -> None:
        collector = _Collector({"day": None}, ("day",))
        assert collector.day("day", nullable=True) is None
        assert collector.errors == []

    def test_a_date_is_read_either_way(self) -> None:
        collector = _Collector({"day": "2030-01-31"}, ("day",))
        assert collector.day("day", nullable=False) == date(2030, 1, 31)

    def test_an_absent_date_is_unset(self) -> None:
        collector = _Collector({}, ("day",))
        assert collector.day("day", nullable=False) is UNSET
        assert collector.errors == []


class TestCreateTaskFingerprint:
    BASE: dict[str, Any] = {  # noqa: RUF012
        "title": "Write the report",
        "description": "quarterly",
        "priority": Priority.HIGH,
        "tags": ("work", "q1"),
        "due_date": date(2030, 1, 31),
    }

    def test_it_is_a_sha256_hex_digest(self) -> None:
        digest = CreateTask(**self.BASE).fingerprint()
        assert len(digest) == 64
        assert set(digest) <= set("0123456789abcdef")

    def test_equal_commands_have_equal_fingerprints(self) -> None:
        assert CreateTask(**self.BASE).fingerprint() == CreateTask(**self.BASE).fingerprint()

    def test_it_is_stable_across_releases(self) -> None:
        # Fingerprints are stored with idempotency records: changing the digest breaks replays.
        assert CreateTask(title="t").fingerprint() == (
            "04b77ac6efac2107fabf30601ef8ff31b66fef7c053e893ea4c5b1e16a9b657b"
        )

    def test_a_parsed_command_matches_one_built_directly(self) -> None:
        parsed = parse_create(
            {
                "title": "Write the report",
                "description": "quarterly",
                "priority": "high",
                "tags": ["work", "q1"],
                "dueDate": "2030-01-31",
            }
        )
        assert parsed.fingerprint() == CreateTask(**self.BASE).fingerprint()

    def test_omitted_fields_and_their_defaults_fingerprint_alike(self) -> None:
        explicit = parse_create(
            {"title": "t", "description": "", "priority": "medium", "tags": [], "dueDate": None}
        )
        assert explicit.fingerprint() == parse_create({"title": "t"}).fingerprint()

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("title", "Write the other report"),
            ("description", "yearly"),
            ("priority", Priority.CRITICAL),
            ("tags", ("work",)),
            ("tags", ("q1", "work")),
            ("tags", ()),
            ("due_date", date(2030, 2, 1)),
            ("due_date", None),
        ],
    )
    def test_it_changes_with_each_field(self, field: str, value: object) -> None:
        changed = CreateTask(**{**self.BASE, field: value})
        assert changed.fingerprint() != CreateTask(**self.BASE).fingerprint()

    def test_text_cannot_move_between_fields_unnoticed(self) -> None:
        one = CreateTask(title="ab", description="c")
        other = CreateTask(title="a", description="bc")
        assert one.fingerprint() != other.fingerprint()

    def test_non_ascii_text_is_fingerprinted(self) -> None:
        assert CreateTask(title="Café").fingerprint() != CreateTask(title="Cafe").fingerprint()


class TestParseUpdate:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"title": "New"}, UpdateTask(title="New")),
            ({"description": ""}, UpdateTask(description="")),
            ({"priority": "low"}, UpdateTask(priority=Priority.LOW)),
            ({"tags": []}, UpdateTask(tags=())),
            ({"tags": ["a", "b"]}, UpdateTask(tags=("a", "b"))),
            ({"dueDate": "2031-12-31"}, UpdateTask(due_date=date(2031, 12, 31))),
            ({"dueDate": None}, UpdateTask(due_date=None)),
            ({"status": "in_progress"}, UpdateTask(status=Status.IN_PROGRESS)),
        ],
    )
    def test_a_single_field_is_read(self, body: dict[str, object], expected: UpdateTask) -> None:
        assert parse_update(body) == expected

    def test_fields_left_out_stay_unset(self) -> None:
        command = parse_update({"title": "New"})
        assert command.description is UNSET
        assert command.priority is UNSET
        assert command.tags is UNSET
        assert command.due_date is UNSET
        assert command.status is UNSET

    def test_an_explicit_null_due_date_is_not_unset(self) -> None:
        assert parse_update({"dueDate": None}).due_date is None

    def test_an_empty_body_must_change_something(self) -> None:
        exc = update_error({})
        assert exc.errors == (FieldError("", "must change at least one field"),)

    @pytest.mark.parametrize("body", NON_OBJECTS)
    def test_a_non_object_body_is_refused(self, body: object) -> None:
        exc = update_error(body)
        assert exc.errors == (FieldError("", "must be a JSON object"),)

    @pytest.mark.parametrize("status", ["done", "PENDING", None, 0, ["pending"]])
    def test_a_bad_status_lists_the_allowed_values(self, status: object) -> None:
        exc = update_error({"status": status})
        assert exc.errors == (FieldError("status", STATUSES),)

    def test_a_title_cannot_be_nulled(self) -> None:
        exc = update_error({"title": None})
        assert exc.errors == (FieldError("title", "must be a string"),)

    def test_unknown_fields_are_refused(self) -> None:
        exc = update_error({"title": "ok", "version": 3, "approval": "approved"})
        assert exc.fields == ("approval", "version")

    def test_every_field_error_is_collected_in_one_exception(self) -> None:
        exc = update_error(
            {
                "title": " ",
                "description": None,
                "priority": "p1",
                "tags": [None],
                "dueDate": 5,
                "status": "done",
                "id": "x",
            }
        )
        assert exc.fields == (
            "id",
            "title",
            "description",
            "priority",
            "tags/0",
            "dueDate",
            "status",
        )
        assert isinstance(exc, InvalidTask)

    def test_valid_fields_do_not_hide_invalid_ones(self) -> None:
        exc = update_error({"title": "fine", "status": "nope"})
        assert exc.fields == ("status",)


class TestUpdateTaskFieldChanges:
    def test_only_set_fields_are_listed(self) -> None:
        update = parse_update({"title": "New", "tags": ["a"]})
        assert update.field_changes() == {"title": "New", "tags": ("a",)}

    def test_status_is_a_transition_not_a_field(self) -> None:
        assert parse_update({"status": "completed"}).field_changes() == {}
        both = parse_update({"status": "completed", "priority": "high"})
        assert both.field_changes() == {"priority": Priority.HIGH}

    def test_a_null_due_date_is_a_change(self) -> None:
        assert parse_update({"dueDate": None}).field_changes() == {"due_date": None}

    def test_every_mutable_field_is_listed_under_its_model_name(self) -> None:
        update = UpdateTask(
            title="t",
            description="d",
            priority=Priority.LOW,
            tags=("x",),
            due_date=date(2030, 1, 1),
            status=Status.CANCELLED,
        )
        assert update.field_changes() == {
            "title": "t",
            "description": "d",
            "priority": Priority.LOW,
            "tags": ("x",),
            "due_date": date(2030, 1, 1),
        }

    def test_an_empty_update_changes_nothing(self) -> None:
        assert UpdateTask().field_changes() == {}


class TestParseQuery:
    def test_no_parameters_give_the_defaults(self) -> None:
        assert parse_query({}) == TaskQuery(
            status=None, priority=None, limit=LIST_LIMIT_DEFAULT, cursor=None
        )

    def test_every_parameter_is_read(self) -> None:
        query = parse_query(
            {"status": "completed", "priority": "low", "limit": "25", "cursor": "abc.def"}
        )
        assert query == TaskQuery(
            status=Status.COMPLETED, priority=Priority.LOW, limit=25, cursor="abc.def"
        )

    @pytest.mark.parametrize(
        ("raw", "limit"), [("1", 1), ("100", 100), ("0010", 10), ("00001", 1), ("50", 50)]
    )
    def test_a_limit_in_range_is_accepted(self, raw: str, limit: int) -> None:
        assert parse_query({"limit": raw}).limit == limit

    @pytest.mark.parametrize(
        "raw",
        [
            "0",
            "101",
            "99999",
            "100000",
            "9" * 5000,
            "-1",
            "+5",
            "1.5",
            "1e2",
            "ten",
            "",
            " 5",
            "5 ",
            "0x10",
            "²",
        ],
    )
    def test_a_bad_limit_is_refused(self, raw: str) -> None:
        exc = query_error({"limit": raw})
        assert exc.errors == (FieldError("limit", LIMIT_MESSAGE),)
        assert exc.code == "invalid-query"

    def test_a_limit_that_is_not_a_string_is_read_as_text(self) -> None:
        params: dict[str, Any] = {"limit": 7}
        assert parse_query(params).limit == 7

    def test_bad_filters_list_the_allowed_values(self) -> None:
        exc = query_error({"status": "done", "priority": "urgent"})
        assert exc.errors == (
            FieldError("status", STATUSES),
            FieldError("priority", PRIORITIES),
        )

    def test_an_empty_cursor_means_the_first_page(self) -> None:
        assert parse_query({"cursor": ""}).cursor is None

    def test_unknown_parameters_are_refused(self) -> None:
        exc = query_error({"sort": "title", "page": "2"})
        assert exc.fields == ("page", "sort")
        assert {e.message for e in exc.errors} == {"is not a known field"}

    def test_every_error_is_collected_in_one_exception(self) -> None:
        exc = query_error({"limit": "0", "status": "x", "priority": "y", "order": "asc"})
        assert exc.fields == ("order", "limit", "status", "priority")

    def test_the_caller_s_mapping_is_not_modified(self) -> None:
        params = {"limit": "10"}
        parse_query(params)
        assert params == {"limit": "10"}


class TestParseAttachment:
    VALID: dict[str, object] = {  # noqa: RUF012
        "filename": "report.pdf",
        "contentType": "application/pdf",
        "size": 1024,
    }

    def test_a_valid_body_is_read(self) -> None:
        assert parse_attachment(self.VALID) == AddAttachment(
            filename="report.pdf", content_type="application/pdf", size=1024
        )

    def test_the_content_type_is_lower_cased(self) -> None:
        body = {**self.VALID, "contentType": "Application/PDF"}
        assert parse_attachment(body).content_type == "application/pdf"

    @pytest.mark.parametrize("size", [1, ATTACHMENT_SIZE_MAX])
    def test_sizes_at_the_bounds_are_accepted(self, size: int) -> None:
        assert parse_attachment({**self.VALID, "size": size}).size == size

    @pytest.mark.parametrize(
        "size", [0, -1, ATTACHMENT_SIZE_MAX + 1, True, False, 0.0, 1.5, "10", None, [1]]
    )
    def test_a_bad_size_is_refused(self, size: object) -> None:
        exc = attachment_error({**self.VALID, "size": size})
        assert exc.errors == (FieldError("size", SIZE_MESSAGE),)

    @pytest.mark.parametrize(
        ("filename", "message"),
        [
            (None, "must be a string"),
            (3, "must be a string"),
            ("", "must be a file name"),
            ("   ", "must be a file name"),
            (".", "must be a file name"),
            ("..", "must be a file name"),
            ("f" * (FILENAME_MAX + 1), f"must be at most {FILENAME_MAX} characters"),
            ("../etc/passwd", "must not contain path separators"),
            ("dir\\file.txt", "must not contain path separators"),
            ("file\x00.pdf", "must not contain control characters"),
            # Names a reader could still take for a path, or for another name:
            ("...", "must be a file name"),
            (". .", "must be a file name"),
            ("\uff0e\uff0e", "must be a file name"),  # fullwidth dots: `..` under NFKC
            ("..\uff0f..\uff0fetc\uff0fpasswd", "must not contain path separators or look-alikes"),
            ("..\uff3cboot.ini", "must not contain path separators or look-alikes"),
            ("..\u2215etc\u2215passwd", "must not contain path separators or look-alikes"),
            ("..%2F..%2Fetc%2Fpasswd", "must not contain percent-escapes"),
            ("%2e%2e", "must not contain percent-escapes"),
            ("..%252Fetc", "must not contain percent-escapes"),
            ("invoice\u202efdp.exe", "must not contain bidirectional controls"),
            ("name\u2066.txt", "must not contain bidirectional controls"),
        ],
    )
    def test_a_bad_filename_is_refused(self, filename: object, message: str) -> None:
        exc = attachment_error({**self.VALID, "filename": filename})
        assert exc.errors == (FieldError("filename", message),)

    @pytest.mark.parametrize(
        "filename",
        [
            "résumé.pdf",
            "50%off.pdf",
            "Meeting 10:30.txt",
            ".bashrc",
            "a..b.txt",
            "\u05e9\u05dc\u05d5\u05dd.txt",
        ],
    )
    def test_plain_names_are_accepted(self, filename: str) -> None:
        assert parse_attachment({**self.VALID, "filename": filename}).filename == filename

    def test_a_filename_of_the_maximum_length_is_accepted(self) -> None:
        name = "f" * FILENAME_MAX
        assert parse_attachment({**self.VALID, "filename": name}).filename == name

    @pytest.mark.parametrize(
        ("content_type", "message"),
        [
            (None, MEDIA_TYPE),
            (12, MEDIA_TYPE),
            ("a/", MEDIA_TYPE),
            ("textplain", MEDIA_TYPE),
            ("a/" + "b" * (CONTENT_TYPE_MAX - 1), MEDIA_TYPE),
            ("text/plain; charset=utf-8", PLAIN_MEDIA_TYPE),
            ("text/ plain", PLAIN_MEDIA_TYPE),
            ("text/pl\u00e9", PLAIN_MEDIA_TYPE),
            ("text/plain\x7f", PLAIN_MEDIA_TYPE),
            ("text/plain\x1f", PLAIN_MEDIA_TYPE),
            ("text/plain\u2003", PLAIN_MEDIA_TYPE),
        ],
    )
    def test_a_bad_content_type_is_refused(self, content_type: object, message: str) -> None:
        exc = attachment_error({**self.VALID, "contentType": content_type})
        assert exc.errors == (FieldError("contentType", message),)

    @pytest.mark.parametrize("content_type", ["a/b", "a/" + "b" * (CONTENT_TYPE_MAX - 2)])
    def test_content_types_at_the_length_bounds_are_accepted(self, content_type: str) -> None:
        body = {**self.VALID, "contentType": content_type}
        assert parse_attachment(body).content_type == content_type

    def test_every_missing_field_is_reported(self) -> None:
        exc = attachment_error({})
        assert exc.errors == (
            FieldError("filename", "is required"),
            FieldError("contentType", "is required"),
            FieldError("size", "is required"),
        )

    @pytest.mark.parametrize("body", NON_OBJECTS)
    def test_a_non_object_body_is_refused(self, body: object) -> None:
        exc = attachment_error(body)
        assert exc.fields == ("", "filename", "contentType", "size")

    def test_every_field_error_is_collected_in_one_exception(self) -> None:
        exc = attachment_error(
            {"filename": "a/b", "contentType": "pdf", "size": 0, "checksum": "x"}
        )
        assert errors_of(exc) == {
            "checksum": "is not a known field",
            "filename": "must not contain path separators",
            "contentType": MEDIA_TYPE,
            "size": SIZE_MESSAGE,
        }
        assert exc.fields[0] == "checksum"

    def test_an_invalid_field_is_not_also_reported_missing(self) -> None:
        exc = attachment_error({**self.VALID, "size": None})
        assert exc.fields == ("size",)


class TestParseDecision:
    @pytest.mark.parametrize("decision", list(Decision))
    def test_each_decision_is_read(self, decision: Decision) -> None:
        assert parse_decision({"decision": decision.value}) == Decide(decision=decision)

    @pytest.mark.parametrize("value", ["expire", "APPROVE", "approved", None, 1])
    def test_a_bad_decision_lists_the_allowed_values(self, value: object) -> None:
        exc = decision_error({"decision": value})
        assert exc.errors == (FieldError("decision", DECISIONS),)

    def test_the_decision_is_required(self) -> None:
        exc = decision_error({})
        assert exc.errors == (FieldError("decision", "is required"),)

    @pytest.mark.parametrize("body", NON_OBJECTS)
    def test_a_non_object_body_is_refused(self, body: object) -> None:
        exc = decision_error(body)
        assert exc.fields == ("", "decision")

    def test_unknown_fields_are_collected_with_the_decision_error(self) -> None:
        exc = decision_error({"decision": "maybe", "comment": "hmm"})
        assert errors_of(exc) == {"comment": "is not a known field", "decision": DECISIONS}


class TestErrorHierarchy:
    @pytest.mark.parametrize(
        ("error", "parent"),
        [
            (NotFound, DomainError),
            (Forbidden, DomainError),
            (Conflict, DomainError),
            (InvalidTransition, Conflict),
            (ConcurrentModification, Conflict),
            (IdempotencyKeyReused, Conflict),
            (PreconditionFailed, DomainError),
            (InvalidInput, DomainError),
            (InvalidTask, InvalidInput),
            (InvalidQuery, InvalidInput),
            (InvalidCursor, InvalidInput),
            (Unavailable, DomainError),
            (DomainError, Exception),
        ],
    )
    def test_each_error_has_its_parent(self, error: type[Exception], parent: type) -> None:
        assert issubclass(error, parent)

    @pytest.mark.parametrize(
        "error", [NotFound, Forbidden, PreconditionFailed, InvalidInput, Unavailable]
    )
    def test_errors_that_are_not_conflicts(self, error: type[Exception]) -> None:
        assert not issubclass(error, Conflict)

    def test_every_error_has_its_own_code(self) -> None:
        kinds: list[type[DomainError]] = [
            DomainError,
            NotFound,
            Forbidden,
            Conflict,
            InvalidTransition,
            ConcurrentModification,
            IdempotencyKeyReused,
            PreconditionFailed,
            InvalidInput,
            InvalidTask,
            InvalidQuery,
            InvalidCursor,
            Unavailable,
        ]
        codes = [kind.code for kind in kinds]
        assert len(set(codes)) == len(codes)
        assert InvalidTransition.code == "invalid-transition"
        assert NotFound.code == "not-found"

    def test_a_domain_error_keeps_its_message(self) -> None:
        error = NotFound("task 1 not found")
        assert error.message == "task 1 not found"
        assert str(error) == "task 1 not found"

    def test_an_invalid_transition_carries_both_states(self) -> None:
        error = InvalidTransition("nope", current="cancelled", requested="edit")
        assert (error.message, error.current, error.requested) == ("nope", "cancelled", "edit")
        with pytest.raises(Conflict, match="nope"):
            raise error

    def test_a_failed_precondition_carries_both_versions(self) -> None:
        error = PreconditionFailed("stale", expected=3, actual=None)
        assert (error.message, error.expected, error.actual) == ("stale", 3, None)


class TestInvalidInput:
    def test_the_message_joins_every_field_error(self) -> None:
        error = InvalidInput([FieldError("title", "must not be empty"), FieldError("", "bad")])
        assert error.message == "title: must not be empty; : bad"
        assert str(error) == error.message

    def test_an_explicit_message_wins(self) -> None:
        error = InvalidInput([FieldError("title", "x")], "custom")
        assert str(error) == "custom"
        assert error.fields == ("title",)

    def test_errors_from_a_generator_are_kept_as_a_tuple(self) -> None:
        error = InvalidTask(FieldError(f"f{i}", "m") for i in range(3))
        assert error.errors == (FieldError("f0", "m"), FieldError("f1", "m"), FieldError("f2", "m"))
        assert error.fields == ("f0", "f1", "f2")
        assert error.fields == error.fields  # the generator was not consumed twice

    def test_no_errors_give_an_empty_message(self) -> None:
        error = InvalidQuery([])
        assert (error.message, error.fields) == ("", ())

    def test_an_invalid_cursor_is_about_the_cursor_field(self) -> None:
        error = InvalidCursor("has expired")
        assert error.errors == (FieldError("cursor", "has expired"),)
        assert str(error) == "cursor: has expired"

    def test_a_field_error_is_immutable(self) -> None:
        error = FieldError("title", "x")
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            error.field = "other"  # type: ignore[misc]


class TestAsciiOnlyNumbers:
    @pytest.mark.parametrize("limit", ["\u0661\u0660", "\uff11\uff10", "1e2", "+5", " 5"])
    def test_limit_takes_plain_ascii_digits_only(self, limit: str) -> None:
        with pytest.raises(InvalidQuery) as info:
            parse_query({"limit": limit})
        assert info.value.fields == ("limit",)
