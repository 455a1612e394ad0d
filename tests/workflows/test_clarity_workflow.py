"""Rules 4 in server time (issue 14): a journey asked about readiness at enrolment and at evaluation,
debriefing a lab, meeting at a proposed appointment, and concluding clarified; its workflow state is
the fold of its stored events."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from domain import commands as c
from domain.errors import DomainError
from domain.events import parse_event
from domain.journey import fold
from domain.status import status_of
from tests.support import COORD, LEADER, TALENT, compressed_cohort, compressed_programme
from tests.workflows.journeys import (
    COMPRESSED_PACE,
    Journeys,
    Pool,
    advance_to,
    approve,
    drive,
    of_type,
    on_track,
    parse_time,
    send,
    status,
    stored_events,
    types,
)
from workflows.client import execute


async def test_a_rules_4_journey_answers_readiness_at_enrolment_and_evaluation_and_concludes_clarified(
    journeys: Journeys, time_env: WorkflowEnvironment, pool: Pool, unique: str
) -> None:
    now = await time_env.get_current_time()
    programme = compressed_programme()
    start = now + timedelta(minutes=2)
    cohort = compressed_cohort(programme, start, cohort_id=f"c-{unique}")
    handle = await journeys.start(unique, programme, cohort, rules_version=4)
    await approve(handle)
    enrolled = await status(handle)
    assert enrolled.readiness is not None
    assert (enrolled.rules_version, enrolled.readiness.open_stage) == (4, "enrolment")

    # At enrolment: not now; the same answer again changes nothing; the evaluation stage is not open.
    first = await send(handle, c.AssessReadiness(**TALENT, stage="enrolment", answer="not_now", reason_ref="t-1"))
    again = await send(handle, c.AssessReadiness(**TALENT, stage="enrolment", answer="not_now"))
    assert (first.events, again.events) == (["ReadinessAssessed"], [])
    with pytest.raises(DomainError) as refused:
        await execute(handle, c.AssessReadiness(**TALENT, stage="evaluation", answer="yes"))
    assert refused.value.code == "stage_not_open"

    lab = next(s for s in cohort.sessions if s.key == "dilemma-lab-1")
    end = start + timedelta(minutes=8)  # completion.evaluate_after
    track = on_track(cohort, enrolled, COMPRESSED_PACE)
    # The nearest leader proposes the first mentor meeting ahead; it is logged as held then.
    first_meeting = next(when for when, cmd in track if isinstance(cmd, c.LogMentorMeeting))
    propose = c.ProposeMentorMeeting(**LEADER, starts_at=first_meeting - timedelta(seconds=2))
    agenda = [
        *track,
        (first_meeting - timedelta(seconds=40), propose),
        (
            lab.starts_at + timedelta(seconds=15),
            c.DebriefLab(**TALENT, session_key=lab.key, clarity=4, notes_ref="t-2"),
        ),
    ]
    await drive(time_env, handle, agenda)
    await advance_to(time_env, end + timedelta(seconds=2))
    evaluated = await status(handle)
    assert evaluated.readiness is not None
    assert (evaluated.completion, evaluated.readiness.open_stage) == ("completed", "evaluation")

    # At evaluation, on the talent's behalf: a clear no; then the stage closes (20 s) concluded.
    answered = await send(handle, c.AssessReadiness(**COORD, stage="evaluation", answer="no", reason_ref="t-3"))
    assert answered.events == ["ReadinessAssessed"]

    result = await handle.result()

    assert (result.state, result.completion) == ("closed", "completed")
    assert result.readiness is not None
    assert (result.readiness.enrolment, result.readiness.evaluation) == ("not_now", "no")
    assert (result.readiness.concluded, result.readiness.clarified) == (True, True)
    assert [(d.session_key, d.clarity) for d in result.debriefs] == [("dilemma-lab-1", 4)]
    events = await stored_events(pool, unique)
    assert [ev.data["stage"] for ev in of_type(events, "ReadinessAsked")] == ["enrolment", "evaluation"]
    [concluded] = of_type(events, "ClarityConcluded")
    [asked_at_end] = of_type(events, "ReadinessAsked")[1:]
    assert parse_time(concluded.data["concluded_at"]) == parse_time(asked_at_end.data["respond_by"])
    assert concluded.data["clarified"] is True
    [proposed] = of_type(events, "MentorMeetingProposed")
    [reminded] = of_type(events, "MentorMeetingReminded")
    assert parse_time(reminded.data["reminded_at"]) == parse_time(proposed.data["remind_at"])
    assert result.appointment is None  # held and logged
    kinds = types(events)
    assert kinds.index("ProgrammeCompleted") < kinds.index("ClarityConcluded") < kinds.index("JourneyClosed")
    # The workflow's state is the fold of its stored events.
    rows = await pool.fetch(
        "SELECT event_type, schema_version, data::text AS data FROM events"
        " WHERE stream_id = $1 ORDER BY stream_version",
        f"journey-{unique}",
    )
    folded = fold(parse_event(r["event_type"], r["schema_version"], json.loads(r["data"])) for r in rows)
    assert folded is not None
    assert status_of(folded) == result
