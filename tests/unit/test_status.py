"""The status view: progress, milestones, escalations, at-risk reasons and the next deadline."""

from __future__ import annotations

from datetime import date, timedelta

from domain import commands as c
from domain.events import EscalationResolved, parse_event
from domain.programme import EscalationDef
from domain.status import JourneyStatus, dump_status, next_deadline, status_data, status_of
from tests.support import COORD, LEADER, TALENT
from tests.unit.journeys import (
    APPROVAL_DUE,
    EVALUATE_AT,
    KICKOFF_DUE,
    OBSERVE_DUE,
    PROGRAMME,
    active,
    advance,
    at,
    attend,
    enrolled,
    nominated,
    on_track,
)

TRACK = "track:observe-leader"


def test_a_nomination_shows_its_approval_deadline_and_no_progress() -> None:
    status = status_of(nominated().s)

    assert (status.journey_id, status.cohort_id, status.state, status.version) == ("j-1", "tnl-2027-1", "nominated", 1)
    assert (status.programme_id, status.programme_version) == ("talent-ny-leder", 1)
    assert (status.talent_id, status.nearest_leader_id, status.external_ref) == ("p-talent", "p-leader", "HR-4711")
    assert status.progress.model_dump() == {
        "sessions_attended": 0,
        "sessions_required": 6,
        "tracks_done": 0,
        "tracks_required": 4,
        "meetings_held": 0,
        "meetings_required": 4,
    }
    assert [(m.key, m.kind, m.due_at, m.status) for m in status.milestones] == [
        ("approval", "approval", APPROVAL_DUE, "open")
    ]
    assert status.next_deadline == APPROVAL_DUE
    assert (status.at_risk, status.at_risk_reasons, status.escalations) == (False, (), ())


def test_progress_counts_sessions_attended_tracks_done_and_meetings_held() -> None:
    j = active(at(2027, 1, 11, 12))
    attend(j, at(2027, 1, 11, 13), "kickoff")
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 1, 12))
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 1, 12, 11))
    j.send(c.SubmitTrack(**TALENT, track_key="lead-meeting"), at(2027, 1, 12, 12))  # submitted is not done
    j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 1, 12)), at(2027, 1, 12, 13))

    progress = status_of(j.s).progress

    assert (progress.sessions_attended, progress.tracks_done, progress.meetings_held) == (1, 1, 1)


def test_milestones_show_their_status() -> None:
    j = active(at(2027, 1, 14))  # kickoff slipped on 13 Jan
    attend(j, at(2027, 1, 14, 11), "leading-self", status="absent")

    statuses = {m.key: m.status for m in status_of(j.s).milestones}

    assert (statuses["approval"], statuses["session:kickoff"], statuses["session:leading-self"]) == (
        "met",
        "slipped",
        "missed",
    )
    assert statuses[TRACK] == "open"
    assert len(statuses) == 17


def test_escalations_show_each_raised_rung_and_when_it_was_resolved() -> None:
    j = active(at(2027, 3, 12))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 3, 12, 11))
    before = [x for x in status_of(j.s).escalations if x.milestone == TRACK]
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 3, 12, 12))

    after = [x for x in status_of(j.s).escalations if x.milestone == TRACK]

    assert [(x.rung, x.recipient_role, x.raised_at, x.resolved_at) for x in before] == [
        (1, "talent", OBSERVE_DUE, None),
        (2, "nearest_leader", at(2027, 3, 11, 16), None),
    ]
    assert [x.resolved_at for x in after] == [at(2027, 3, 12, 12)] * 2


def test_a_ladder_at_its_last_rung_puts_the_journey_at_risk() -> None:
    j = active(at(2027, 3, 23))
    j.send(c.LogMentorMeeting(**LEADER, held_on=date(2027, 3, 23)), at(2027, 3, 23, 11))  # meeting 1, late
    for key in ("kickoff", "leading-self", "dilemma-lab-1"):
        attend(j, at(2027, 3, 23, 12), key)

    status = status_of(j.s)

    assert status.at_risk is True
    assert status.at_risk_reasons == (f"escalated:{TRACK}",)


