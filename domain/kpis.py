"""Programme KPIs: completion, punctuality, escalations and leader-post outcomes, from plain journey facts."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timezone
from typing import Any, Final, get_args

import isodate
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain import events as e
from domain.events import JourneyStateName, MilestoneKind
from domain.programme import EscalationDef
from domain.status import JourneyStatus

#: The follow-up horizons the KPIs report on, in months after completion (§1.9).
HORIZONS: Final[tuple[int, ...]] = (6, 12, 24)
MILESTONE_KINDS: Final[tuple[MilestoneKind, ...]] = get_args(MilestoneKind)
JOURNEY_STATES: Final[tuple[JourneyStateName, ...]] = get_args(JourneyStateName)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- inputs ----------------------------------------------------------------------------------------


class OutcomeFact(_Frozen):
    """One recorded outcome (OutcomeRecorded): an application for / appointment to a leader post, and its date."""

    applied_for_leader_post: bool
    appointed: bool
    on: date
    #: The follow-up (months after completion) it answered; None: given before any follow-up.
    months: int | None = None

    @property
    def applied(self) -> bool:
        """Whether it records an application: one for a leader post, or an appointment (which implies one)."""
        return self.applied_for_leader_post or self.appointed


class JourneyFacts(_Frozen):
    """What the KPIs need of one journey: its status view and the facts the view does not keep."""

    status: JourneyStatus
    #: The talent was enrolled (TalentEnrolled) / the programme started for them (JourneyStarted).
    enrolled: bool = False
    started: bool = False
    #: The first evaluation's instant (ProgrammeCompleted / ProgrammeNotCompleted); follow-ups count from it.
    evaluated_at: AwareDatetime | None = None
    #: Milestones whose latest MilestoneMet was late (met after the deadline, or after slipping).
    late_milestones: frozenset[str] = frozenset()
    outcomes: tuple[OutcomeFact, ...] = ()
    #: Rules 3: the nomination expired undecided (NominationExpired); the journey is rejected.
    expired: bool = False


@dataclass(frozen=True)
class FactsFold:
    """The facts of `JourneyFacts` gathered so far from a stream's events (see `fold_facts`)."""

    enrolled: bool = False
    started: bool = False
    expired: bool = False
    evaluated_at: datetime | None = None
    #: Milestone key -> whether its latest MilestoneMet was late (a later record wins).
    late: tuple[tuple[str, bool], ...] = ()
    outcomes: tuple[OutcomeFact, ...] = ()


#: The event types `fold_facts` reads; every other type leaves the facts as they are.
FACT_TYPES: Final[frozenset[str]] = frozenset(
    {
        "TalentEnrolled",
        "JourneyStarted",
        "ProgrammeCompleted",
        "ProgrammeNotCompleted",
        "MilestoneMet",
        "OutcomeRecorded",
        "NominationExpired",
    }
)


def _as_stored(instant: datetime) -> datetime:
    """The instant with the fixed UTC offset it is stored with: an event decided in memory may carry a
    zone (Europe/Copenhagen), one read back from the store carries its offset, and a horizon is
    measured in calendar months in that offset (`_horizon_end`), so both must agree."""
    offset = instant.utcoffset()
    return instant.astimezone(timezone(offset)) if offset is not None else instant


def fold_facts(facts: FactsFold, event: e.Event) -> FactsFold:
    """The facts after one more event of the stream (the projection folds them append by append)."""
    match event:
        case e.TalentEnrolled():
            return replace(facts, enrolled=True)
        case e.JourneyStarted():
            return replace(facts, started=True)
        case e.NominationExpired():
            return replace(facts, expired=True)
        case e.ProgrammeCompleted() | e.ProgrammeNotCompleted():
            return replace(facts, evaluated_at=facts.evaluated_at or _as_stored(event.evaluated_at))
        case e.MilestoneMet():
            late = dict(facts.late)
            late[event.milestone] = event.late  # a later record (a corrected attendance) wins
            return replace(facts, late=tuple(late.items()))
        case e.OutcomeRecorded():
            outcome = OutcomeFact(
                applied_for_leader_post=event.applied_for_leader_post,
                appointed=event.appointed,
                on=event.on,
                months=event.months,
            )
            return replace(facts, outcomes=(*facts.outcomes, outcome))
        case _:
            return facts


