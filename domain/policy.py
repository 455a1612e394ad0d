"""Who may send which command, and the journey states grouped by what they mean."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from domain import commands as c
from domain.events import JourneyStateName

# -- who may send what -----------------------------------------------------------------------------

_ANYONE: frozenset[c.ActorRole] = frozenset({"hr_system", "coordinator", "leader", "talent", "system"})

#: The roles that may send each command: the one table the API, the dashboard and the CLI check
#: (PRODUCT §6, §8.5) and the domain enforces. `system` is the journey itself (its clock) and
#: the tools that drive journeys on the programme's behalf.
#:
#: Beyond the role, a talent acts only on their own journey and a leader only as its current
#: nearest leader (`domain.journey` checks that against the journey). A coordinator may also
#: submit, sign off, log and confirm on the programme's behalf (a reflection handed in on paper,
#: a meeting reported by telephone): attendance bookkeeping and escalations are theirs (§8.4,
#: §8.6), and journeys running since the first rules rely on it.
COMMAND_ROLES: Mapping[type[c.Command], frozenset[c.ActorRole]] = MappingProxyType(
    {
        c.NominateTalent: frozenset({"hr_system", "leader", "coordinator"}),
        c.DecideNomination: frozenset({"coordinator", "system"}),
        c.RecordAttendance: frozenset({"coordinator", "system"}),
        c.RescheduleSession: frozenset({"coordinator", "system"}),
        c.ChangeCohortDetails: frozenset({"coordinator", "system"}),
        c.SubmitTrack: frozenset({"talent", "coordinator", "system"}),
        c.SignOffTrack: frozenset({"leader", "coordinator", "system"}),
        c.LogMentorMeeting: frozenset({"talent", "leader", "coordinator", "system"}),
        c.ConfirmMentorMeeting: frozenset({"leader", "coordinator", "system"}),
        c.PauseJourney: frozenset({"coordinator", "system"}),
        c.ResumeJourney: frozenset({"coordinator", "system"}),
        c.ChangeNearestLeader: frozenset({"coordinator", "hr_system", "system"}),
        c.WithdrawTalent: frozenset({"coordinator", "hr_system", "system"}),
        c.OverrideCompletion: frozenset({"coordinator", "system"}),
        c.RecordOutcome: frozenset({"hr_system", "coordinator", "talent", "system"}),
        c.AcknowledgeEscalation: frozenset({"coordinator", "system"}),
        c.ResolveEscalation: frozenset({"coordinator", "system"}),
        # Rules 4: the talent's own assessment; a coordinator may record it on their behalf.
        c.AssessReadiness: frozenset({"talent", "coordinator", "system"}),
        c.DebriefLab: frozenset({"talent", "system"}),
        c.ProposeMentorMeeting: frozenset({"leader", "coordinator", "system"}),
        # An erasure is noted in every journey the person appears in, whoever asked for it.
        c.RecordErasure: _ANYONE,
        # Time passes whoever asks: advancing the clock only does what is already due.
        c.AdvanceClock: _ANYONE,
    }
)


def may_send(role: c.ActorRole, command_type: type[c.Command]) -> bool:
    """Whether an actor in `role` may send a command of `command_type` (before the journey's own checks)."""
    return role in COMMAND_ROLES[command_type]


def roles_for(command_type: type[c.Command]) -> tuple[c.ActorRole, ...]:
    """The roles that may send `command_type`, but `system`, in a stable order (for a route's role check)."""
    return tuple(sorted(r for r in COMMAND_ROLES[command_type] if r != "system"))


# -- states by meaning -----------------------------------------------------------------------------

#: In the programme: nominated and not yet out of it. Withdrawal, rescheduling and the calendar
#: feed act on these.
IN_PROGRAMME_STATES: frozenset[JourneyStateName] = frozenset({"nominated", "enrolled", "active", "paused"})
#: The clock runs and the talent works: attendance, tracks and meetings are recorded.
RUNNING_STATES: frozenset[JourneyStateName] = frozenset({"enrolled", "active"})
#: Completion has been evaluated; outcomes are asked for.
EVALUATED_STATES: frozenset[JourneyStateName] = frozenset({"completed", "not_completed", "following_up"})
#: Over: nothing but an outcome or an erasure is recorded any more.
TERMINAL_STATES: frozenset[JourneyStateName] = frozenset({"closed", "rejected", "withdrawn"})
#: Not over: a talent has at most one journey in these per programme, and a second nomination
#: answers with it (PRODUCT §4).
OPEN_STATES: frozenset[JourneyStateName] = IN_PROGRAMME_STATES | EVALUATED_STATES
