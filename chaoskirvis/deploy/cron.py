"""A CronJob schedule checked before it is rendered, as Kubernetes parses it (robfig/cron's standard
parser: five fields, or a descriptor such as ``@daily``; no ``TZ=``: the CronJob's ``timeZone`` says that)."""
from __future__ import annotations

import re

__all__ = ["schedule_problem"]

_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MONTHS = {name: number for number, name in enumerate(
    ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), start=1)}
_DAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
# (name, lowest, highest, names, whether `?` may stand for `*`)
_FIELDS = (("minute", 0, 59, {}, False), ("hour", 0, 23, {}, False), ("day of month", 1, 31, {}, True),
           ("month", 1, 12, _MONTHS, False), ("day of week", 0, 6, _DAYS, True))
_EVERY = re.compile(r"@every ((\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)")


def schedule_problem(schedule: str) -> str | None:
    """Why Kubernetes would refuse `schedule`, or None when it is valid."""
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        return "a time zone goes in the CronJob's timeZone (--time-zone), not in the schedule"
    if text.startswith("@"):
        return None if text in _DESCRIPTORS or _EVERY.fullmatch(text) else \
            f"unknown descriptor {text!r}: use one of {', '.join(sorted(_DESCRIPTORS))} or five fields"
    fields = text.split()
    if len(fields) != 5:
        return (f"{len(fields)} field(s): a schedule has five (minute hour day-of-month month day-of-week), "
                "e.g. '0 3 * * *'")
    for value, (name, low, high, names, question) in zip(fields, _FIELDS):
        for part in value.split(","):
            problem = _part_problem(part, low, high, names, question)
            if problem:
                return f"{name} {value!r}: {problem}"
    return None


def _part_problem(part: str, low: int, high: int, names: dict[str, int], question: bool) -> str | None:
    span, _, step = part.partition("/")
    if step and not (step.isdigit() and int(step) > 0):
        return f"step {step!r} is not a positive number"
    if span == "*" or (question and span == "?"):
        return None
    first, dash, last = span.partition("-")
    bounds = []
    for bound in (first, last) if dash else (first,):
        number = names.get(bound.upper()) if not bound.isdigit() else int(bound)
        if number is None:
            return f"{bound!r} is not a number{' or name' if names else ''}"
        if not low <= number <= high:
            return f"{number} is outside {low}-{high}"
        bounds.append(number)
    if len(bounds) == 2 and bounds[0] > bounds[1]:
        return f"range {span!r} ends before it starts"
    return None
