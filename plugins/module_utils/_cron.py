# -*- coding: utf-8 -*-
# Copyright: podkit.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""CronJob schedules (pure): cron syntax, the next run, and which missed run to start.

Kubernetes reads a CronJob's ``schedule`` with robfig/cron's standard parser: five fields (minute, hour,
day of month, month, day of week), ``*``/``?``, ranges, steps, lists, month and weekday names, and the
descriptors ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``), ``@hourly``.
When both day fields are restricted a day matching either runs (cron's rule); when one is ``*`` both must.
``timeZone`` is an IANA name (zoneinfo); a ``TZ=``/``CRON_TZ=`` prefix in the schedule is refused, as the
API server refuses it since 1.27.

Missed runs are counted as the cronjob controller's ``mostRecentScheduleTime``
(pkg/controller/cronjob/utils.go) does: from the last scheduled time (or the CronJob's creation), no earlier
than ``now - startingDeadlineSeconds`` when it is set, up to now; only the most recent of them is started (at
most one catch-up), and not when it is later than its starting deadline (syncCronJob's tooLate).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, FrozenSet, List, Optional, Tuple

from ansible_collections.podkit.docker.plugins.module_utils._docker import docker_time
from ansible_collections.podkit.docker.plugins.module_utils._errors import PodkitError

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# (name, lowest, highest, names) of the five fields, as robfig/cron bounds them.
FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()), ("month", 1, 12, MONTHS),
          ("day of week", 0, 6, DAYS))
YEARS_AHEAD = 5          # robfig/cron gives up looking for a next time after five years (Feb 30 never comes)
MINUTE = datetime.timedelta(minutes=1)
UTC = datetime.timezone.utc


@dataclass(frozen=True)
class Schedule:
    minutes: FrozenSet[int]
    hours: FrozenSet[int]
    days: FrozenSet[int]
    months: FrozenSet[int]
    weekdays: FrozenSet[int]
    any_day: bool            # day of month was * or ?
    any_weekday: bool        # day of week was * or ?
    zone: Any = UTC

    def day_matches(self, moment: datetime.datetime) -> bool:
        day = moment.day in self.days
        weekday = (moment.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday


def _value(text: str, names: Tuple[str, ...], where: str) -> int:
    upper = text.upper()
    if names and upper in names:
        return names.index(upper) + (1 if names is MONTHS else 0)
    if not text.isdigit():
        raise PodkitError("%s: %r is not a number%s." % (where, text, " or a name (%s)" % ", ".join(names) if names else ""))
    return int(text)


def _field(text: str, index: int, where: str) -> Tuple[FrozenSet[int], bool]:
    name, low, high, names = FIELDS[index]
    place = "%s (%s field %r)" % (where, name, text)
    values = set()
    star = text in ("*", "?")
    for part in text.split(","):
        step, stepped = 1, "/" in part
        if stepped:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) < 1:
                raise PodkitError("%s: the step %r must be a whole number of at least 1." % (place, step_text))
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            first_text, last_text = part.split("-", 1)
            first, last = _value(first_text, names, place), _value(last_text, names, place)
        else:
            first = _value(part, names, place)
            # robfig/cron: a single value with a step runs from it to the field's end ("5/15": 5, 20, 35, 50).
            last = high if stepped else first
        if first < low or last > high or first > last:
            raise PodkitError("%s: %s-%s is outside %d-%d." % (place, first, last, low, high))
        values.update(range(first, last + 1, step))
    return frozenset(values), star


def zone_of(name: Optional[str], where: str) -> Any:
    if not name:
        return UTC
    try:
        import zoneinfo  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise PodkitError("%s: timeZone needs Python 3.9 or later (zoneinfo) on the Docker host; leave it out to"
                          " schedule in UTC." % where)
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PodkitError("%s: %r is not a time zone this host knows (an IANA name such as Europe/Berlin; install"
                          " tzdata)." % (where, name))


def parse_schedule(text: Any, where: str, time_zone: Optional[str] = None, zone_where: str = "timeZone") -> Schedule:
    if not isinstance(text, str) or not text.strip():
        raise PodkitError("%s is required: a cron schedule such as '*/5 * * * *' or '@hourly'." % where)
    text = " ".join(text.split())
    if text.startswith(("TZ=", "CRON_TZ=")):
        raise PodkitError("%s: %r sets a time zone in the schedule, which the API server refuses; give it in"
                          " spec.timeZone." % (where, text))
    if text.startswith("@"):
        if text not in DESCRIPTORS:
            raise PodkitError("%s: %r is not one of %s." % (where, text, ", ".join(sorted(DESCRIPTORS))))
        text = DESCRIPTORS[text]
    parts = text.split(" ")
    if len(parts) != 5:
        raise PodkitError("%s: %r has %d fields; a schedule has five (minute hour day-of-month month day-of-week)."
                          % (where, text, len(parts)))
    fields = [_field(part, index, where) for index, part in enumerate(parts)]
    weekdays = set(fields[4][0])
    return Schedule(minutes=fields[0][0], hours=fields[1][0], days=fields[2][0], months=fields[3][0],
                    weekdays=frozenset(weekdays), any_day=fields[2][1], any_weekday=fields[4][1],
                    zone=zone_of(time_zone, zone_where))


def next_run(schedule: Schedule, after: datetime.datetime) -> Optional[datetime.datetime]:
    """The first scheduled time strictly after ``after`` (aware), in UTC; None within five years."""
    local = after.astimezone(schedule.zone).replace(tzinfo=None, second=0, microsecond=0) + MINUTE
    limit = local.year + YEARS_AHEAD
    while local.year <= limit:
        if local.month not in schedule.months:
            local = (local.replace(day=1, hour=0, minute=0) + datetime.timedelta(days=32)).replace(day=1)
            continue
        if not schedule.day_matches(local):
            local = local.replace(hour=0, minute=0) + datetime.timedelta(days=1)
            continue
        if local.hour not in schedule.hours:
            local = local.replace(minute=0) + datetime.timedelta(hours=1)
            continue
        if local.minute not in schedule.minutes:
            local += MINUTE
            continue
        moment = local.replace(tzinfo=schedule.zone).astimezone(UTC)
        if moment > after:
            return moment
        local += MINUTE
    return None


def missed_runs(schedule: Schedule, earliest: datetime.datetime, now: datetime.datetime,
                deadline: Optional[int]) -> Tuple[Optional[datetime.datetime], int]:
    """(the most recent scheduled time not run, how many were missed) between ``earliest`` (the last scheduled
    time, or the CronJob's creation) and ``now``: mostRecentScheduleTime, with startingDeadlineSeconds moving
    ``earliest`` up to ``now - deadline``."""
    if deadline is not None:
        earliest = max(earliest, now - datetime.timedelta(seconds=deadline))
    most_recent, count = None, 0
    moment = next_run(schedule, earliest)
    while moment is not None and moment <= now:
        most_recent, count = moment, count + 1
        moment = next_run(schedule, moment)
    return most_recent, count


def too_late(scheduled: datetime.datetime, now: datetime.datetime, deadline: Optional[int]) -> bool:
    """syncCronJob's tooLate: a run later than startingDeadlineSeconds after its time is not started."""
    return deadline is not None and scheduled + datetime.timedelta(seconds=deadline) < now


def job_name(cronjob: str, scheduled: datetime.datetime) -> str:
    """The Job of one scheduled time, as the cronjob controller names it: ``<cronjob>-<minutes since the epoch>``."""
    return "%s-%d" % (cronjob, int(scheduled.timestamp()) // 60)


def iso(moment: Optional[datetime.datetime]) -> Optional[str]:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def from_iso(text: Optional[str]) -> Optional[datetime.datetime]:
    """A time ``iso`` wrote, back (to the second); None for none or what does not parse."""
    nanos = docker_time(text)
    return datetime.datetime.fromtimestamp(nanos // 1000000000, UTC) if nanos else None


def history_to_remove(finished: List[Tuple[str, datetime.datetime, bool]], successful: int, failed: int) -> List[str]:
    """The finished Jobs ((name, scheduled time, succeeded)) beyond successfulJobsHistoryLimit and
    failedJobsHistoryLimit, the oldest first (cleanupFinishedJobs)."""
    gone = []
    for ok, limit in ((True, successful), (False, failed)):
        mine = sorted((item for item in finished if item[2] is ok), key=lambda item: item[1])
        gone.extend(name for name, _when, _ok in mine[:max(0, len(mine) - limit)])
    return gone
