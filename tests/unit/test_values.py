"""Value types: milestone keys and at-risk reasons are typed, and stored as the text they always were."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from domain import events as e
from domain.journey import next_action
from domain.values import AtRiskReason, MilestoneKey
from tests.unit.journeys import KICKOFF_DUE, active, advance, at, history


def test_a_milestone_key_is_built_from_its_kind_and_subject_and_read_back_without_parsing_text() -> None:
    assert MilestoneKey.session("kickoff") == "session:kickoff"
    assert MilestoneKey.track("observe-leader") == "track:observe-leader"
    assert MilestoneKey.mentor_meeting(3) == "mentor_meeting:3"
    assert MilestoneKey.approval() == "approval"
    key = MilestoneKey("mentor_meeting:3")
    assert (key.kind, key.subject) == ("mentor_meeting", "3")
    assert (MilestoneKey.approval().kind, MilestoneKey.approval().subject) == ("approval", "")


@pytest.mark.parametrize(
    "text", ["", "session", "approval:x", "session:", "meeting:1", "mentor_meeting:0", "mentor_meeting:x", "track:A b"]
)
def test_a_malformed_milestone_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a milestone key"):
        MilestoneKey(text)


def test_a_milestone_key_is_stored_as_the_same_text() -> None:
    class Holder(BaseModel):
        key: MilestoneKey

    held = Holder.model_validate_json('{"key": "track:observe-leader"}')
    assert isinstance(held.key, MilestoneKey) and held.key.kind == "track"
    assert held.model_dump_json() == '{"key":"track:observe-leader"}'
    with pytest.raises(ValidationError):
        Holder.model_validate({"key": "nonsense:1"})


def test_the_events_the_domain_writes_hold_milestone_keys_as_plain_text() -> None:
    j = active(at(2027, 1, 11))
    advance(j, KICKOFF_DUE)
    slipped = [ev for ev in history(j) if isinstance(ev, e.MilestoneSlipped)]
    assert slipped and slipped[0].milestone == "session:kickoff"
    assert json.loads(slipped[0].model_dump_json())["milestone"] == "session:kickoff"
    assert type(slipped[0].milestone) is str  # the event's shape is unchanged


@pytest.mark.parametrize("text", ["escalated:session:kickoff", "attendance_below_minimum"])
def test_an_at_risk_reason_round_trips_through_its_stored_text(text: str) -> None:
    reason = AtRiskReason.parse(text)
    assert reason.text == str(reason) == text
    assert reason.model_dump_json() == json.dumps(text)


def test_an_escalated_reason_names_its_milestone_and_no_other_does() -> None:
    assert AtRiskReason.parse("escalated:track:observe-leader").milestone == MilestoneKey.track("observe-leader")
    assert AtRiskReason.attendance_below_minimum().milestone is None
    for bad in ["escalated", "attendance_below_minimum:session:kickoff", "late", "escalated:nonsense"]:
        with pytest.raises(ValueError):
            AtRiskReason.parse(bad)


def test_the_journey_says_why_it_is_at_risk_in_typed_reasons_and_stores_them_as_text() -> None:
    j = active(at(2027, 1, 11))
    advance(j, at(2027, 6, 1))
    reasons = j.s.at_risk()
    assert AtRiskReason.escalated("session:kickoff") in reasons
    assert j.s.at_risk_reasons() == tuple(r.text for r in reasons)


def test_the_clock_names_what_it_will_do_next_in_a_typed_action() -> None:
    j = active(at(2027, 1, 11))
    first = next_action(j.s)
    assert first is not None and first.kind == "slip" and first.milestone == "session:kickoff"
    advance(j, first.at)
    rung = next_action(j.s)
    kickoff = j.s.milestone(MilestoneKey.session("kickoff"))
    assert kickoff is not None and kickoff.raised == (1,)  # the first rung fires as it slips
    assert rung is not None and (rung.kind, rung.milestone, rung.rung) == ("rung", "session:kickoff", 2)
    assert rung.at == kickoff.ladder[1].due_at