def facts_of(status: JourneyStatus, fold: FactsFold) -> JourneyFacts:
    """A journey's facts from its status view and its folded facts."""
    return JourneyFacts(
        status=status,
        enrolled=fold.enrolled,
        started=fold.started,
        evaluated_at=fold.evaluated_at,
        late_milestones=frozenset(k for k, was_late in fold.late if was_late),
        outcomes=fold.outcomes,
        expired=fold.expired,
    )


def facts_from_events(status: JourneyStatus, events: Iterable[e.Event]) -> JourneyFacts:
    """A journey's facts from its status view and its events (in stream order; other types are ignored)."""
    fold = FactsFold()
    for event in events:
        fold = fold_facts(fold, event)
    return facts_of(status, fold)


# -- the KPIs --------------------------------------------------------------------------------------


class MilestoneKindKpis(_Frozen):
    """Punctuality of one kind of milestone across the journeys."""

    kind: MilestoneKind
    on_time: int = Field(description="Met by their deadline (MilestoneMet with late = false).")
    late: int = Field(description="Met after their deadline (MilestoneMet with late = true).")
    missed: int = Field(description="Can no longer be met (absent from a mandatory session).")
    slipped: int = Field(
        description="Passed their deadline and never met: still escalating, or left unmet when the journey was "
        "evaluated or ended."
    )
    open: int = Field(description="Not yet due (or never due: the journey ended first). Not in the rate.")
    waived: int = Field(
        default=0, description="Waived: already due when the talent was enrolled (rules 3). Not in the rate."
    )
    due: int = Field(description="The rate's denominator: on_time + late + missed + slipped.")
    on_time_rate: float | None = Field(description="on_time / due; null when due = 0.")


class EscalationKpis(_Frozen):
    """How often one rung fired for one kind of milestone."""

    kind: MilestoneKind
    rung: int = Field(description="The rung of the ladder, 1 = the first (the talent's reminder).")
    raised: int = Field(description="Times this rung fired, over all journeys and milestones of the kind.")
    open: int = Field(description="Of those, not yet resolved.")


class OutcomeHorizonKpis(_Frozen):
    """Leader-post outcomes of completed talents within a horizon after completion."""

    months: int = Field(description="The horizon: months after the completion evaluation.")
    eligible: int = Field(
        description="The denominator: completed talents whose horizon has passed (evaluated_at + months <= as_of). "
        "A talent still inside the horizon is left out, even if they already applied, so the share is not biased "
        "by talents who have not had the full time yet."
    )
    applied: int = Field(
        description="Eligible talents with an application (or an appointment, which implies one) recorded on a date "
        "no later than the horizon's end; one made before completion counts."
    )
    not_applied: int = Field(
        description="Eligible talents who answered that they had not applied by the horizon's end: an answer to this "
        "follow-up or a later one, or dated on or after the horizon's end, and no application dated by then."
    )
    unknown: int = Field(
        description="Eligible talents with no answer for the horizon (applied + not_applied + unknown = eligible): "
        "no answer is not a no."
    )
    appointed: int = Field(description="Eligible talents appointed to a leader post by the horizon's end.")
    applied_rate: float | None = Field(description="applied / eligible; null when eligible = 0.")
    appointed_rate: float | None = Field(description="appointed / eligible; null when eligible = 0.")


