"""The data of the pages that gather from several places: escalation lists, a leader's talents, the forms a
journey offers its viewer, KPI charts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from api.access import touched
from api.dashboard import charts
from api.dashboard.charts import Series
from api.dashboard.i18n import Texts
from api.dashboard.present import Name, OpenEscalation, Presenter
from api.dashboard.session import Viewer
from api.deps import Resources
from domain import commands as c
from domain.errors import DomainError
from domain.journey.nomination import check_cohort_open
from domain.kpis import Kpis
from domain.policy import EVALUATED_STATES, IN_PROGRAMME_STATES, OPEN_STATES, RUNNING_STATES, may_send
from domain.programme import Programme
from domain.status import DEADLINE_STATES, JourneyStatus, Progress
from domain.values import MilestoneKey
from store.views import cohorts as cohorts_view
from store.views import escalations as escalations_view
from store.views import journeys as journeys_view


@dataclass(frozen=True)
class JourneyLine:
    """A journey in a leader's (or a talent's) list."""

    row: JourneyStatus
    talent: Name
    leader: Name
    waiting: tuple[str, ...]
    next_meeting: str
    meeting_overdue: bool
    reasons: tuple[str, ...]
    progress: Progress


@dataclass(frozen=True)
class ReachedEscalation:
    """A raised rung that reached a leader as the leader's leader (§8.1), for their page."""

    journey_id: str
    talent: Name
    title: str
    rung: int
    raised_at: datetime
    acknowledged: bool


@dataclass(frozen=True)
class OpenCohort:
    """A cohort that still takes nominations."""

    cohort_id: str
    title: str
    starts_on: str


@dataclass(frozen=True)
class JourneyForms:
    """The forms a journey's page offers its viewer: what their role may send and the journey's
    state invites (the journey itself still decides; a form shown is never a promise)."""

    decide: bool = False
    attendance: tuple[tuple[str, str], ...] = ()
    submit: tuple[tuple[str, str], ...] = ()
    signoff: tuple[tuple[str, str], ...] = ()
    meeting: bool = False
    confirm: tuple[date, ...] = ()
    pause: bool = False
    resume: bool = False
    withdraw: bool = False
    outcome: bool = False
    leader: bool = False
    override: bool = False

    @property
    def any(self) -> bool:
        """Whether there is a form at all."""
        return any(bool(v) for v in vars(self).values())


def journey_forms(viewer: Viewer, row: JourneyStatus, programme: Programme | None, *, may_act: bool) -> JourneyForms:
    """The forms of a journey's page for this viewer (none for a viewer who follows it read-only)."""
    role = viewer.principal.role
    if not may_act or role not in ("coordinator", "leader", "talent"):
        return JourneyForms()

    def may(command: type[c.Command]) -> bool:
        return may_send(role, command)

    working = row.state in RUNNING_STATES or row.state == "paused"
    open_tracks = {
        MilestoneKey(m.key).subject
        for m in row.milestones
        if m.kind == "track"
        and m.status in ("open", "slipped")
        and MilestoneKey(m.key).subject not in row.awaiting_signoff
    }
    tracks = programme.tracks if programme else ()
    return JourneyForms(
        decide=may(c.DecideNomination) and row.state == "nominated",
        attendance=tuple((s.key, s.title) for s in programme.sessions)
        if programme and working and may(c.RecordAttendance)
        else (),
        submit=tuple((t.key, t.title) for t in tracks if t.key in open_tracks)
        if working and may(c.SubmitTrack)
        else (),
        signoff=tuple((t.key, t.title) for t in tracks if t.key in row.awaiting_signoff)
        if working and may(c.SignOffTrack)
        else (),
        meeting=working and may(c.LogMentorMeeting),
        confirm=row.pending_meetings if may(c.ConfirmMentorMeeting) else (),
        pause=row.state in RUNNING_STATES and may(c.PauseJourney),
        resume=row.state == "paused" and may(c.ResumeJourney),
        withdraw=row.state in IN_PROGRAMME_STATES and may(c.WithdrawTalent),
        outcome=(row.state in EVALUATED_STATES or row.state == "closed") and may(c.RecordOutcome),
        leader=row.state in OPEN_STATES and may(c.ChangeNearestLeader),
        override=row.state in EVALUATED_STATES and may(c.OverrideCompletion),
    )


