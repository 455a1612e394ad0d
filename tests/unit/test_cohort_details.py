"""A cohort's new coordinator or places reach its running journeys (PATCH /v1/cohorts/{id})."""

from __future__ import annotations

import pytest

from domain import commands as c
from domain.errors import DomainError
from tests.support import COORD, TALENT
from tests.unit.journeys import at, enrolled


def test_a_new_coordinator_and_place_are_recorded_once_and_later_rungs_reach_the_new_coordinator() -> None:
    j = enrolled()
    change = c.ChangeCohortDetails(**COORD, coordinator_id="p-coord-2", locations={"kickoff": "Rådhuset"})

    events = j.send(change, at(2027, 1, 5))

    assert j.types(events) == ["CohortDetailsChanged"]
    assert j.s.person_for("coordinator") == "p-coord-2"
    assert next(s for s in j.s.cohort.sessions if s.key == "kickoff").location == "Rådhuset"
    assert j.send(change, at(2027, 1, 6)) == []  # nothing differs any more


def test_a_cohort_change_naming_an_unknown_session_or_sent_by_a_talent_is_refused() -> None:
    j = enrolled()
    with pytest.raises(DomainError) as unknown:
        j.send(c.ChangeCohortDetails(**COORD, locations={"nope": "X"}), at(2027, 1, 5))
    assert unknown.value.code == "unknown_session"
    with pytest.raises(DomainError):
        j.send(c.ChangeCohortDetails(**TALENT, coordinator_id="p-me"), at(2027, 1, 5))