class Kpis(_Frozen):
    """Programme KPIs over a set of journeys (a cohort, or every cohort of a programme's versions)."""

    as_of: AwareDatetime = Field(description="When the KPIs were computed; the horizons are measured to it.")
    journeys: int = Field(description="Every journey nominated: evaluated + withdrawn + rejected + in_progress.")
    by_state: dict[JourneyStateName, int] = Field(description="Journeys by current state (every state, 0 included).")
    evaluated: int = Field(
        description="Journeys evaluated against the completion criteria: completed + not_completed, whatever their "
        "state now (following up, closed)."
    )
    completed: int = Field(description="Evaluated as completed (after any coordinator override).")
    not_completed: int = Field(description="Evaluated as not completed (after any coordinator override).")
    withdrawn: int = Field(description="Withdrawn before evaluation. Not in the completion rate.")
    rejected: int = Field(description="Nominations rejected. Not in the completion rate.")
    expired: int = Field(
        default=0, description="Of the rejected, nominations that expired undecided (rules 3, PRODUCT §8.4)."
    )
    in_progress: int = Field(description="Not yet evaluated: nominated, enrolled, active or paused.")
    completion_rate: float | None = Field(
        description="completed / evaluated; withdrawn, rejected and running journeys are left out (the counts "
        "above allow other rates, e.g. completed / (evaluated + withdrawn)). Null when evaluated = 0."
    )
    milestones: tuple[MilestoneKindKpis, ...] = Field(
        description="Punctuality per milestone kind, one row per kind (approval, session, track, mentor_meeting), "
        "over every journey's milestones, withdrawn journeys included."
    )
    escalations: tuple[EscalationKpis, ...] = Field(
        description="Rungs raised per milestone kind and rung, by kind then rung; pairs that never fired are absent."
    )
    outcomes: tuple[OutcomeHorizonKpis, ...] = Field(description="Leader-post outcomes at 6, 12 and 24 months.")
    appointed: int = Field(description="Completed talents appointed to a leader post (at any time so far).")
    median_days_to_appointment: float | None = Field(
        description="Median over those `appointed` talents of the days from the completion evaluation (its local "
        "date) to their first appointment's date; an appointment before completion counts as 0. Null when none."
    )


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- one journey's share of the KPIs ---------------------------------------------------------------
#
# The KPIs are sums over journeys, except which completed journeys a horizon counts (those whose
# horizon has passed at `as_of`) and the median. So each journey's share is a `KpiRow`: counters
# that add up, its escalations, and per horizon the instant it ends and what it counts then. The
# projection stores one row per journey beside its status (store/projection.py), kept up to date
# by the append, and the read model adds them up in one query; `compute_kpis` adds them up here.

_MILESTONE_COUNTS: Final[tuple[str, ...]] = ("on_time", "late", "missed", "slipped", "open", "waived")
_OUTCOMES: Final[tuple[str, ...]] = ("completed", "not_completed", "withdrawn", "rejected", "expired")
_FUNNEL: Final[tuple[str, ...]] = ("enrolled", "active", "applied", "appointed")
#: A ladder has at most this many rungs (domain.programme.EscalationDef).
MAX_RUNGS: Final[int] = next(
    m.max_length for m in EscalationDef.model_fields["rungs"].metadata if hasattr(m, "max_length")
)

#: The layout of `KpiRow.counters`: names of counters that add up over journeys.
COUNTERS: Final[tuple[str, ...]] = (
    "journeys",
    *(f"state:{state}" for state in JOURNEY_STATES),
    *_OUTCOMES,
    *(f"milestone:{kind}:{count}" for kind in MILESTONE_KINDS for count in _MILESTONE_COUNTS),
    *(f"funnel:{stage}" for stage in _FUNNEL),
    *(
        f"escalation:{kind}:{rung}:{count}"
        for kind in MILESTONE_KINDS
        for rung in range(1, MAX_RUNGS + 1)
        for count in ("raised", "open")
    ),
)
_AT: Final[dict[str, int]] = {name: i for i, name in enumerate(COUNTERS)}
#: Per horizon in `KpiRow.horizon_flags`: applied, not_applied, appointed (0 or 1 each).
HORIZON_FLAGS: Final[int] = 3


@dataclass(frozen=True)
class KpiRow:
    """One journey's share of the KPIs."""

    counters: tuple[int, ...]
    #: Per horizon (HORIZONS): when it ends for a completed journey, else None.
    horizon_ends: tuple[datetime | None, ...]
    #: Per horizon, HORIZON_FLAGS flags: what the journey counts once the horizon has ended.
    horizon_flags: tuple[int, ...]
    #: A completed journey's days from evaluation to its first appointment, else None.
    days_to_appointment: int | None