async def reached_escalations(
    resources: Resources, viewer: Viewer, p: Presenter, line: list[JourneyLine]
) -> list[ReachedEscalation]:
    """The open rungs that reached the viewer as the leader's leader of journeys in their line."""
    if viewer.role != "leader" or not viewer.principal.person_id:
        return []
    found = await escalations_view.open_rungs(resources.pool, reached=viewer.principal.person_id)
    touched(journeys=[x.journey_id for x in found.items])
    journeys = {j.row.journey_id: j for j in line}
    rows = []
    for x in found.items:
        j = journeys.get(x.journey_id)
        if j is None:
            continue
        programme = await p.programme(j.row.programme_id, j.row.programme_version)
        rows.append(
            ReachedEscalation(
                journey_id=x.journey_id,
                talent=j.talent,
                title=p.milestone_title(x.milestone, programme),
                rung=x.rung,
                raised_at=x.raised_at,
                acknowledged=x.acknowledged_at is not None,
            )
        )
    return rows


async def open_cohorts(resources: Resources, p: Presenter) -> list[OpenCohort]:
    """The cohorts that still take nominations (the domain's rule, `check_cohort_open`)."""
    found = []
    for line in await cohorts_view.cohorts(resources.pool):
        cohort = await resources.catalog.cohort(line.cohort_id)
        programme = await p.programme(line.programme_id, line.programme_version)
        if cohort is None or programme is None:
            continue
        try:
            check_cohort_open(programme, cohort, p.now)
        except DomainError:
            continue
        found.append(OpenCohort(cohort_id=cohort.cohort_id, title=programme.title, starts_on=line.starts_on))
    return found


async def open_escalations(resources: Resources, p: Presenter, cohort_id: str | None) -> list[OpenEscalation]:
    """Every running ladder (of a cohort, or all), oldest first, with names and titles."""
    found = await escalations_view.open_ladders(resources.pool, cohort_id)
    touched(journeys=[x.journey_id for x in found])
    await p.load_people([x.talent_id for x in found] + [x.ladder.acknowledged_by for x in found])
    rows = []
    for x in found:
        programme = await p.programme(x.programme_id, x.programme_version)
        rows.append(p.open_escalation(x.journey_id, x.cohort_id, x.talent_id, x.ladder, programme))
    return rows


async def journey_lines(resources: Resources, viewer: Viewer, p: Presenter) -> list[JourneyLine]:
    """A leader's talents (or a talent's journeys): state, what each waits on, the next mentor meeting.

    Waiting on, in this order: tracks the leader has to sign off, milestones past their deadline,
    else the next one due.
    """
    t = viewer.texts
    if viewer.role not in ("leader", "talent"):
        return []
    rows = await journeys_view.visible(resources.pool, viewer.principal)
    touched(journeys=[r.journey_id for r in rows])
    await p.load_people([r.talent_id for r in rows] + [r.nearest_leader_id for r in rows])
    found = []
    for r in rows:
        programme = await p.programme(r.programme_id, r.programme_version)
        zone = p.zone(programme)
        running = r.state in DEADLINE_STATES
        waiting: list[str] = []
        if running and viewer.role == "leader" and r.nearest_leader_id == viewer.principal.person_id:
            waiting += [t("waiting_signoff", track=p.track_title(key, programme)) for key in r.awaiting_signoff]
        pending = sorted((m for m in r.milestones if m.status in ("open", "slipped")), key=lambda m: m.due_at)
        if running:
            waiting += [
                t("waiting_overdue", milestone=p.milestone_title(m.key, programme), due=p.when(m.due_at, zone))
                for m in pending
                if m.status == "slipped"
            ]
            upcoming = next((m for m in pending if m.status == "open"), None)
            if upcoming is not None and not waiting:
                title = p.milestone_title(upcoming.key, programme)
                waiting.append(t("waiting_next", milestone=title, due=p.when(upcoming.due_at, zone)))
        meeting = next((m for m in pending if m.kind == "mentor_meeting"), None) if running else None
        meeting_late = meeting is not None and (meeting.status == "slipped" or p.overdue(meeting.due_at))
        found.append(
            JourneyLine(
                row=r,
                talent=p.name(r.talent_id),
                leader=p.name(r.nearest_leader_id),
                waiting=tuple(waiting) or (t("waiting_nothing"),),
                next_meeting=p.when(meeting.due_at, zone) if meeting else "—",
                meeting_overdue=meeting_late,
                reasons=tuple(p.reasons(r.at_risk_reasons, programme)),
                progress=r.progress,
            )
        )
    return found