def test_each_escalated_milestone_is_a_reason_of_its_own() -> None:
    status = status_of(active(at(2027, 3, 25)).s)

    assert status.at_risk_reasons == (
        "escalated:session:kickoff",
        "escalated:session:leading-self",
        "escalated:mentor_meeting:1",
        f"escalated:{TRACK}",
        "escalated:session:dilemma-lab-1",
    )


def test_two_absences_put_attendance_out_of_reach() -> None:
    j = active(at(2027, 2, 9))
    attend(j, at(2027, 2, 9, 11), "kickoff", status="absent")
    assert status_of(j.s).at_risk_reasons == ()

    attend(j, at(2027, 2, 9, 12), "leading-self", status="absent")

    status = status_of(j.s)
    assert status.at_risk_reasons == ("attendance_below_minimum",)
    assert status.progress.sessions_required == 6


def test_an_excused_absence_does_not_put_attendance_out_of_reach() -> None:
    j = active(at(2027, 2, 9))
    attend(j, at(2027, 2, 9, 11), "kickoff", status="absent")
    attend(j, at(2027, 2, 9, 12), "leading-self", status="excused")

    status = status_of(j.s)

    assert status.at_risk_reasons == ()
    assert status.progress.sessions_required == 5


def test_a_paused_journey_stays_at_risk_but_has_no_next_deadline() -> None:
    j = active(at(2027, 3, 23))
    j.send(c.PauseJourney(**COORD), at(2027, 3, 23, 11))

    status = status_of(j.s)

    assert status.state == "paused"
    assert status.next_deadline is None
    assert f"escalated:{TRACK}" in status.at_risk_reasons


def test_the_next_deadline_is_the_earliest_open_milestone() -> None:
    j = active(at(2027, 1, 11, 12))
    assert next_deadline(j.s) == KICKOFF_DUE

    attend(j, at(2027, 1, 11, 13), "kickoff")

    assert next_deadline(j.s) == at(2027, 2, 10, 16)


def test_with_every_milestone_met_the_next_deadline_is_the_evaluation() -> None:
    j = enrolled()
    on_track(j)

    assert all(m.status == "met" for m in j.s.milestones)
    assert status_of(j.s).next_deadline == EVALUATE_AT


def test_an_evaluated_journey_shows_its_completion_and_no_next_deadline() -> None:
    j = active(at(2027, 1, 11, 12))
    advance(j, EVALUATE_AT + timedelta(hours=1))

    status = status_of(j.s)

    assert (status.state, status.completion, status.next_deadline) == ("not_completed", "not_completed", None)
    assert status.completion_reasons == ("attendance_below_minimum", "tracks_missing", "mentor_meetings_missing")
    assert "attendance_below_minimum" not in status.at_risk_reasons  # no longer a risk: it is the outcome
    assert status.at_risk is False


def test_the_status_serialises_to_the_fields_of_the_api() -> None:
    body = status_of(active(at(2027, 3, 12)).s).model_dump(mode="json")

    assert {
        "journey_id",
        "cohort_id",
        "state",
        "at_risk",
        "at_risk_reasons",
        "progress",
        "milestones",
        "escalations",
        "next_deadline",
        "version",
    } <= body.keys()
    assert set(body["milestones"][0]) == {"key", "kind", "due_at", "status"}
    assert set(body["escalations"][0]) == {
        "milestone",
        "rung",
        "recipient_role",
        "raised_at",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
        "at_risk",
    }
    assert body["next_deadline"] == "2027-04-07T16:00:00+02:00"


