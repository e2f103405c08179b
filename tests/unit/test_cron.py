"""CronJob schedules (_cron): robfig/cron's standard syntax as Kubernetes reads it, the next run, the missed runs
the cronjob controller counts (mostRecentScheduleTime) and its history limits."""

import datetime

import pytest

from ansible_collections.podkit.docker.plugins.module_utils._cron import (
    from_iso, history_to_remove, iso, job_name, missed_runs, next_run, parse_schedule, too_late)
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

UTC = datetime.timezone.utc


def at(*parts):
    return datetime.datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize("text, after, expected", [
    ("* * * * *", at(2026, 12, 3, 10, 0, 30), at(2026, 12, 3, 10, 1)),
    ("*/15 * * * *", at(2026, 12, 3, 10, 1), at(2026, 12, 3, 10, 15)),
    ("5/20 * * * *", at(2026, 12, 3, 10, 26), at(2026, 12, 3, 10, 45)),        # a value with a step runs to the end
    ("0 9-17/4 * * *", at(2026, 12, 3, 13, 0), at(2026, 12, 3, 17, 0)),
    ("0,30 8 * * *", at(2026, 12, 3, 8, 0), at(2026, 12, 3, 8, 30)),
    ("@hourly", at(2026, 12, 3, 10, 0), at(2026, 12, 3, 11, 0)),
    ("@daily", at(2026, 12, 3, 10, 0), at(2026, 12, 4, 0, 0)),
    ("@midnight", at(2026, 12, 3, 0, 0), at(2026, 12, 4, 0, 0)),
    ("@weekly", at(2026, 12, 3, 10, 0), at(2026, 12, 6, 0, 0)),                 # Sunday
    ("@monthly", at(2026, 12, 3, 10, 0), at(2027, 1, 1, 0, 0)),
    ("@yearly", at(2026, 12, 3, 10, 0), at(2027, 1, 1, 0, 0)),
    ("0 8 * * MON-FRI", at(2026, 12, 4, 9, 0), at(2026, 12, 7, 8, 0)),          # Friday -> Monday
    ("0 0 1 jan,jul *", at(2026, 12, 3), at(2027, 1, 1)),
    # Both day fields restricted: either matches (cron's rule, robfig/cron's dayMatches): the 13th or a Friday.
    ("0 0 13 * 5", at(2026, 12, 3), at(2026, 12, 4)),
    ("0 0 13 * 5", at(2026, 12, 11, 1), at(2026, 12, 13)),
    # One of them *: both must match.
    ("0 0 * * 5", at(2026, 12, 4, 1), at(2026, 12, 11)),
    ("0 0 ? * 5", at(2026, 12, 4, 1), at(2026, 12, 11)),
    ("0 0 29 2 *", at(2026, 3, 1), at(2028, 2, 29)),
])
def test_next_run(text, after, expected):
    assert next_run(parse_schedule(text, "spec.schedule"), after) == expected


def test_next_run_in_a_time_zone_and_never():
    berlin = parse_schedule("30 2 * * *", "spec.schedule", "Europe/Berlin")
    assert next_run(berlin, at(2026, 12, 3, 12)) == at(2026, 12, 4, 1, 30)        # CET: UTC+1
    assert next_run(berlin, at(2026, 7, 3, 12)) == at(2026, 7, 4, 0, 30)          # CEST: UTC+2
    assert next_run(parse_schedule("0 0 30 2 *", "spec.schedule"), at(2026, 1, 1)) is None


@pytest.mark.parametrize("text, message", [
    ("* * * *", "has 4 fields; a schedule has five"),
    ("60 * * * *", "minute field '60'): 60-60 is outside 0-59"),
    ("* * * * 7", "outside 0-6"),
    ("*/0 * * * *", "the step '0' must be a whole number of at least 1"),
    ("@every 5m", "'@every 5m' is not one of"),
    ("TZ=UTC * * * * *", "sets a time zone in the schedule, which the API server refuses"),
    ("* * * FOO *", "'FOO' is not a number or a name (JAN"),
    ("", "spec.schedule is required"),
])
def test_bad_schedules_are_named(text, message):
    with pytest.raises(PodkitError) as error:
        parse_schedule(text, "spec.schedule")
    assert message in error.value.msg and "spec.schedule" in error.value.msg


def test_unknown_time_zone_is_named():
    with pytest.raises(PodkitError) as error:
        parse_schedule("* * * * *", "spec.schedule", "Mars/Olympus", "spec.timeZone")
    assert "spec.timeZone: 'Mars/Olympus' is not a time zone" in error.value.msg


def test_missed_runs_give_one_catch_up_and_count_the_rest():
    every = parse_schedule("* * * * *", "s")
    # Down from 10:00 to 10:05:30: five missed, the most recent (10:05) is the one started.
    assert missed_runs(every, at(2026, 12, 3, 10, 0), at(2026, 12, 3, 10, 5, 30), None) == (at(2026, 12, 3, 10, 5), 5)
    # startingDeadlineSeconds 100 moves the earliest up to now - 100 s: only 10:04 and 10:05 are counted.
    assert missed_runs(every, at(2026, 12, 3, 10, 0), at(2026, 12, 3, 10, 5, 30), 100) == (at(2026, 12, 3, 10, 5), 2)
    # Nothing due yet.
    assert missed_runs(every, at(2026, 12, 3, 10, 5), at(2026, 12, 3, 10, 5, 59), None) == (None, 0)
    hourly = parse_schedule("@hourly", "s")
    assert missed_runs(hourly, at(2026, 12, 3, 7, 10), at(2026, 12, 3, 10, 5), None) == (at(2026, 12, 3, 10, 0), 3)


def test_too_late_only_past_the_starting_deadline():
    scheduled = at(2026, 12, 3, 10, 0)
    assert not too_late(scheduled, at(2026, 12, 3, 10, 0, 30), 30)
    assert too_late(scheduled, at(2026, 12, 3, 10, 0, 31), 30)
    assert not too_late(scheduled, at(2027, 1, 1), None)


def test_job_name_is_the_cronjob_and_its_minute():
    assert job_name("backup", at(2026, 12, 3, 10, 5)) == "backup-%d" % (at(2026, 12, 3, 10, 5).timestamp() // 60)


def test_history_keeps_the_newest_of_each_kind():
    finished = [("j1", at(2026, 1, 1, 0, 1), True), ("j2", at(2026, 1, 1, 0, 2), False), ("j3", at(2026, 1, 1, 0, 3), True),
                ("j4", at(2026, 1, 1, 0, 4), False), ("j5", at(2026, 1, 1, 0, 5), True)]
    assert sorted(history_to_remove(finished, 1, 1)) == ["j1", "j2", "j3"]
    assert history_to_remove(finished, 3, 2) == []
    assert sorted(history_to_remove(finished, 0, 0)) == ["j1", "j2", "j3", "j4", "j5"]


def test_times_written_are_read_back_in_utc():
    moment = datetime.datetime(2026, 12, 4, 3, 0, 59, tzinfo=datetime.timezone.utc)
    assert from_iso(iso(moment)) == moment and from_iso(None) is None and from_iso("yesterday") is None
