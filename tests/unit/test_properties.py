"""Properties of decide/evolve over random command sequences with random passages of time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from domain import commands as c
from domain import events as e
from domain.calendar import real_time_between
from domain.errors import DomainError
from domain.journey import JourneyState, decide, evolve, fold, next_wakeup
from domain.programme import Cohort, Programme
from domain.status import JourneyStatus, dump_status, status_data, status_of
from tests.support import (
    COORD,
    LEADER,
    SYSTEM,
    TALENT,
    Journey,
    compressed_cohort,
    compressed_programme,
    nominate,
    reference_cohort,
    reference_programme,
)
from tests.unit.journeys import HR, NEW_LEADER, OTHER_TALENT

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


@dataclass(frozen=True)
class World:
    """A programme, its cohort, when the journey is nominated, and the unit random time steps are in."""

    name: str
    programme: Programme
    cohort: Cohort
    nominated_at: datetime
    tick: timedelta  # one unit of random time
    shift: timedelta  # one unit of a random session move


_REFERENCE = reference_programme()
_COMPRESSED = compressed_programme()
# Instants are made in UTC, as a workflow's clock gives them; the calendars localise them.
_COMPRESSED_START = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
WORLDS = {
    "reference": World(
        "reference",
        _REFERENCE,
        reference_cohort(_REFERENCE),
        datetime(2026, 12, 1, 9, tzinfo=UTC),
        tick=timedelta(hours=1),
        shift=timedelta(days=1),
    ),
    "compressed": World(
        "compressed",
        _COMPRESSED,
        compressed_cohort(_COMPRESSED, _COMPRESSED_START),
        _COMPRESSED_START - timedelta(minutes=5),
        tick=timedelta(seconds=2),
        shift=timedelta(seconds=20),
    ),
}


def actors(*pool: c.Actor) -> st.SearchStrategy[c.Actor]:
    """Mostly the first (rightful) actor, sometimes one who will be refused."""
    return st.sampled_from([pool[0], pool[0], pool[0], *pool[1:], OTHER_TALENT, HR])


session_keys = st.sampled_from([s.key for s in _REFERENCE.sessions] * 3 + ["party"])
track_keys = st.sampled_from([t.key for t in _REFERENCE.tracks] * 3 + ["juggling"])
#: Mostly a milestone escalated at the time (an index into them), else one both worlds plan, or one no
#: programme has.
milestone_keys = st.one_of(
    st.integers(0, 3),
    st.integers(0, 3),
    st.sampled_from(["approval", "session:kickoff", "track:observe-leader", "mentor_meeting:1", "track:juggling"]),
)

Op = tuple[Any, ...]
#: (weight, kind, strategy): weights keep journeys moving; refusals stay common enough to matter.
_OPS: list[tuple[int, str, st.SearchStrategy[Op]]] = [
    (
        1,
        "decide",
        st.tuples(
            st.just("decide"), st.sampled_from(["approve", "approve", "reject"]), st.booleans(), actors(COORD, TALENT)
        ),
    ),
    (
        4,
        "attend",
        st.tuples(
            st.just("attend"),
            session_keys,
            st.sampled_from(["attended"] * 4 + ["absent", "excused"]),
            actors(COORD, LEADER),
        ),
    ),
    (1, "reschedule", st.tuples(st.just("reschedule"), session_keys, st.integers(-10, 30))),
    (3, "submit", st.tuples(st.just("submit"), track_keys, actors(TALENT, COORD, LEADER))),
    (
        3,
        "signoff",
        st.tuples(
            st.just("signoff"),
            track_keys,
            st.sampled_from(["approve", "approve", "return"]),
            actors(LEADER, COORD, NEW_LEADER, TALENT),
        ),
    ),
    (3, "meeting", st.tuples(st.just("meeting"), st.integers(-3, 1), actors(LEADER, TALENT, COORD, NEW_LEADER))),
    (2, "confirm", st.tuples(st.just("confirm"), st.integers(-3, 0), actors(LEADER, COORD, TALENT, NEW_LEADER))),
    (1, "pause", st.tuples(st.just("pause"), actors(COORD, LEADER))),
    (1, "resume", st.tuples(st.just("resume"), actors(COORD, TALENT))),
    (
        1,
        "leader",
        st.tuples(
            st.just("leader"),
            st.sampled_from(["p-leader", "p-leader-2", "p-talent"]),
            st.sampled_from([None, "p-boss", "p-boss-2"]),
        ),
    ),
    (1, "withdraw", st.tuples(st.just("withdraw"), actors(COORD, LEADER, TALENT, SYSTEM, NEW_LEADER))),
    (
        1,
        "override",
        st.tuples(
            st.just("override"), st.sampled_from(["completed", "not_completed"]), st.booleans(), actors(COORD, LEADER)
        ),
    ),
    (
        2,
        "outcome",
        st.tuples(
            st.just("outcome"), st.booleans(), st.booleans(), st.integers(-30, 1), actors(HR, TALENT, COORD, LEADER)
        ),
    ),
    (1, "erase", st.tuples(st.just("erase"), st.sampled_from(["p-talent", "p-leader"]))),
    (3, "acknowledge", st.tuples(st.just("acknowledge"), milestone_keys, actors(COORD, LEADER, SYSTEM))),
    (2, "resolve", st.tuples(st.just("resolve"), milestone_keys, actors(COORD, TALENT, SYSTEM))),
    (3, "advance", st.tuples(st.just("advance"))),
]


def op_strategy(*excluded: str) -> st.SearchStrategy[Op]:
    """Ops weighted by repetition, leaving out some kinds."""
    return st.one_of([strategy for weight, kind, strategy in _OPS if kind not in excluded for _ in range(weight)])


ops = op_strategy()
#: Mostly short steps, sometimes long ones: months pass in the reference world, minutes in the compressed.
ticks = st.one_of(st.integers(0, 30), st.integers(0, 24 * 30))
steps = st.lists(st.tuples(ticks, ops), max_size=40)
worlds = st.sampled_from(sorted(WORLDS))
leaders_leaders = st.sampled_from(["p-boss", None])
approved = st.sampled_from([True, True, True, False])
#: Journeys of every rules version still run: each must keep its own rules.
rules_versions = st.sampled_from(list(range(1, c.CURRENT_RULES_VERSION + 1)))


def command(op: Op, world: World, now: datetime, state: JourneyState) -> c.Command:
    """The command an op stands for at `now` (the op may well be refused)."""
    kind = op[0]
    today = state.calendar.local(now).date()
    if kind == "decide":
        return c.DecideNomination(**op[3], decision=op[1], reason_ref="t-r" if op[2] else None)
    if kind == "attend":
        return c.RecordAttendance(**op[3], session_key=op[1], status=op[2])
    if kind == "reschedule":
        original = {x.key: x.starts_at for x in world.cohort.sessions}.get(op[1], world.nominated_at)
        return c.RescheduleSession(**COORD, session_key=op[1], starts_at=original + op[2] * world.shift)
    if kind == "submit":
        return c.SubmitTrack(**op[2], track_key=op[1])
    if kind == "signoff":
        return c.SignOffTrack(**op[3], track_key=op[1], decision=op[2])
    if kind == "meeting":
        return c.LogMentorMeeting(**op[2], held_on=today + timedelta(days=op[1]))
    if kind == "confirm":
        return c.ConfirmMentorMeeting(**op[2], held_on=today + timedelta(days=op[1]))
    if kind == "pause":
        return c.PauseJourney(**op[1])
    if kind == "resume":
        return c.ResumeJourney(**op[1])
    if kind == "leader":
        return c.ChangeNearestLeader(**COORD, nearest_leader_id=op[1], leaders_leader_id=op[2])
    if kind == "withdraw":
        return c.WithdrawTalent(**op[1])
    if kind == "override":
        return c.OverrideCompletion(**op[3], outcome=op[1], reason_ref="t-o" if op[2] else None)
    if kind == "outcome":
        on: date = today + timedelta(days=op[3])
        return c.RecordOutcome(**op[4], applied_for_leader_post=op[1], appointed=op[2], on=on)
    if kind == "erase":
        return c.RecordErasure(**COORD, person_id=op[1])
    if kind == "acknowledge":
        return c.AcknowledgeEscalation(**op[2], milestone=escalated(state, op[1]), note_ref="t-n")
    if kind == "resolve":
        return c.ResolveEscalation(**op[2], milestone=escalated(state, op[1]), reason_ref="t-r")
    return c.AdvanceClock(**SYSTEM)


def escalated(state: JourneyState, choice: int | str) -> str:
    """A milestone key: `choice` itself, or the choice-th of those escalated now (else of those ever escalated)."""
    if isinstance(choice, str):
        return choice
    keys = list(dict.fromkeys(x.milestone for x in state.escalations if x.resolved_at is None))
    keys = keys or list(dict.fromkeys(x.milestone for x in state.escalations))
    return keys[choice % len(keys)] if keys else "session:kickoff"


def start(world: World, leaders_leader: str | None, approve: bool, rules: int = 1) -> Journey:
    """A nominated journey, approved one tick later if `approve` (most scripts need an enrolled talent)."""
    j = Journey()
    nomination = nominate(world.programme, world.cohort, leaders_leader_id=leaders_leader, rules_version=rules)
    j.send(nomination, world.nominated_at)
    if approve:
        j.send(c.DecideNomination(**COORD, decision="approve"), world.nominated_at + world.tick)
    return j


def try_send(j: Journey, cmd: c.Command, now: datetime) -> list[e.Event] | DomainError:
    """Send a command; a refusal must leave the journey exactly as it was."""
    before, count = j.s, len(j.history)
    try:
        return j.send(cmd, now)
    except DomainError as refusal:
        assert j.s is before
        assert len(j.history) == count
        return refusal


def by_coordinator(event: e.Event) -> bool:
    """An escalation acknowledged or resolved by a coordinator's command (not by time or progress)."""
    if isinstance(event, e.EscalationResolved):
        return event.resolution == "resolved_by_coordinator"
    return isinstance(event, e.EscalationAcknowledged)


