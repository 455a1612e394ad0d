"""What things are called where people read them (the dashboard, the e-mails): titles, never keys."""

from __future__ import annotations

from collections.abc import Iterable

from domain.programme import Programme
from domain.values import Language, MilestoneKey

#: The words for a milestone that has no title of its own in the programme (the approval, a
#: mentor meeting), and for a session or track the programme does not know (never shown as a key).
_WORDS: dict[Language, dict[str, str]] = {
    "da": {
        "approval": "Beslutning om indstillingen",
        "mentor_meeting": "Mentormøde {n}",
        "session": "En undervisningsgang",
        "track": "En øvebane",
        "milestone": "En milepæl",
        "programme": "talentforløbet",
    },
    "en": {
        "approval": "Decision on the nomination",
        "mentor_meeting": "Mentor meeting {n}",
        "session": "A session",
        "track": "A practice track",
        "milestone": "A milestone",
        "programme": "the talent programme",
    },
}


def programme_title(programme: Programme | None, language: Language) -> str:
    """The programme's title ("Talent Ny Leder"), or a word for it when it is not known."""
    return programme.title if programme is not None else _WORDS[language]["programme"]


def session_title(key: str, programme: Programme | None, language: Language) -> str:
    """A session's title in the programme, or a word for a session it does not know."""
    for session in programme.sessions if programme is not None else ():
        if session.key == key:
            return session.title
    return _WORDS[language]["session"]


def track_title(key: str, programme: Programme | None, language: Language) -> str:
    """A practice track's title in the programme, or a word for a track it does not know."""
    for track in programme.tracks if programme is not None else ():
        if track.key == key:
            return track.title
    return _WORDS[language]["track"]


def track_titles(keys: Iterable[str], programme: Programme | None, language: Language) -> str:
    """Several tracks' titles, comma-separated."""
    return ", ".join(track_title(key, programme, language) for key in keys)


def milestone_title(key: str, programme: Programme | None, language: Language) -> str:
    """A milestone key (`session:leading-self`, `mentor_meeting:3`) as people call it: the
    session's or track's title in the programme, "Mentormøde 3", "Beslutning om indstillingen"."""
    try:
        milestone = MilestoneKey(key)
    except ValueError:
        return _WORDS[language]["milestone"]
    words = _WORDS[language]
    if milestone.kind == "approval":
        return words["approval"]
    if milestone.kind == "mentor_meeting":
        return words["mentor_meeting"].format(n=milestone.subject)
    if milestone.kind == "session":
        return session_title(milestone.subject, programme, language)
    return track_title(milestone.subject, programme, language)
