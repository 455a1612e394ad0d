"""Request bodies refuse what would break a header, a page or a log: control characters, bidi controls,
more than one e-mail address, an HR reference outside its alphabet (§8.2)."""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from api import models
from api.models import Email, ExternalRef, Name, PersonDetailsIn, Text
from api.routers import batch, clarity, vacancies

#: A valid body of every request model, with every field present, so every text field is attacked.
EXAMPLES: dict[type[BaseModel], dict[str, Any]] = {
    models.NearestLeaderIn: {
        "nearest_leader": {
            "person_id": "p-hanne",
            "name": "Hanne Krogh",
            "email": "hanne@example.org",
            "workplace": "Vestbyens Børnehus",
            "language": "da",
        },
        "leaders_leader": {
            "person_id": "p-bh",
            "name": "Birgitte",
            "email": "bh@example.org",
            "workplace": "BU",
            "language": "da",
        },
    },
    models.CompletionOverrideIn: {"result": "completed", "reason": "Syg under to undervisningsgange.\nAftalt."},
    models.RescheduleIn: {
        "starts_at": "2027-02-10T09:00:00+01:00",
        "location": "UCN Aalborg",
        "reason": "Underviser syg.",
    },
    models.RollCallLineIn: {"journey_id": "j-1", "status": "attended"},
    models.RollCallIn: {"records": [{"journey_id": "j-1", "status": "attended"}]},
    models.CohortPatchIn: {"capacity": 20, "coordinator_id": "p-coord", "locations": {"kickoff": "UCN Aalborg"}},
    models.PersonDetailsIn: {
        "name": "Mette Sørensen",
        "email": "mette@example.org",
        "workplace": "UCN",
        "language": "en",
    },
    models.PersonIn: {
        "person_id": "p-mette",
        "name": "Mette Sørensen",
        "email": "mette@example.org",
        "workplace": "Skolen ved Fjorden",
        "language": "da",
    },
    models.NominationIn: {
        "cohort_id": "tnl-2027-1",
        "external_ref": "HR-4711",
        "motivation": "Mette tager ansvar.\nHun leder allerede møderne.",
        "talent": {
            "person_id": "p-mette",
            "name": "Mette",
            "email": "mette@example.org",
            "workplace": "Skolen",
            "language": "da",
        },
        "nearest_leader": {
            "person_id": "p-lars",
            "name": "Lars",
            "email": "lars@example.org",
            "workplace": "Skolen",
            "language": "da",
        },
        "leaders_leader": {
            "person_id": "p-bh",
            "name": "Birgitte",
            "email": "bh@example.org",
            "workplace": "BU",
            "language": "da",
        },
    },
    models.DecisionIn: {"decision": "reject", "reason": "Not this year."},
    models.AttendanceIn: {"session_key": "kickoff", "status": "attended"},
    models.SubmissionIn: {"reflection": "What I learned\tand why."},
    models.SignoffIn: {"decision": "return", "comment": "Please say more."},
    models.MeetingIn: {"held_on": "2027-02-01", "notes": "Talked about the team."},
    models.ReasonIn: {"reason": "Parental leave."},
    models.OutcomeIn: {"applied_for_leader_post": True, "appointed": False, "on": "2028-01-01"},
    models.AcknowledgeIn: {"note": "On it."},
    models.ResolveIn: {"reason": "Done."},
    # Each row is validated on its own (as a NominationIn) by the route: the envelope holds JSON objects.
    batch.BatchIn: {"rows": [{"cohort_id": "tnl-2027-1", "motivation": "Mette tager ansvar."}]},
    vacancies.VacancyIn: {
        "post_id": "HR-POST-77",
        "unit": "Børn og Unge",
        "profession": "skole",
        "level": "first-line",
        "opened_on": "2026-09-01",
        "closed_on": "2026-10-01",
    },
    vacancies.ApplicationIn: {"person_id": "p-mette", "applied_on": "2026-09-15"},
    vacancies.AppointmentIn: {"person_id": "p-mette", "on": "2026-10-15"},
    clarity.ReadinessIn: {"stage": "enrolment", "answer": "not_now", "reason": "Jeg vil først lære mere."},
    clarity.DebriefIn: {"clarity": 4, "notes": "Den svære samtale gjorde det tydeligt."},
    clarity.MeetingProposalIn: {"starts_at": "2027-02-03T14:00:00+01:00"},
}