def stored(event: e.Event) -> e.Event:
    """The event as read back from the store: its JSON data parsed again."""
    return e.parse_event(event.type, event.schema_version, e.event_data(event))


# -- (1) evolve is total over everything decide produces -----------------------------------------


def assert_rebuilds(j: Journey, now: datetime, later: datetime) -> None:
    """Folding the history, live or as stored, gives the driver's state, which then decides alike."""
    events = [n.event for n in j.history]
    assert fold(events) == j.s
    assert JourneyState.model_validate(j.s.model_dump()) == j.s  # evolve's unvalidated copies are valid
    assert JourneyStatus.model_validate_json(dump_status(status_data(j.s))) == status_of(j.s)
    assert j.s.version == len(events)
    assert len({n.event_id for n in j.history}) == len(events)
    replayed = fold([stored(ev) for ev in events])
    assert replayed == j.s
    assert replayed is not None
    assert next_wakeup(replayed) == next_wakeup(j.s)
    # A journey rebuilt from the store decides exactly as the live one: no hidden dependence on time zones.
    advance = c.AdvanceClock(**SYSTEM)
    live = decide(j.s, advance, now=later, new_ids=lambda: uuid.UUID(int=0))
    rebuilt = decide(replayed, advance, now=later, new_ids=lambda: uuid.UUID(int=0))
    assert [n.event for n in rebuilt] == [n.event for n in live]


