"""Who may send which command (domain.policy): one table, and the domain obeys it command by command."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, get_args

import pytest

from domain import commands as c
from domain.errors import DomainError, NotAllowed
from domain.events import JourneyStateName
from domain.policy import (
    COMMAND_ROLES,
    EVALUATED_STATES,
    IN_PROGRAMME_STATES,
    OPEN_STATES,
    RUNNING_STATES,
    TERMINAL_STATES,
    may_send,
    roles_for,
)
from tests.unit.journeys import OBSERVE_DUE, active, at

ROLES: tuple[c.ActorRole, ...] = get_args(c.ActorRole)
#: The actor id each role acts under: the journey's own talent and nearest leader.
ACTOR_IDS = {
    "talent": "p-talent",
    "leader": "p-leader",
    "coordinator": "p-coord",
    "hr_system": "hr-1",
    "system": "system",
}

#: A well-formed command of every type but NominateTalent (which starts a journey), on top of an actor.
SAMPLES: dict[type[c.Command], dict[str, Any]] = {
    c.DecideNomination: {"decision": "approve"},
    c.RecordAttendance: {"session_key": "kickoff", "status": "attended"},
    c.RescheduleSession: {"session_key": "kickoff", "starts_at": at(2027, 1, 12)},
    c.ChangeCohortDetails: {"coordinator_id": "p-coord-2"},
    c.SubmitTrack: {"track_key": "observe-leader"},
    c.SignOffTrack: {"track_key": "observe-leader", "decision": "approve"},
    c.LogMentorMeeting: {"held_on": date(2027, 1, 20)},
    c.ConfirmMentorMeeting: {"held_on": date(2027, 1, 20)},
    c.PauseJourney: {},
    c.ResumeJourney: {},
    c.ChangeNearestLeader: {"nearest_leader_id": "p-leader-2"},
    c.WithdrawTalent: {},
    c.OverrideCompletion: {"outcome": "completed", "reason_ref": "r-1"},
    c.RecordOutcome: {"applied_for_leader_post": True, "appointed": False, "on": date(2027, 1, 20)},
    c.RecordErasure: {"person_id": "p-talent"},
    c.AcknowledgeEscalation: {"milestone": "session:kickoff"},
    c.ResolveEscalation: {"milestone": "session:kickoff"},
    c.AssessReadiness: {"stage": "enrolment", "answer": "yes"},
    c.DebriefLab: {"session_key": "dilemma-lab-1", "clarity": 3},
    c.ProposeMentorMeeting: {"starts_at": at(2027, 1, 25)},
    c.AdvanceClock: {},
}


def test_the_table_names_every_command_and_only_known_roles() -> None:
    commands = set(get_args(get_args(c.Command)[0]))
    assert set(COMMAND_ROLES) == commands
    assert set(SAMPLES) == commands - {c.NominateTalent}
    for command, roles in COMMAND_ROLES.items():
        assert roles <= set(ROLES), command
        assert roles, command


@pytest.mark.parametrize("command", list(SAMPLES), ids=lambda t: t.__name__)
def test_the_domain_refuses_exactly_the_roles_the_table_refuses(command: type[c.Command]) -> None:
    for role in ROLES:
        j = active(at(2027, 1, 19))
        cmd = command.model_validate({"actor_id": ACTOR_IDS[role], "actor_role": role, **SAMPLES[command]})
        try:
            j.send(cmd, at(2027, 1, 20))
        except NotAllowed:
            assert not may_send(role, command), f"the domain refuses a {role} the table lets send {command.__name__}"
        except DomainError:
            assert may_send(role, command), f"a {role} passed the role check of {command.__name__}"
        else:
            assert may_send(role, command), f"a {role} sent {command.__name__}, which the table refuses"


def test_a_nomination_comes_from_a_leader_a_coordinator_or_an_hr_system_never_the_system() -> None:
    assert roles_for(c.NominateTalent) == ("coordinator", "hr_system", "leader")
    assert not may_send("system", c.NominateTalent)
    assert not may_send("talent", c.NominateTalent)


def test_a_person_acting_as_themselves_must_be_this_journeys_talent_or_nearest_leader() -> None:
    j = active(at(2027, 1, 19))
    with pytest.raises(NotAllowed):
        j.send(c.SubmitTrack(actor_id="p-someone", actor_role="talent", track_key="observe-leader"), at(2027, 1, 20))
    with pytest.raises(NotAllowed):
        j.send(
            c.LogMentorMeeting(actor_id="p-other-leader", actor_role="leader", held_on=date(2027, 1, 20)),
            at(2027, 1, 20),
        )
    assert j.send(
        c.SubmitTrack(actor_id="p-talent", actor_role="talent", track_key="observe-leader"),
        OBSERVE_DUE - timedelta(days=1),
    )


def test_the_route_roles_leave_out_the_system() -> None:
    assert roles_for(c.LogMentorMeeting) == ("coordinator", "leader", "talent")
    assert roles_for(c.WithdrawTalent) == ("coordinator", "hr_system")


def test_the_state_sets_partition_the_states_by_meaning() -> None:
    states: set[JourneyStateName] = set(get_args(JourneyStateName))
    assert states == OPEN_STATES | TERMINAL_STATES
    assert not OPEN_STATES & TERMINAL_STATES
    assert OPEN_STATES == IN_PROGRAMME_STATES | EVALUATED_STATES
    assert not IN_PROGRAMME_STATES & EVALUATED_STATES
    assert RUNNING_STATES < IN_PROGRAMME_STATES
    assert "paused" in IN_PROGRAMME_STATES and "paused" not in RUNNING_STATES
