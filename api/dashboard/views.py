"""The data of the pages that gather from several places: escalation lists, a leader's talents, KPI charts."""

from __future__ import annotations

from dataclasses import dataclass

from api.dashboard import charts
from api.dashboard.charts import Series
from api.dashboard.i18n import Texts
from api.dashboard.present import Name, OpenEscalation, Presenter
from api.dashboard.session import Viewer
from api.deps import Resources
from domain.kpis import Kpis
from domain.programme import Programme
from domain.status import DEADLINE_STATES, JourneyStatus, Progress
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


async def open_escalations(resources: Resources, p: Presenter, cohort_id: str | None) -> list[OpenEscalation]:
    """Every running ladder (of a cohort, or all), oldest first, with names and titles."""
    found = await escalations_view.open_ladders(resources.pool, cohort_id)
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