@FAST
@given(world=worlds, leaders_leader=leaders_leaders, approve=approved, rules=rules_versions, script=steps)
def test_folding_the_history_from_scratch_rebuilds_the_journey(
    world: str, leaders_leader: str | None, approve: bool, rules: int, script: list[tuple[int, Op]]
) -> None:
    w = WORLDS[world]
    j = start(w, leaders_leader, approve, rules)
    now = w.nominated_at + w.tick
    for tick, op in script:
        now += tick * w.tick
        try_send(j, command(op, w, now, j.s), now)
    event(f"{world} journey reaches {j.s.state}")
    event(f"a coordinator acknowledged or resolved an escalation: {any(by_coordinator(n.event) for n in j.history)}")
    assert_rebuilds(j, now, now + 30 * w.shift)

    # ... and once time has run out for it: evaluated, followed up and closed.
    end = now + 1500 * w.shift
    j.send(c.AdvanceClock(**SYSTEM), end)
    event(f"{world} journey ends {j.s.state}")
    assert_rebuilds(j, end, end + w.shift)


# -- (2) pausing never brings a deadline forward -------------------------------------------------


def _deadlines(s: JourneyState) -> dict[str, tuple[datetime, str]]:
    out: dict[str, tuple[datetime, str]] = {}
    for m in s.milestones:
        if m.status == "open":
            out[m.key] = (m.due_at, m.clock)
        elif m.ladder_running:
            for r in m.ladder:
                if r.rung not in m.raised:
                    out[f"{m.key}#{r.rung}"] = (r.due_at, r.clock)
    if s.evaluate_at is not None:
        out["evaluate"] = (s.evaluate_at, s.evaluate_clock)
    return out


def _resumed_deadlines(s: JourneyState, ev: e.JourneyResumed) -> dict[str, datetime]:
    return {k: due for k, (due, _) in _deadlines(evolve(s, ev)).items()}