def test_status_and_events_stored_before_acknowledgements_existed_still_parse() -> None:
    j = active(at(2027, 3, 12))
    data = status_data(j.s)
    for x in data["escalations"]:
        del x["acknowledged_at"], x["acknowledged_by"]

    old = JourneyStatus.model_validate_json(dump_status(data))
    resolved = parse_event(
        "EscalationResolved", 1, {"milestone": TRACK, "resolved_at": "2027-03-12T11:00:00+01:00", "resolution": "met"}
    )

    assert old.escalations and {(x.acknowledged_at, x.acknowledged_by) for x in old.escalations} == {(None, None)}
    assert old == status_of(j.s)
    assert isinstance(resolved, EscalationResolved)
    assert (resolved.resolution, resolved.resolved_by, resolved.reason_ref) == ("met", None, None)


def test_the_status_names_the_leaders_leader_and_the_tracks_awaiting_sign_off() -> None:
    j = active(at(2027, 1, 11, 12))
    j.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 1, 12))
    j.send(c.SubmitTrack(**TALENT, track_key="lead-meeting"), at(2027, 1, 12, 11))

    waiting = status_of(j.s)
    j.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="approve"), at(2027, 1, 13))
    j.send(c.SignOffTrack(**LEADER, track_key="lead-meeting", decision="return"), at(2027, 1, 13, 11))

    assert (waiting.leaders_leader_id, waiting.awaiting_signoff) == (
        j.s.leaders_leader_id,
        ("observe-leader", "lead-meeting"),
    )
    assert waiting.leaders_leader_id
    assert status_of(j.s).awaiting_signoff == ()  # signed off, or returned to the talent


def test_a_ladder_is_at_risk_at_its_own_last_rung_as_the_at_risk_reasons_say() -> None:
    status = status_of(active(at(2027, 3, 12)).s)

    assert status.ladders and status.open_escalations == len(
        {x.milestone for x in status.escalations if x.resolved_at is None}
    )
    assert status.open_escalations < len(status.escalations), "ladders are counted, not rungs"
    assert {(x.milestone, x.at_risk) for x in status.ladders} == {
        (x.milestone, x.rung == x.last_rung) for x in status.ladders
    }
    assert {f"escalated:{x.milestone}" for x in status.ladders if x.at_risk} == {
        str(r) for r in status.at_risk_reasons if str(r).startswith("escalated:")
    }
    assert {(x.milestone, x.rung, x.at_risk) for x in status.escalations if x.at_risk} <= {
        (x.milestone, x.rung, True) for x in status.ladders
    }


def test_an_approval_ladder_shorter_than_the_programmes_is_at_risk_at_its_own_last_rung() -> None:
    # The coordinator is the second of three rungs: an approval climbs only the coordinator's.
    talent, _, boss, coordinator = PROGRAMME.escalation.rungs
    rungs = (
        talent,
        coordinator.model_copy(update={"after": boss.after}),
        boss.model_copy(update={"after": coordinator.after}),
    )
    programme = PROGRAMME.model_copy(update={"escalation": EscalationDef(rungs=rungs)})
    j = nominated(programme)
    advance(j, APPROVAL_DUE + timedelta(days=30))

    (ladder,) = status_of(j.s).ladders

    assert (ladder.milestone, ladder.rung, ladder.last_rung, ladder.at_risk) == ("approval", 2, 2, True)
    assert [str(r) for r in status_of(j.s).at_risk_reasons] == ["escalated:approval"]


def test_a_status_stored_before_ladders_gets_them_from_its_escalations_and_reasons() -> None:
    j = active(at(2027, 3, 12))
    data = status_data(j.s)
    for key in ("ladders", "leaders_leader_id", "awaiting_signoff"):
        del data[key]
    for x in data["escalations"]:
        del x["at_risk"]

    old = JourneyStatus.model_validate_json(dump_status(data))
    new = status_of(j.s)

    assert [(x.milestone, x.rung, x.at_risk, x.first_raised_at, x.raised_at) for x in old.ladders] == [
        (x.milestone, x.rung, x.at_risk, x.first_raised_at, x.raised_at) for x in new.ladders
    ]
    assert {x.last_rung for x in old.ladders if not x.at_risk} == {None}  # unknown: the old row did not keep it
    assert (old.leaders_leader_id, old.awaiting_signoff) == (None, ())
    assert old.open_escalations == new.open_escalations