#: Unicode category Cc, but tabs and line breaks (which free texts may hold; tested apart below).
CONTROLS = [chr(c) for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\t\n\r"]
#: Bidi embeddings, overrides, isolates and the invisible direction marks.
BIDI = [chr(c) for c in (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))]


def _request_models() -> set[type[BaseModel]]:
    found: set[type[BaseModel]] = set()
    todo = [models._In]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation (optional, annotated, a list of it), or None (a dict of texts)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        if typing.get_args(candidate) and candidate is not annotation:
            found = _nested_model(candidate)
            if found is not None:
                return found
    return None


def _is_text(annotation: Any) -> bool:
    """A str field, maybe constrained, maybe optional: not a Literal, a date or a bool."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_text(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_text(arg) for arg in typing.get_args(annotation))
    return annotation is str


def _text_paths(model: type[BaseModel], example: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    for name, field in model.model_fields.items():
        value = example[name]
        nested = _nested_model(field.annotation)
        if isinstance(value, list) and nested is not None:
            yield from ((name, 0, *rest) for rest in _text_paths(nested, value[0]))
        elif isinstance(value, dict) and nested is not None:
            yield from ((name, *rest) for rest in _text_paths(nested, value))
        elif isinstance(value, dict):  # a mapping of keys to texts (e.g. a session's place)
            yield from ((name, key) for key in value)
        elif _is_text(field.annotation):
            yield (name,)


CASES = [(model, path) for model, example in EXAMPLES.items() for path in _text_paths(model, example)]


def _get(body: dict[str, Any], path: tuple[Any, ...]) -> str:
    value: Any = body
    for part in path:
        value = value[part]
    assert isinstance(value, str)
    return value


def _with(body: Any, path: tuple[Any, ...], value: str) -> Any:
    head, *rest = path
    changed = _with(body[head], tuple(rest), value) if rest else value
    if isinstance(body, list):
        return [changed if i == head else item for i, item in enumerate(body)]
    return {**body, head: changed}


def _refused_at(model: type[BaseModel], body: dict[str, Any], path: tuple[Any, ...]) -> bool:
    try:
        model.model_validate(body)
    except ValidationError as exc:
        # Refused for that field, and for nothing else (the rest of the body is valid).
        return all(tuple(error["loc"][: len(path)]) == path for error in exc.errors())
    return False


def test_every_request_model_has_a_complete_valid_example() -> None:
    # A new request model with fields fails here until its example (and so its text fields) is added.
    assert set(EXAMPLES) == {model for model in _request_models() if model.model_fields}
    for model, example in EXAMPLES.items():
        assert set(example) == set(model.model_fields), model
        model.model_validate(example)
    # The attack reaches the fields that matter.
    paths = {(model.__name__, *path) for model, path in CASES}
    assert {
        ("NominationIn", "cohort_id"),
        ("NominationIn", "external_ref"),
        ("NominationIn", "motivation"),
        ("NominationIn", "leaders_leader", "name"),
        ("NominationIn", "talent", "email"),
        ("NominationIn", "talent", "person_id"),
        ("NominationIn", "talent", "workplace"),
        ("PersonDetailsIn", "name"),
        ("SignoffIn", "comment"),
        ("MeetingIn", "notes"),
    } <= paths


@settings(max_examples=400, deadline=None)
@given(case=st.sampled_from(CASES), bad=st.sampled_from(CONTROLS + BIDI), data=st.data())
def test_a_control_character_or_bidi_control_in_any_text_field_is_refused_naming_the_field(
    case: tuple[type[BaseModel], tuple[str, ...]], bad: str, data: st.DataObject
) -> None:
    model, path = case
    value = _get(EXAMPLES[model], path)
    at = data.draw(st.integers(0, len(value)), label="at")
    assert _refused_at(model, _with(EXAMPLES[model], path, value[:at] + bad + value[at:]), path)


@pytest.mark.parametrize("model, path", [case for case in CASES if case[1][-1] in {"name", "workplace", "cohort_id"}])
@pytest.mark.parametrize("separator", ["\n", "\r", "\t", "\u2028", "\u2029"])
def test_one_line_fields_refuse_line_breaks_and_tabs(
    model: type[BaseModel], path: tuple[str, ...], separator: str
) -> None:
    value = _get(EXAMPLES[model], path)
    assert _refused_at(model, _with(EXAMPLES[model], path, f"{value}{separator}Bcc: x@evil.example"), path)


def test_free_texts_keep_line_breaks_and_tabs_and_names_any_script() -> None:
    text = TypeAdapter(Text)
    assert text.validate_python("Line one\r\nline two\n\tindented\u2028") == "Line one\r\nline two\n\tindented\u2028"
    name = TypeAdapter(Name)
    for ok in ("Søren Ærø-Kjær", "Łukasz Żółć", "李小龙", "محمد عبد الله", "שרה כהן", "O'Brien"):
        assert name.validate_python(ok) == ok
    for bad in ("", "x" * 201, "a\x00b", "Mette\u202eredaeL"):
        with pytest.raises(ValidationError):
            name.validate_python(bad)


@pytest.mark.parametrize(
    "address",
    ["mette@example.org", "first.last+tag@sub.example.co.uk", "x_y-z@xn--r-1ga.dk", "a1@b-c.dk"],
)
def test_an_email_is_one_addr_spec(address: str) -> None:
    assert TypeAdapter(Email).validate_python(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "a@b.dk, c@d.dk",  # two addresses
        "a@b.dk,c@d.dk",
        "a@b.dk;c@d.dk",
        "Mette <mette@example.org>",  # a display name
        "<mette@example.org>",  # angle brackets
        "mette @example.org",  # whitespace
        "mette@example.org\r\nBcc: x@evil.example",
        "mette@example.org ",
        '"mette sørensen"@example.org',  # quoted local part
        "mette(comment)@example.org",  # a comment
        "mette@[127.0.0.1]",  # a domain literal
        "mette@localhost",  # no host name
        "mette@-example.org",
        "mette..s@example.org",
        ".mette@example.org",
        "mette@",
        "@example.org",
        "mette",
        "søren@example.org",  # non-ASCII local part
        "m\u202eette@example.org",
        "x" * 65 + "@example.org",  # local part over 64
        "x@" + "a" * 250 + ".dk",  # over 254 in all
    ],
)
def test_an_email_that_is_not_exactly_one_address_is_refused(address: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Email).validate_python(address)


@pytest.mark.parametrize("ref", ["HR-4711", "hr/2027:12.a_b", "x" * 64])
def test_an_external_ref_takes_its_alphabet(ref: str) -> None:
    assert TypeAdapter(ExternalRef).validate_python(ref) == ref


@pytest.mark.parametrize("ref", ["", "x" * 65, "HR 4711", "HR-4711\n", "x\x00", "HR–4711", "<b>", "a@b.dk"])
def test_an_external_ref_outside_its_alphabet_is_refused(ref: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(ExternalRef).validate_python(ref)


@settings(max_examples=300, deadline=None)
@given(value=st.text(min_size=1, max_size=30))
def test_the_openapi_pattern_of_a_name_says_what_the_validator_does(value: str) -> None:
    pattern = PersonDetailsIn.model_json_schema()["properties"]["name"]["pattern"]
    accepted = True
    try:
        TypeAdapter(Name).validate_python(value)
    except ValidationError:
        accepted = False
    assert accepted == bool(re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value))