@FAST
@given(
    world=worlds,
    approve=approved,
    script=st.lists(st.tuples(ticks, op_strategy("pause", "resume", "withdraw", "decide")), max_size=15),
    pause_after=ticks,
    paused_for=st.integers(0, 24 * 60),
)
def test_resuming_never_moves_a_deadline_earlier_and_moves_it_by_exactly_the_paused_time(
    world: str, approve: bool, script: list[tuple[int, Op]], pause_after: int, paused_for: int
) -> None:
    w = WORLDS[world]
    j = start(w, "p-boss", approve)
    now = w.nominated_at + w.tick
    for tick, op in script:
        now += tick * w.tick
        try_send(j, command(op, w, now, j.s), now)
    now += pause_after * w.tick
    assume(not isinstance(try_send(j, c.PauseJourney(**COORD), now), DomainError))
    paused = j.s
    before = _deadlines(paused)
    event(f"{world} pause from {paused.paused_from} with {len(before)} deadlines")

    resumed_at = now + paused_for * w.tick
    resumed = j.send(c.ResumeJourney(**COORD), resumed_at)[0]

    assert isinstance(resumed, e.JourneyResumed)
    after = _resumed_deadlines(paused, resumed)
    assert after.keys() == before.keys()
    cal = paused.calendar
    for key, (due, clock) in before.items():
        assert after[key].timestamp() >= due.timestamp(), key
        if clock == "working_days":
            assert cal.working_days_between(due, after[key]) == resumed.paused_working_days, key
        else:
            assert real_time_between(due, after[key]) == real_time_between(now, resumed_at), key


# -- (3) the clock only moves forward ------------------------------------------------------------


@FAST
@given(
    world=worlds,
    leaders_leader=leaders_leaders,
    approve=approved,
    script=st.lists(st.tuples(ticks, st.one_of(ops, st.just(("wake",)), st.just(("wake",)))), max_size=60),
)
def test_the_next_wakeup_is_always_after_the_last_decision_and_always_has_work_to_do(
    world: str, leaders_leader: str | None, approve: bool, script: list[tuple[int, Op]]
) -> None:
    w = WORLDS[world]
    j = start(w, leaders_leader, approve)
    now = w.nominated_at + w.tick
    for tick, op in script:
        if op[0] == "wake":
            wake = next_wakeup(j.s)
            if wake is None:
                continue
            now = max(now, wake)
            events = j.send(c.AdvanceClock(**SYSTEM), now)
            assert events, "a wakeup with nothing to do"
        else:
            now += tick * w.tick
            if isinstance(try_send(j, command(op, w, now, j.s), now), DomainError):
                continue
        wake = next_wakeup(j.s)
        event(f"{world} reached {j.s.state}")
        assert wake is None or wake > now


# -- (4) when the clock is advanced does not change history --------------------------------------


@settings(FAST, max_examples=50)
@given(world=worlds, leaders_leader=leaders_leaders, approve=approved, rules=rules_versions, script=steps)
def test_waking_at_every_deadline_records_the_same_history_as_waking_only_for_commands(
    world: str, leaders_leader: str | None, approve: bool, rules: int, script: list[tuple[int, Op]]
) -> None:
    w = WORLDS[world]
    eager, lazy = start(w, leaders_leader, approve, rules), start(w, leaders_leader, approve, rules)
    now = w.nominated_at + w.tick

    def catch_up(until: datetime) -> None:
        while (wake := next_wakeup(eager.s)) is not None and wake <= until:
            eager.send(c.AdvanceClock(**SYSTEM), wake)

    for tick, op in script:
        now += tick * w.tick
        catch_up(now)
        cmd = command(op, w, now, lazy.s)
        a, b = try_send(eager, cmd, now), try_send(lazy, cmd, now)
        if isinstance(a, DomainError) or isinstance(b, DomainError):
            assert (type(a), getattr(a, "code", None)) == (type(b), getattr(b, "code", None))
    end = now + 2000 * w.shift
    catch_up(end)
    lazy.send(c.AdvanceClock(**SYSTEM), end)

    event(f"{world} journey ends {lazy.s.state}")
    assert [n.event for n in eager.history] == [n.event for n in lazy.history]
    assert eager.s == lazy.s


# -- (5) under the second rules, no meeting counts on the talent's word alone ---------------------


@FAST
@given(
    world=worlds,
    script=st.lists(
        st.tuples(
            ticks,
            st.one_of(
                st.tuples(st.just("meeting"), st.integers(-400, 1), st.just(TALENT)),
                st.tuples(st.just("confirm"), st.integers(-3, 0), st.just(TALENT)),
                op_strategy("meeting", "confirm", "override", "withdraw"),
            ),
        ),
        max_size=40,
    ),
)
def test_a_talent_alone_never_makes_a_mentor_meeting_count(world: str, script: list[tuple[int, Op]]) -> None:
    w = WORLDS[world]
    j = start(w, "p-boss", approve=True, rules=2)
    now = w.nominated_at + w.tick
    for tick, op in script:
        now += tick * w.tick
        try_send(j, command(op, w, now, j.s), now)
        assert j.s.meetings_held() == 0
        assert not any(m.status == "met" for m in j.s.milestones if m.kind == "mentor_meeting")
    j.send(c.AdvanceClock(**SYSTEM), now + 1500 * w.shift)
    event(f"{world} journey ends {j.s.state} with {len(j.s.meetings)} meetings logged")
    assert j.s.completion != "completed"