def kpi_charts(t: Texts, kpis: Kpis, programme: Programme | None) -> list[charts.Chart]:
    """The cohort's KPIs as bar charts: completion, punctuality, escalations per rung, outcomes."""
    completed = Series(t("kpi_completed"), "c-good")
    completion = charts.bar_chart(
        t("chart_completion", rate=charts.percent(kpis.completion_rate))
        if kpis.completion_rate is not None
        else t("chart_completion_plain"),
        [
            (t("kpi_completed"), [(completed, kpis.completed)], None),
            (t("kpi_not_completed"), [(Series(t("kpi_not_completed"), "c-bad"), kpis.not_completed)], None),
            (t("kpi_withdrawn"), [(Series(t("kpi_withdrawn"), "c-warn"), kpis.withdrawn)], None),
            (
                t("kpi_rejected"),
                [
                    (Series(t("kpi_rejected"), "c-muted"), kpis.rejected - kpis.expired),
                    (Series(t("kpi_expired"), "c-warn"), kpis.expired),
                ],
                str(kpis.rejected),
            ),
            (t("kpi_in_progress"), [(Series(t("kpi_in_progress"), "c-main"), kpis.in_progress)], None),
        ],
    )

    on_time, late, slipped, missed, not_due, waived = (
        Series(t("kpi_on_time"), "c-good"),
        Series(t("kpi_late"), "c-late"),
        Series(t("kpi_slipped"), "c-warn"),
        Series(t("kpi_missed"), "c-bad"),
        Series(t("kpi_open"), "c-muted"),
        Series(t("kpi_waived"), "c-muted"),
    )
    punctuality = charts.bar_chart(
        t("chart_punctuality"),
        [
            (
                t(f"kind_{m.kind}").capitalize(),
                [
                    (on_time, m.on_time),
                    (late, m.late),
                    (slipped, m.slipped),
                    (missed, m.missed),
                    (not_due, m.open),
                    (waived, m.waived),
                ],
                charts.percent(m.on_time_rate),
            )
            for m in kpis.milestones
        ],
    )

    rungs: dict[int, tuple[int, int]] = {}
    for x in kpis.escalations:
        raised, still_open = rungs.get(x.rung, (0, 0))
        rungs[x.rung] = (raised + x.raised, still_open + x.open)
    recipients = {i + 1: r.recipient for i, r in enumerate(programme.escalation.rungs)} if programme else {}
    open_series = Series(t("kpi_open_escalations"), "c-bad")
    closed_series = Series(t("kpi_closed_escalations"), "c-muted")
    escalations = charts.bar_chart(
        t("chart_escalations"),
        [
            (
                t("kpi_rung", rung=rung, recipient=t(f"role_{recipients[rung]}") if rung in recipients else ""),
                [(open_series, still_open), (closed_series, raised - still_open)],
                None,
            )
            for rung, (raised, still_open) in sorted(rungs.items())
        ],
    )

    applied, appointed = Series(t("kpi_applied"), "c-main"), Series(t("kpi_appointed"), "c-good")
    # No answer is not a no (PRODUCT §8.4): the talents who said they had not applied and those
    # who never answered are told apart.
    said_no, unknown = Series(t("kpi_not_applied"), "c-bad"), Series(t("kpi_unknown"), "c-muted")
    outcomes = charts.bar_chart(
        t("chart_outcomes"),
        [
            row
            for h in kpis.outcomes
            for row in (
                (
                    t("kpi_horizon_applied", months=h.months),
                    [(applied, h.applied), (said_no, h.not_applied), (unknown, h.unknown)],
                    f"{h.applied}/{h.eligible}",
                ),
                (
                    t("kpi_horizon_appointed", months=h.months),
                    [(appointed, h.appointed)],
                    f"{h.appointed}/{h.eligible}",
                ),
            )
        ],
        # Shares of the talents whose horizon has passed: a full bar is all of them.
        scale=max([h.eligible for h in kpis.outcomes] + [1]),
    )
    return [completion, punctuality, escalations, outcomes]
