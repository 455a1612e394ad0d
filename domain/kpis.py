"""Programme KPIs: completion, punctuality, escalations and leader-post outcomes, from plain journey facts."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Final, get_args

import isodate
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from domain import events as e
from domain.events import JourneyStateName, MilestoneKind
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


def facts_from_events(status: JourneyStatus, events: Iterable[e.Event]) -> JourneyFacts:
    """A journey's facts from its status view and its events (in stream order; other types are ignored)."""
    evaluated_at: datetime | None = None
    enrolled = started = expired = False
    late: dict[str, bool] = {}
    outcomes: list[OutcomeFact] = []
    for event in events:
        match event:
            case e.TalentEnrolled():
                enrolled = True
            case e.JourneyStarted():
                started = True
            case e.NominationExpired():
                expired = True
            case e.ProgrammeCompleted() | e.ProgrammeNotCompleted():
                evaluated_at = evaluated_at or event.evaluated_at
            case e.MilestoneMet():
                late[event.milestone] = event.late  # a later record (a corrected attendance) wins
            case e.OutcomeRecorded():
                outcomes.append(
                    OutcomeFact(
                        applied_for_leader_post=event.applied_for_leader_post,
                        appointed=event.appointed,
                        on=event.on,
                        months=event.months,
                    )
                )
            case _:
                pass
    return JourneyFacts(
        status=status,
        enrolled=enrolled,
        started=started,
        evaluated_at=evaluated_at,
        late_milestones=frozenset(k for k, was_late in late.items() if was_late),
        outcomes=tuple(outcomes),
        expired=expired,
    )


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


def _milestone_kpis(journeys: Sequence[JourneyFacts]) -> tuple[MilestoneKindKpis, ...]:
    counts: dict[MilestoneKind, Counter[str]] = {kind: Counter() for kind in MILESTONE_KINDS}
    for j in journeys:
        for m in j.status.milestones:
            if m.status == "met":
                counts[m.kind]["late" if m.key in j.late_milestones else "on_time"] += 1
            else:
                counts[m.kind][m.status] += 1
    rows = []
    for kind, c in counts.items():
        due = c["on_time"] + c["late"] + c["missed"] + c["slipped"]
        rows.append(
            MilestoneKindKpis(
                kind=kind,
                on_time=c["on_time"],
                late=c["late"],
                missed=c["missed"],
                slipped=c["slipped"],
                open=c["open"],
                waived=c["waived"],
                due=due,
                on_time_rate=_rate(c["on_time"], due),
            )
        )
    return tuple(rows)


def _escalation_kpis(journeys: Sequence[JourneyFacts]) -> tuple[EscalationKpis, ...]:
    raised: Counter[tuple[MilestoneKind, int]] = Counter()
    still_open: Counter[tuple[MilestoneKind, int]] = Counter()
    for j in journeys:
        kinds = {m.key: m.kind for m in j.status.milestones}
        for x in j.status.escalations:
            kind = kinds.get(x.milestone)
            if kind is None:  # pragma: no cover - every escalation is of one of the journey's milestones
                continue
            raised[(kind, x.rung)] += 1
            still_open[(kind, x.rung)] += x.resolved_at is None
    order = {kind: i for i, kind in enumerate(MILESTONE_KINDS)}
    return tuple(
        EscalationKpis(kind=kind, rung=rung, raised=n, open=still_open[(kind, rung)])
        for (kind, rung), n in sorted(raised.items(), key=lambda item: (order[item[0][0]], item[0][1]))
    )


def _horizon_end(evaluated_at: datetime, months: int) -> datetime:
    """The end of a horizon: `months` calendar months after the evaluation, in its own UTC offset."""
    end: datetime = evaluated_at + isodate.Duration(months=months)
    return end


def _answers(outcome: OutcomeFact, months: int, by: date) -> bool:
    """Whether an answer speaks for a horizon: given at its follow-up or a later one, or dated at its end or after."""
    return (outcome.months is not None and outcome.months >= months) or outcome.on >= by


def compute_kpis(journeys: Sequence[JourneyFacts], *, as_of: datetime) -> Kpis:
    """The KPIs of `journeys` at `as_of` (every denominator is documented on the model's fields)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    states = Counter(j.status.state for j in journeys)
    completed = [j for j in journeys if j.status.completion == "completed"]
    not_completed = sum(1 for j in journeys if j.status.completion == "not_completed")
    evaluated = len(completed) + not_completed
    withdrawn = sum(1 for j in journeys if j.status.state == "withdrawn" and j.status.completion is None)
    rejected = sum(1 for j in journeys if j.status.state == "rejected")

    horizons = []
    for months in HORIZONS:
        eligible = applied = not_applied = appointed = 0
        for j in completed:
            if j.evaluated_at is None:  # pragma: no cover - a completion is always an evaluation
                continue
            end = _horizon_end(j.evaluated_at, months)
            if end > as_of:
                continue
            eligible += 1
            by = end.date()
            did_apply = any(o.applied and o.on <= by for o in j.outcomes)
            applied += did_apply
            not_applied += not did_apply and any(_answers(o, months, by) for o in j.outcomes)
            appointed += any(o.appointed and o.on <= by for o in j.outcomes)
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

    days: list[int] = []
    for j in completed:
        appointments = [o.on for o in j.outcomes if o.appointed]
        if appointments and j.evaluated_at is not None:
            days.append(max(0, (min(appointments) - j.evaluated_at.date()).days))

    return Kpis(
        as_of=as_of,
        journeys=len(journeys),
        by_state={state: states[state] for state in JOURNEY_STATES},
        evaluated=evaluated,
        completed=len(completed),
        not_completed=not_completed,
        withdrawn=withdrawn,
        rejected=rejected,
        expired=sum(1 for j in journeys if j.expired),
        in_progress=len(journeys) - evaluated - withdrawn - rejected,
        completion_rate=_rate(len(completed), evaluated),
        milestones=_milestone_kpis(journeys),
        escalations=_escalation_kpis(journeys),
        outcomes=tuple(horizons),
        appointed=len(days),
        median_days_to_appointment=float(statistics.median(days)) if days else None,
    )


# -- the funnel ------------------------------------------------------------------------------------


class Funnel(_Frozen):
    """How many journeys reached each stage; a journey counts at every stage up to the furthest it reached."""

    nominated: int
    enrolled: int
    active: int
    completed: int
    applied: int = Field(description="Journeys with an application recorded (`OutcomeFact.applied`), at any time.")
    appointed: int


def compute_funnel(journeys: Sequence[JourneyFacts]) -> Funnel:
    """The funnel of `journeys`: a completed journey was also enrolled and active, even if it is closed now.

    Completion is the status' evaluation (an override counts as it was decided).
    """
    completed = [j.status.completion == "completed" for j in journeys]
    active = [j.started or done for j, done in zip(journeys, completed, strict=True)]
    return Funnel(
        nominated=len(journeys),
        enrolled=sum(j.enrolled or a for j, a in zip(journeys, active, strict=True)),
        active=sum(active),
        completed=sum(completed),
        applied=sum(any(o.applied for o in j.outcomes) for j in journeys),
        appointed=sum(any(o.appointed for o in j.outcomes) for j in journeys),
    )
