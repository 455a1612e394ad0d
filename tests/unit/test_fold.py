"""Folding: the fast copies evolve makes are the copies pydantic would make, and states stay valid."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from domain import commands as c
from domain import events as e
from domain.journey import JourneyState, _evolved, evolve, fold
from domain.status import JourneyStatus, dump_status, status_data, status_of
from tests.support import COORD, LEADER, TALENT, Journey
from tests.unit.journeys import EVALUATE_AT, active, advance, at, enrolled, history, nominated, on_track


def _journeys() -> list[Journey]:
    finished = enrolled()
    on_track(finished)
    advance(finished, at(2030, 1, 1))
    late = active(at(2027, 3, 23))
    late.send(c.PauseJourney(**COORD), at(2027, 3, 23, 11))
    late.send(c.ResumeJourney(**COORD), at(2027, 4, 2, 11))
    late.send(c.SubmitTrack(**TALENT, track_key="observe-leader"), at(2027, 4, 2, 12))
    late.send(c.SignOffTrack(**LEADER, track_key="observe-leader", decision="return"), at(2027, 4, 2, 13))
    late.send(c.ChangeNearestLeader(**COORD, nearest_leader_id="p-leader-2"), at(2027, 4, 3))
    advance(late, EVALUATE_AT)
    return [nominated(), finished, late]


JOURNEYS = _journeys()


def _slots(model: BaseModel) -> dict[str, Any]:
    return {
        "dict": model.__dict__,
        "fields_set": model.__pydantic_fields_set__,
        "extra": model.__pydantic_extra__,
        "private": model.__pydantic_private__,
    }


@pytest.mark.parametrize("journey", JOURNEYS, ids=["nominated", "closed", "paused-and-late"])
def test_every_state_evolve_makes_is_what_pydantic_would_validate(journey: Journey) -> None:
    state = None
    for event in history(journey):
        state = evolve(state, event)
        assert JourneyState.model_validate(state.model_dump()) == state
    assert state == journey.s


@pytest.mark.parametrize(
    ("model", "changes"),
    [
        (JOURNEYS[1].s, {"state": "active", "version": 99}),
        (JOURNEYS[1].s.milestones[3], {"status": "met", "met_at": EVALUATE_AT}),
        (JOURNEYS[1].s.tracks[0], {"status": "returned"}),
        (JOURNEYS[1].s.cohort, {"capacity": 3}),
        (JOURNEYS[2].s.escalations[0], {"resolved_at": EVALUATE_AT}),
        (JOURNEYS[1].s.follow_ups[0], {}),
    ],
)
def test_a_fast_evolved_copy_matches_pydantics_own_copy(model: BaseModel, changes: dict[str, Any]) -> None:
    fast = _evolved(model, changes)
    slow = model.model_copy(update=changes)

    assert type(fast) is type(slow)
    assert fast == slow
    assert _slots(fast) == _slots(slow)
    assert fast.model_dump_json() == slow.model_dump_json()
    assert _slots(model) != _slots(fast) or not changes  # the original is untouched by the copy


def test_a_fast_evolved_copy_is_still_frozen() -> None:
    state = JOURNEYS[0].s
    copy = _evolved(state, {"version": 5})
    with pytest.raises(ValidationError, match="frozen"):
        copy.version = 6  # type: ignore[misc]
    assert state.version == 1


@pytest.mark.parametrize("journey", JOURNEYS, ids=["nominated", "closed", "paused-and-late"])
def test_the_stored_status_json_reads_back_as_the_status_view(journey: Journey) -> None:
    state = None
    for event in history(journey):
        state = evolve(state, event)
        assert JourneyStatus.model_validate_json(dump_status(status_data(state))) == status_of(state)


def test_folding_nothing_is_nothing_and_a_history_must_start_with_a_nomination() -> None:
    assert fold([]) is None
    with pytest.raises(ValueError, match="starts with TalentNominated"):
        evolve(None, e.JourneyStarted(started_at=EVALUATE_AT))
