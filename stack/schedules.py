"""EventBridge schedule expressions: what AWS accepts (`problems`), and when one fires
(`next_fire`), for the manifest's `Schedule` triggers.

The rules are the EventBridge User Guide's, "Using cron and rate expressions to schedule rules"
(<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html>) and
"Rate expressions reference" (<https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rate-expressions.html>),
read in stored copies of the pages; botocore's model only caps the length (256):

- "Cron expressions have six required fields, which are separated by white space", with these
  values and wildcards: minutes 0-59 `, - * /`; hours 0-23 `, - * /`; day-of-month 1-31
  `, - * ? / L W`; month 1-12 or JAN-DEC `, - * /`; day-of-week 1-7 or SUN-SAT `, - * ? L #`;
  year 1970-2199 `, - * /`.
- "You can't specify the Day-of-month and Day-of-week fields in the same cron expression. If
  you specify a value or a * (asterisk) in one of the fields, you must use a ? (question mark)
  in the other."
- "If you use the '#' character, you can define only one expression in the day-of-week field."
- `rate(value unit)`: "value: A positive number"; "Valid values: minute | minutes | hour |
  hours | day | days"; "If the value is equal to 1, then the unit must be singular. If the
  value is greater than 1, the unit must be plural."

Where the guide is silent, these rules are stricter than AWS may be, never looser: a range
must not run backwards (`FRI-MON`), names are upper case, fields are one space apart, a rate's
value is a whole number. Times are UTC, as EventBridge's rules run.

`next_fire` computes cron schedules with values, ranges, lists, `*`, `?` and increments (what
the local platform needs to fire them); `L`, `W` and `#` are valid but not computed here
(`Unsupported`), so a schedule using them is refused where it would have to fire locally.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import attrs

MAX_LENGTH = 256  # botocore: events PutRule ScheduleExpression, "max": 256

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


@attrs.frozen
class Field:
    name: str
    low: int
    high: int
    wildcards: str
    names: tuple[str, ...] = ()


FIELDS = (
    Field("minutes", 0, 59, ",-*/"),
    Field("hours", 0, 23, ",-*/"),
    Field("day-of-month", 1, 31, ",-*?/LW"),
    Field("month", 1, 12, ",-*/", MONTHS),
    Field("day-of-week", 1, 7, ",-*?L#", DAYS),
    Field("year", 1970, 2199, ",-*/"),
)
RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86400}
CRON = re.compile(r"cron\((.*)\)", re.DOTALL)
SPECIAL = re.compile(r"L|LW|[0-9]+W|([0-9]+|[A-Z]{3})L")
"""The last-day (`L`) and nearest-weekday (`W`) forms (names such as JUL or WED are not)."""
RATE = re.compile(r"rate\((.*)\)", re.DOTALL)


class Unsupported(ValueError):
    """A valid expression whose firing times this module does not compute (`L`, `W`, `#`)."""


def problems(expression: str) -> list[str]:
    """Why EventBridge would refuse `expression` as a rule's schedule (empty: it accepts it)."""
    if len(expression) > MAX_LENGTH:
        return [f"longer than {MAX_LENGTH} characters"]
    if cron := CRON.fullmatch(expression):
        return _cron_problems(cron.group(1))
    if rate := RATE.fullmatch(expression):
        return _rate_problems(rate.group(1))
    return ["not cron(...) or rate(...)"]


def check(expression: str) -> str:
    """`expression` if EventBridge accepts it; ValueError saying why not."""
    found = problems(expression)
    if found:
        raise ValueError(f"schedule expression {expression!r}: " + "; ".join(found))
    return expression


def _rate_problems(body: str) -> list[str]:
    parts = body.split(" ")
    if len(parts) != 2 or not re.fullmatch(r"[1-9][0-9]*", parts[0]):
        return ["a rate is rate(value unit), the value a positive whole number"]
    value, unit = int(parts[0]), parts[1]
    if unit.removesuffix("s") not in RATE_UNITS:
        return [f"unit {unit!r} is not minute(s), hour(s) or day(s)"]
    if (value == 1) != (not unit.endswith("s")):
        return [f"rate({body}): the unit is singular for 1 and plural otherwise"]
    return []


def _cron_problems(body: str) -> list[str]:
    fields = body.split(" ")
    if len(fields) != len(FIELDS):
        return [f"a cron expression has six fields one space apart, not {body!r}"]
    found = [p for field, text in zip(FIELDS, fields, strict=True) for p in _field(field, text)]
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        found.append("exactly one of day-of-month and day-of-week must be ?")
    return found


def _value(field: Field, text: str) -> int | None:
    if text in field.names:
        return field.names.index(text) + 1
    if re.fullmatch(r"[0-9]+", text) and field.low <= int(text) <= field.high:
        return int(text)
    return None


def _field(field: Field, text: str) -> Iterator[str]:
    if text == "?":
        if "?" not in field.wildcards:
            yield f"{field.name}: ? is not allowed"
        return
    if "#" in text:
        yield from _nth_weekday(field, text)
        return
    for item in text.split(","):
        yield from _item(field, item)


def _nth_weekday(field: Field, text: str) -> Iterator[str]:
    day, _, nth = text.partition("#")
    if "#" not in field.wildcards:
        yield f"{field.name}: # is not allowed"
    elif _value(field, day) is None or nth not in ("1", "2", "3", "4", "5"):
        yield f"{field.name}: {text!r} is not <day>#<1-5> (and only one such expression)"


