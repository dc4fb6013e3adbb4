"""EventBridge schedule expressions (`stack.schedules`): what AWS accepts, and when a schedule
fires; the manifest's schedules are valid and the sweep's fires as often as its window needs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stack import manifest, schedules
from stack.manifest import Schedule
from taskcore.services.reminders import LOOKBACK, SWEEP_EVERY

T0 = datetime(2030, 1, 1, 9, 7, 30, tzinfo=UTC)  # a Tuesday

# The EventBridge User Guide's own examples (eb-scheduled-rule-pattern, eb-rate-expressions).
GUIDE_EXAMPLES = [
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0 0 L * ? *)",
    "cron(0 9 3W * ? *)",
    "cron(0 0 ? * 6L *)",
    "cron(0 0 1 JAN,JUL ? 2030-2035)",
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(1 day)",
]


class TestWhatAwsAccepts:
    @pytest.mark.parametrize("expression", GUIDE_EXAMPLES)
    def test_the_guides_examples_are_accepted(self, expression: str) -> None:
        assert schedules.problems(expression) == []

    @pytest.mark.parametrize(
        ("expression", "problem"),
        [
            ("rate(1 hours)", "singular for 1 and plural otherwise"),
            ("rate(5 hour)", "singular for 1 and plural otherwise"),
            ("rate(0 minutes)", "a positive whole number"),
            ("rate(1.5 hours)", "a positive whole number"),
            ("rate(2 weeks)", "not minute(s), hour(s) or day(s)"),
            ("rate(5minutes)", "a positive whole number"),
            ("cron(0 9 * * MON *)", "exactly one of day-of-month and day-of-week must be ?"),
            ("cron(0 9 ? * ? *)", "exactly one of day-of-month and day-of-week must be ?"),
            ("cron(0 9 * *)", "six fields"),
            ("cron(0 9 * * ?  *)", "six fields"),
            ("cron(60 * * * ? *)", "minutes: '60' is not a value or range of 0-59"),
            ("cron(0 24 * * ? *)", "hours: '24'"),
            ("cron(0 0 32 * ? *)", "day-of-month: '32'"),
            ("cron(0 0 * 13 ? *)", "month: '13'"),
            ("cron(0 0 ? * 8 *)", "day-of-week: '8'"),
            ("cron(0 0 * * ? 1969)", "year: '1969'"),
            ("cron(0 0 * * ? 2200)", "year: '2200'"),
            ("cron(0 0 * JUNE ? *)", "month: 'JUNE'"),
            ("cron(0 0 * jan ? *)", "month: 'jan'"),
            ("cron(0 ? * * ? *)", "hours: ? is not allowed"),
            ("cron(0 0 ? * 2/2 *)", "day-of-week: / is not allowed"),
            ("cron(0/0 * * * ? *)", "the increment in '0/0' is not a positive whole number"),
            ("cron(0 0 ? * 3#1,6#3 *)", "only one such expression"),
            ("cron(0 0 ? * 3#6 *)", "<day>#<1-5>"),
            ("cron(0 0 L/2 * ? *)", "cannot take an increment"),
            ("cron(0 L * * ? *)", "hours: 'L' is not allowed"),
            ("cron(0 0 ? * 3W *)", "day-of-week: '3W' is not allowed"),
            ("cron(0 0 ? * FRI-MON *)", "runs backwards"),
            ("cron(0 0 * * ? *) ", "not cron(...) or rate(...)"),
            ("at(2030-01-01T00:00:00)", "not cron(...) or rate(...)"),
            ("cron(0 " + "0," * 130 + "0 * * ? *)", "longer than 256 characters"),
        ],
    )
    def test_what_the_guide_rules_out_is_refused(self, expression: str, problem: str) -> None:
        assert any(problem in found for found in schedules.problems(expression)), (
            schedules.problems(expression)
        )

    def test_a_schedule_is_checked_when_the_manifest_names_it(self) -> None:
        assert Schedule(name="ok", expression="rate(5 minutes)").expression == "rate(5 minutes)"
        with pytest.raises(ValueError, match="singular for 1"):
            Schedule(name="bad", expression="rate(1 minutes)")


class TestWhenItFires:
    @pytest.mark.parametrize(
        ("expression", "expected"),
        [
            ("cron(0/15 * * * ? *)", datetime(2030, 1, 1, 9, 15, tzinfo=UTC)),
            ("cron(0 * * * ? *)", datetime(2030, 1, 1, 10, 0, tzinfo=UTC)),
            ("cron(7 9 * * ? *)", datetime(2030, 1, 2, 9, 7, tzinfo=UTC)),  # 9:07 has passed
            ("cron(0 18 ? * MON-FRI *)", datetime(2030, 1, 1, 18, 0, tzinfo=UTC)),
            ("cron(0 9 ? * SAT,SUN *)", datetime(2030, 1, 5, 9, 0, tzinfo=UTC)),
            ("cron(0 9 ? * 1 *)", datetime(2030, 1, 6, 9, 0, tzinfo=UTC)),  # 1 is Sunday
            ("cron(0 8 1 * ? *)", datetime(2030, 2, 1, 8, 0, tzinfo=UTC)),
            ("cron(30 23 31 DEC ? *)", datetime(2030, 12, 31, 23, 30, tzinfo=UTC)),
            ("cron(0 0 1 JAN ? 2032)", datetime(2032, 1, 1, 0, 0, tzinfo=UTC)),
            ("cron(0/5 8-17 ? * MON-FRI *)", datetime(2030, 1, 1, 9, 10, tzinfo=UTC)),
            ("cron(10-40/10 * * * ? *)", datetime(2030, 1, 1, 9, 10, tzinfo=UTC)),
            # Names with an L or a W in them are names, not the last-day or weekday forms.
            ("cron(0 9 ? * WED *)", datetime(2030, 1, 2, 9, 0, tzinfo=UTC)),
            ("cron(0 0 1 JAN,JUL ? *)", datetime(2030, 7, 1, 0, 0, tzinfo=UTC)),
        ],
    )
    def test_a_cron_fires_on_the_next_minute_it_names(
        self, expression: str, expected: datetime
    ) -> None:
        assert schedules.next_fire(expression, T0, origin=T0) == expected

    def test_a_cron_whose_years_are_past_fires_no_more(self) -> None:
        assert schedules.next_fire("cron(0 0 * * ? 2029)", T0, origin=T0) is None

    def test_a_rate_counts_from_its_origin(self) -> None:
        origin = T0
        assert schedules.next_fire("rate(5 minutes)", origin, origin=origin) == T0 + timedelta(
            minutes=5
        )
        later = T0 + timedelta(minutes=12)
        assert schedules.next_fire("rate(5 minutes)", later, origin=origin) == T0 + timedelta(
            minutes=15
        )
        before = T0 - timedelta(hours=1)
        assert schedules.next_fire("rate(1 hour)", before, origin=origin) == T0 + timedelta(hours=1)

    @pytest.mark.parametrize(
        ("expression", "gap"),
        [
            ("cron(0/15 * * * ? *)", timedelta(minutes=15)),
            ("cron(0 18 ? * MON-FRI *)", timedelta(days=3)),
            ("rate(2 hours)", timedelta(hours=2)),
        ],
    )
    def test_the_longest_gap(self, expression: str, gap: timedelta) -> None:
        assert schedules.longest_gap(expression, origin=T0, within=timedelta(days=8)) == gap

    def test_a_schedule_firing_less_than_twice_has_no_gap(self) -> None:
        monthly = "cron(0 8 1 * ? *)"
        assert schedules.longest_gap(monthly, origin=T0, within=timedelta(days=8)) is None

    @pytest.mark.parametrize(
        "expression", ["cron(0 0 L * ? *)", "cron(0 9 3W * ? *)", "cron(0 9 ? * 2#1 *)"]
    )
    def test_last_and_weekday_forms_are_valid_but_not_computed(self, expression: str) -> None:
        assert schedules.problems(expression) == []
        with pytest.raises(schedules.Unsupported):
            schedules.next_fire(expression, T0, origin=T0)

    def test_an_invalid_expression_cannot_be_computed(self) -> None:
        with pytest.raises(ValueError, match="six fields"):
            schedules.next_fire("cron(0 9 * *)", T0, origin=T0)
        with pytest.raises(ValueError, match="singular"):
            schedules.next_fire("rate(1 minutes)", T0, origin=T0)


class TestTheManifestsSchedules:
    def test_every_schedule_is_valid_and_computable(self) -> None:
        for function in manifest.FUNCTIONS:
            for schedule in function.schedules:
                assert schedules.problems(schedule.expression) == []
                assert schedules.next_fire(schedule.expression, T0, origin=T0) is not None

    def test_the_reminder_sweep_runs_as_often_as_its_window_assumes(self) -> None:
        """Each window reaches back two runs (`LOOKBACK`): the runs must come every
        `SWEEP_EVERY` at most, for a lost run to lose nothing."""
        (schedule,) = manifest.function("reminders").schedules
        gap = schedules.longest_gap(schedule.expression, origin=T0, within=timedelta(days=8))
        assert gap == SWEEP_EVERY
        assert 2 * gap <= LOOKBACK
        midnight = datetime(2030, 1, 2, tzinfo=UTC)
        assert schedules.next_fire(schedule.expression, midnight - timedelta(seconds=1), origin=T0)
        assert (
            schedules.next_fire(schedule.expression, midnight - timedelta(seconds=1), origin=T0)
            == midnight
        ), "a run at 00:00 finds the reminders that became due at the start of the day"
        assert schedule.max_event_age_s <= SWEEP_EVERY.total_seconds()
