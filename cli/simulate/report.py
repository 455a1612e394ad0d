"""What the simulation prints: each journey's timeline and a table of the notifications."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from cli.simulate.drive import Outcome
from cli.simulate.script import Pace, Scenario
from domain.programme import Programme

ROLE_ORDER = ("talent", "nearest_leader", "leaders_leader", "coordinator", "hr_system")
_DETAILS: Mapping[str, str] = {
    "milestone": "milestone",
    "rung": "rung",
    "recipient_role": "to",
    "session_key": "session",
    "status": "status",
    "track_key": "track",
    "number": "meeting",
    "held_on": "held_on",
    "resolution": "resolution",
    "late": "late",
    "at_risk": "at_risk",
    "reason": "reason",
    "reasons": "reasons",
    "paused_working_days": "paused_working_days",
    "point": "follow_up",
    "months": "months",
    "applied_for_leader_post": "applied",
    "appointed": "appointed",
    "sessions_attended": "sessions",
    "tracks_done": "tracks",
    "meetings_held": "meetings",
    "starts_at": "starts",
    "evaluate_at": "evaluated_at",
    "awaiting": "awaiting",
}
#: Events whose due instant is worth a column: what a waived milestone was due, how long an
#: expired nomination or a deferred evaluation waited.
_DUE_SHOWN = frozenset({"MilestoneWaived", "NominationExpired", "EvaluationDeferred"})


def _detail(event_type: str, data: Mapping[str, Any], programme: Programme, pace: Pace) -> str:
    parts = []
    labels = {**_DETAILS, "due_at": "until" if event_type == "EvaluationDeferred" else "due"}
    for key, label in labels.items():
        value = data.get(key)
        if value is None or value is False or value == [] or (key == "due_at" and event_type not in _DUE_SHOWN):
            continue
        if key in ("starts_at", "evaluate_at", "due_at") and isinstance(value, str):
            value = f"{datetime.fromisoformat(value).astimezone(programme.working_calendar.tz):{pace.time_format}}"
        elif isinstance(value, list):
            value = ",".join(str(v) for v in value)
        parts.append(f"{label}={value}")
    return "  ".join(parts)


def print_journey(outcome: Outcome, programme: Programme, pace: Pace) -> None:
    """A journey's timeline from its stored events, then its final state."""
    sc, status = outcome.scenario, outcome.status
    print(f"\n== {sc.name} (journey {sc.journey_id}): {sc.summary}")
    tz = programme.working_calendar.tz
    for ev in outcome.events:
        when = ev.occurred_at.astimezone(tz)
        detail = _detail(ev.event_type, ev.data, programme, pace)
        print(f"  {when:{pace.time_format}}  {ev.event_type:<26} {detail}".rstrip())
    for line in outcome.refused:
        print(f"  {line}")
    p = status.progress
    reasons = f" ({', '.join(status.completion_reasons)})" if status.completion_reasons else ""
    print(
        f"  final: state {status.state}, completion {status.completion}{reasons}; "
        f"sessions {p.sessions_attended}/{p.sessions_required}, tracks {p.tracks_done}/{p.tracks_required}, "
        f"mentor meetings {p.meetings_held}/{p.meetings_required}; escalations {len(status.escalations)}; "
        f"{len(outcome.events)} events"
    )


async def notification_rows(pool: asyncpg.Pool[asyncpg.Record]) -> list[dict[str, Any]]:
    """Outbox rows counted by recipient role, template, journey and delivery status."""
    rows = await pool.fetch(
        """SELECT recipient_role, template, journey_id, status, count(*)::int AS n
             FROM outbox GROUP BY recipient_role, template, journey_id, status"""
    )
    return [dict(r) for r in rows]


def print_notifications(rows: Sequence[Mapping[str, Any]], cast: Sequence[Scenario]) -> None:
    """A table of notifications per recipient role and template, one column per scenario."""
    counts: Counter[tuple[str, str, str]] = Counter()
    statuses: Counter[str] = Counter()
    for r in rows:
        counts[(r["recipient_role"], r["template"], r["journey_id"])] += r["n"]
        statuses[r["status"]] += r["n"]
    keys = sorted(
        {(role, template) for role, template, _ in counts},
        key=lambda k: (ROLE_ORDER.index(k[0]) if k[0] in ROLE_ORDER else len(ROLE_ORDER), k),
    )
    names = [s.name for s in cast]
    widths = [max(len(n), 5) for n in names]
    template_width = max([len("template"), *(len(t) for _, t in keys)])
    print("\nNotifications (outbox rows) by recipient role and template")
    header = "  ".join(f"{n:>{w}}" for n, w in zip(names, widths, strict=True))
    print(f"  {'recipient_role':<15} {'template':<{template_width}}  {header}  {'total':>5}")
    totals = Counter[str]()
    for role, template in keys:
        row = [counts[(role, template, s.journey_id)] for s in cast]
        for s, n in zip(cast, row, strict=True):
            totals[s.name] += n
        cells = "  ".join(f"{n:>{w}}" for n, w in zip(row, widths, strict=True))
        print(f"  {role:<15} {template:<{template_width}}  {cells}  {sum(row):>5}")
    cells = "  ".join(f"{totals[n]:>{w}}" for n, w in zip(names, widths, strict=True))
    print(f"  {'total':<15} {'':<{template_width}}  {cells}  {sum(totals.values()):>5}")
    delivery = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    print(f"  delivery: {delivery or 'none'} (the simulation configures no SMTP server and no webhook)")


def span(gap: timedelta) -> str:
    """A session gap as printed: weeks, or seconds when compressed."""
    return f"{gap.days // 7} weeks" if gap.days else f"{int(gap.total_seconds())} s"