def _item(field: Field, item: str) -> Iterator[str]:
    base, slash, step = item.partition("/")
    if slash:
        if "/" not in field.wildcards:
            yield f"{field.name}: / is not allowed"
            return
        if not re.fullmatch(r"[1-9][0-9]*", step):
            yield f"{field.name}: the increment in {item!r} is not a positive whole number"
    if base == "*":
        return
    if SPECIAL.fullmatch(base):
        yield from _last_or_weekday(field, base, increment=bool(slash))
        return
    low, dash, high = base.partition("-")
    if dash and "-" not in field.wildcards:
        yield f"{field.name}: - is not allowed"
        return
    first, last = _value(field, low), _value(field, high) if dash else None
    if first is None or (dash and last is None):
        yield f"{field.name}: {base!r} is not a value or range of {field.low}-{field.high}"
    elif last is not None and last < first:
        yield f"{field.name}: the range {base!r} runs backwards"


def _last_or_weekday(field: Field, base: str, *, increment: bool) -> Iterator[str]:
    """`L` (the last day: of the month, or `<day>L` of the week) and `W` (`<n>W`, `LW`: the
    weekday nearest a day of the month)."""
    if field.name == "day-of-month":
        valid = base in ("L", "LW") or (base.endswith("W") and _value(field, base[:-1]))
    elif field.name == "day-of-week":
        valid = base == "L" or (base.endswith("L") and bool(_value(field, base[:-1])))
    else:
        valid = False
    if not valid:
        yield f"{field.name}: {base!r} is not allowed"
    elif increment:
        yield f"{field.name}: {base!r} cannot take an increment"


# -- when a schedule fires -----------------------------------------------------------------------


def _allowed(field: Field, text: str) -> frozenset[int]:
    """The values a (valid) cron field allows; `?` allows every value (the other day field
    decides)."""
    if "#" in text or any(SPECIAL.fullmatch(item.partition("/")[0]) for item in text.split(",")):
        raise Unsupported(f"{field.name} {text!r}: L, W and # are not computed here")
    if text in ("*", "?"):
        return frozenset(range(field.low, field.high + 1))
    values: set[int] = set()
    for item in text.split(","):
        base, _, step = item.partition("/")
        low, dash, high = base.partition("-")
        if base == "*":
            first, last = field.low, field.high
        else:
            first = _value(field, low) or 0
            last = (_value(field, high) or 0) if dash else (field.high if step else first)
        values.update(range(first, last + 1, int(step) if step else 1))
    return frozenset(values)


@attrs.frozen
class Cron:
    """A cron expression's allowed values, field by field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 1 = Sunday, as EventBridge counts
    years: frozenset[int]
    any_day: bool  # day-of-month is ?: day-of-week decides (else day-of-week is ?)

    @classmethod
    def parse(cls, expression: str) -> Cron:
        body = CRON.fullmatch(check(expression))
        if body is None:
            raise ValueError(f"{expression!r} is not a cron expression")
        fields = body.group(1).split(" ")
        minutes, hours, days, months, weekdays, years = (
            _allowed(f, text) for f, text in zip(FIELDS, fields, strict=True)
        )
        return cls(
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=weekdays,
            years=years,
            any_day=fields[2] == "?",
        )

    def day_matches(self, moment: datetime) -> bool:
        weekday = moment.isoweekday() % 7 + 1  # Monday is 2, Sunday 1
        if self.any_day:
            return weekday in self.weekdays
        return moment.day in self.days

    def next_after(self, after: datetime) -> datetime | None:
        """The first minute strictly after `after` that the expression fires at (UTC); None
        if it never fires again (its years are past)."""
        moment = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        while moment.year <= FIELDS[5].high:
            if moment.year not in self.years:
                moment = datetime(moment.year + 1, 1, 1, tzinfo=UTC)
            elif moment.month not in self.months:
                year, month = divmod(moment.month, 12)
                moment = datetime(moment.year + year, month + 1, 1, tzinfo=UTC)
            elif not self.day_matches(moment):
                moment = datetime.combine(moment.date() + timedelta(days=1), time(), UTC)
            elif moment.hour not in self.hours:
                moment = moment.replace(minute=0) + timedelta(hours=1)
            elif moment.minute not in self.minutes:
                moment += timedelta(minutes=1)
            else:
                return moment
        return None


def rate_period(expression: str) -> timedelta:
    body = RATE.fullmatch(check(expression))
    if body is None:
        raise ValueError(f"{expression!r} is not a rate expression")
    value, unit = body.group(1).split(" ")
    return timedelta(seconds=int(value) * RATE_UNITS[unit.removesuffix("s")])


def next_fire(expression: str, after: datetime, *, origin: datetime) -> datetime | None:
    """When `expression` next fires strictly after `after`. A rate counts from `origin` (AWS:
    "A rate expression starts when you create the scheduled event rule"); a cron expression
    fires on the minutes it names, whatever the origin."""
    if CRON.fullmatch(expression):
        return Cron.parse(expression).next_after(after)
    period = rate_period(expression)
    elapsed = max(after - origin, timedelta(0))
    return origin + (elapsed // period + 1) * period


def longest_gap(expression: str, *, origin: datetime, within: timedelta) -> timedelta | None:
    """The longest time between two firings within `within` from `origin` (None: it fires
    fewer than twice in it)."""
    fires: list[datetime] = []
    moment: datetime | None = origin
    while moment is not None and moment <= origin + within:
        fires.append(moment)
        moment = next_fire(expression, moment, origin=origin)
    # The origin is where counting starts, not a firing (unless the schedule fires then too).
    gaps = [later - earlier for earlier, later in itertools.pairwise(fires[1:])]
    return max(gaps) if gaps else None