def kpi_row(
    state: str,
    completion: str | None,
    milestones: Iterable[tuple[str, str, str]],
    escalations: Iterable[tuple[str, int, bool]],
    facts: FactsFold,
) -> KpiRow:
    """A journey's share of the KPIs from its state, completion, milestones (key, kind, status),
    escalations (milestone, rung, still open) and facts."""
    counters = [0] * len(COUNTERS)

    def add(name: str, n: int = 1) -> None:
        counters[_AT[name]] += n

    add("journeys")
    add(f"state:{state}")
    is_completed = completion == "completed"
    if is_completed:
        add("completed")
    elif completion == "not_completed":
        add("not_completed")
    if state == "withdrawn" and completion is None:
        add("withdrawn")
    if state == "rejected":
        add("rejected")
    if facts.expired:
        add("expired")
    late = {k for k, was_late in facts.late if was_late}
    kinds: dict[str, str] = {}
    for key, kind, status in milestones:
        kinds[key] = kind
        count = ("late" if key in late else "on_time") if status == "met" else status
        add(f"milestone:{kind}:{count}")
    active = facts.started or is_completed
    add("funnel:enrolled", facts.enrolled or active)
    add("funnel:active", active)
    add("funnel:applied", any(o.applied for o in facts.outcomes))
    add("funnel:appointed", any(o.appointed for o in facts.outcomes))

    for milestone, rung, is_open in escalations:
        found = kinds.get(milestone)
        if found is None:  # pragma: no cover - every escalation is of one of the journey's milestones
            continue
        add(f"escalation:{found}:{rung}:raised")
        add(f"escalation:{found}:{rung}:open", is_open)

    ends: list[datetime | None] = []
    flags: list[int] = []
    evaluated_at = facts.evaluated_at if is_completed else None
    for months in HORIZONS:
        if evaluated_at is None:
            ends.append(None)
            flags.extend((0,) * HORIZON_FLAGS)
            continue
        end = _horizon_end(evaluated_at, months)
        by = end.date()
        did_apply = any(o.applied and o.on <= by for o in facts.outcomes)
        answered = any(_answers(o, months, by) for o in facts.outcomes)
        ends.append(end)
        flags.extend(
            (
                int(did_apply),
                int(not did_apply and answered),
                int(any(o.appointed and o.on <= by for o in facts.outcomes)),
            )
        )
    appointments = [o.on for o in facts.outcomes if o.appointed]
    days = max(0, (min(appointments) - evaluated_at.date()).days) if appointments and evaluated_at is not None else None
    return KpiRow(
        counters=tuple(counters),
        horizon_ends=tuple(ends),
        horizon_flags=tuple(flags),
        days_to_appointment=days,
    )


def kpi_row_of(journey: JourneyFacts) -> KpiRow:
    """A journey's share of the KPIs from its facts."""
    s = journey.status
    fold = FactsFold(
        enrolled=journey.enrolled,
        started=journey.started,
        expired=journey.expired,
        evaluated_at=journey.evaluated_at,
        late=tuple((k, True) for k in sorted(journey.late_milestones)),
        outcomes=journey.outcomes,
    )
    return kpi_row(
        s.state,
        s.completion,
        ((m.key, m.kind, m.status) for m in s.milestones),
        ((x.milestone, x.rung, x.resolved_at is None) for x in s.escalations),
        fold,
    )


def kpi_row_of_data(data: dict[str, Any], facts: FactsFold) -> KpiRow:
    """A journey's share of the KPIs from its status data (`domain.status.status_data`) and facts."""
    return kpi_row(
        data["state"],
        data["completion"],
        ((m["key"], m["kind"], m["status"]) for m in data["milestones"]),
        ((x["milestone"], x["rung"], x["resolved_at"] is None) for x in data["escalations"]),
        facts,
    )


@dataclass(frozen=True)
class KpiTotals:
    """Journeys' KPI rows added up at an instant (what the read model's one query returns)."""

    counters: tuple[int, ...]
    #: Per horizon: eligible (ended by as_of), then the HORIZON_FLAGS sums over the eligible.
    horizons: tuple[tuple[int, ...], ...]
    appointed: int
    median_days_to_appointment: float | None


def add_up(rows: Sequence[KpiRow], *, as_of: datetime) -> KpiTotals:
    """The rows added up at `as_of` (the read model does the same sums in SQL)."""
    counters = [sum(col) for col in zip(*(r.counters for r in rows), strict=True)] if rows else [0] * len(COUNTERS)
    horizons = []
    for h in range(len(HORIZONS)):
        ended = [r for r in rows if (end := r.horizon_ends[h]) is not None and end <= as_of]
        flags = [sum(r.horizon_flags[h * HORIZON_FLAGS + f] for r in ended) for f in range(HORIZON_FLAGS)]
        horizons.append((len(ended), *flags))
    days = [r.days_to_appointment for r in rows if r.days_to_appointment is not None]
    return KpiTotals(
        counters=tuple(counters),
        horizons=tuple(horizons),
        appointed=len(days),
        median_days_to_appointment=float(statistics.median(days)) if days else None,
    )


def kpis_of(totals: KpiTotals, *, as_of: datetime) -> Kpis:
    """The KPIs from added-up rows (every denominator is documented on the model's fields)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    n = dict(zip(COUNTERS, totals.counters, strict=True))
    evaluated = n["completed"] + n["not_completed"]
    milestones = []
    for kind in MILESTONE_KINDS:
        c = {count: n[f"milestone:{kind}:{count}"] for count in _MILESTONE_COUNTS}
        due = c["on_time"] + c["late"] + c["missed"] + c["slipped"]
        milestones.append(MilestoneKindKpis(kind=kind, **c, due=due, on_time_rate=_rate(c["on_time"], due)))
    escalations = tuple(
        EscalationKpis(
            kind=kind,
            rung=rung,
            raised=n[f"escalation:{kind}:{rung}:raised"],
            open=n[f"escalation:{kind}:{rung}:open"],
        )
        for kind in MILESTONE_KINDS
        for rung in range(1, MAX_RUNGS + 1)
        if n[f"escalation:{kind}:{rung}:raised"]
    )
    horizons = []
    for months, (eligible, applied, not_applied, appointed) in zip(HORIZONS, totals.horizons, strict=True):
        horizons.append(
            OutcomeHorizonKpis(
                months=months,
                eligible=eligible,
                applied=applied,
                not_applied=not_applied,
                unknown=eligible - applied - not_applied,
                appointed=appointed,
                applied_rate=_rate(applied, eligible),
                appointed_rate=_rate(appointed, eligible),
            )
        )
    return Kpis(
        as_of=as_of,
        journeys=n["journeys"],
        by_state={state: n[f"state:{state}"] for state in JOURNEY_STATES},
        evaluated=evaluated,
        completed=n["completed"],
        not_completed=n["not_completed"],
        withdrawn=n["withdrawn"],
        rejected=n["rejected"],
        expired=n["expired"],
        in_progress=n["journeys"] - evaluated - n["withdrawn"] - n["rejected"],
        completion_rate=_rate(n["completed"], evaluated),
        milestones=tuple(milestones),
        escalations=escalations,
        outcomes=tuple(horizons),
        appointed=totals.appointed,
        median_days_to_appointment=totals.median_days_to_appointment,
    )


def _horizon_end(evaluated_at: datetime, months: int) -> datetime:
    """The end of a horizon: `months` calendar months after the evaluation, in its own UTC offset."""
    end: datetime = evaluated_at + isodate.Duration(months=months)
    return end


def _answers(outcome: OutcomeFact, months: int, by: date) -> bool:
    """Whether an answer speaks for a horizon: given at its follow-up or a later one, or dated at its end or after."""
    return (outcome.months is not None and outcome.months >= months) or outcome.on >= by


def compute_kpis(journeys: Sequence[JourneyFacts], *, as_of: datetime) -> Kpis:
    """The KPIs of `journeys` at `as_of`: their KPI rows added up."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    return kpis_of(add_up([kpi_row_of(j) for j in journeys], as_of=as_of), as_of=as_of)


# -- the funnel ------------------------------------------------------------------------------------


class Funnel(_Frozen):
    """How many journeys reached each stage; a journey counts at every stage up to the furthest it reached."""

    nominated: int
    enrolled: int
    active: int
    completed: int
    applied: int = Field(description="Journeys with an application recorded (`OutcomeFact.applied`), at any time.")
    appointed: int


def funnel_of(totals: KpiTotals) -> Funnel:
    """The funnel from added-up KPI rows."""
    n = dict(zip(COUNTERS, totals.counters, strict=True))
    return Funnel(
        nominated=n["journeys"],
        enrolled=n["funnel:enrolled"],
        active=n["funnel:active"],
        completed=n["completed"],
        applied=n["funnel:applied"],
        appointed=n["funnel:appointed"],
    )


def compute_funnel(journeys: Sequence[JourneyFacts]) -> Funnel:
    """The funnel of `journeys`: a completed journey was also enrolled and active, even if it is closed now.

    Completion is the status' evaluation (an override counts as it was decided).
    """
    return funnel_of(add_up([kpi_row_of(j) for j in journeys], as_of=datetime.now(UTC)))
