"""E-mail templates per notification and language, rendered with the dashboard's titles, dates and links."""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from string import Template
from typing import Any

from domain.programme import Programme
from domain.values import Language, MilestoneKey
from domain.wording import milestone_title, programme_title, session_title, track_title, track_titles
from infra.answer_links import KeyedId, answer_path
from infra.present import Links, Page, parse_time, when, zone_of


@dataclass(frozen=True)
class Rendered:
    """A subject and a plain-text body."""

    subject: str
    body: str


@dataclass(frozen=True)
class Mail:
    """One e-mail in one language: its subject, what happened, and what to do next (the link follows)."""

    subject: str
    text: str
    next_step: str


# $recipient: the recipient's name; $talent: the talent's name ("" when erased); $milestone: the
# title of what is due (the session's or track's title, "Mentormøde 3"); $due: when, as people
# write it; $programme: the programme's title; $link: the page where the next step is done.
TEMPLATES: dict[tuple[str, Language], Mail] = {
    ("nomination_received", "da"): Mail(
        "Ny indstilling til $programme: $talent",
        "$talent er indstillet til $programme og venter på din beslutning.",
        "Godkend eller afvis indstillingen her:",
    ),
    ("nomination_received", "en"): Mail(
        "New nomination for $programme: $talent",
        "$talent has been nominated for $programme and awaits your decision.",
        "Approve or reject the nomination here:",
    ),
    ("nomination_rejected", "da"): Mail(
        "Indstillingen af $talent blev ikke godkendt",
        "Indstillingen af $talent til $programme blev ikke godkendt.",
        "Se forløbet her:",
    ),
    ("nomination_rejected", "en"): Mail(
        "The nomination of $talent was not approved",
        "The nomination of $talent for $programme was not approved.",
        "See the journey here:",
    ),
    ("nomination_expired", "da"): Mail(
        "Indstillingen af $talent er udløbet",
        "Indstillingen af $talent til $programme blev ikke afgjort i tide (frist $due) og er udløbet.",
        "Du kan indstille igen til et senere hold her:",
    ),
    ("nomination_expired", "en"): Mail(
        "The nomination of $talent has expired",
        "The nomination of $talent for $programme was not decided in time (due $due) and has expired.",
        "You may nominate again for a later cohort here:",
    ),
    ("approval_overdue", "da"): Mail(
        "Indstilling venter på din beslutning: $talent",
        "Indstillingen af $talent til $programme skulle have været afgjort senest $due.",
        "Godkend eller afvis den her, før den udløber:",
    ),
    ("approval_overdue", "en"): Mail(
        "A nomination awaits your decision: $talent",
        "The nomination of $talent for $programme was due to be decided by $due.",
        "Approve or reject it here before it expires:",
    ),
    ("approval_pending_leader", "da"): Mail(
        "Indstillingen af $talent er endnu ikke afgjort",
        "Koordinatoren har endnu ikke afgjort din indstilling af $talent til $programme (frist $due). "
        "Koordinatoren er mindet om den.",
        "Følg indstillingen her:",
    ),
    ("approval_pending_leader", "en"): Mail(
        "The nomination of $talent is not decided yet",
        "The coordinator has not yet decided your nomination of $talent for $programme (due $due). "
        "The coordinator has been reminded.",
        "Follow the nomination here:",
    ),
    ("attendance_unrecorded", "da"): Mail(
        "Fremmøde mangler: $talent, $milestone",
        "Fremmødet for $talent til »$milestone« er ikke registreret (frist $due).",
        "Registrér fremmødet her:",
    ),
    ("attendance_unrecorded", "en"): Mail(
        "Attendance not recorded: $talent, $milestone",
        "The attendance of $talent at “$milestone” has not been recorded (due $due).",
        "Record the attendance here:",
    ),
    ("absence", "da"): Mail(
        "Fravær fra $milestone i $programme",
        "Du er registreret som fraværende fra »$milestone«, en obligatorisk undervisningsgang i $programme.",
        "Tal med din nærmeste leder og koordinatoren om, hvordan du når kravet til fremmøde, og se din "
        "milepælsplan her:",
    ),
    ("absence", "en"): Mail(
        "Absent from $milestone in $programme",
        "You were recorded as absent from “$milestone”, a mandatory session of $programme.",
        "Please talk to your nearest leader and the coordinator about meeting the attendance requirement, "
        "and see your milestone plan here:",
    ),
    ("absence_leader", "da"): Mail(
        "$talent var fraværende fra $milestone",
        "$talent er registreret som fraværende fra »$milestone«, en obligatorisk undervisningsgang i $programme.",
        "Tag en snak om, hvordan du kan støtte, og følg forløbet her:",
    ),
    ("absence_leader", "en"): Mail(
        "$talent was absent from $milestone",
        "$talent was recorded as absent from “$milestone”, a mandatory session of $programme.",
        "Please talk about how you can support, and follow the journey here:",
    ),
    ("welcome", "da"): Mail(
        "Velkommen til $programme",
        "Du er optaget på $programme. Vi glæder os til forløbet med dig.",
        "Se din milepælsplan og hent din kalender her:",
    ),
    ("welcome", "en"): Mail(
        "Welcome to $programme",
        "You have been enrolled in $programme. We look forward to the journey with you.",
        "See your milestone plan and get your calendar here:",
    ),
    ("welcome_leader", "da"): Mail(
        "Din medarbejder er med i $programme",
        "$talent er med i $programme. Som nærmeste leder holder du mentormøderne og godkender øvebanerne.",
        "Se forløbet, og hvad det venter på, her:",
    ),
    ("welcome_leader", "en"): Mail(
        "Your employee has joined $programme",
        "$talent has joined $programme. As nearest leader you hold the mentor meetings and sign off the "
        "practice tracks.",
        "See the journey and what it waits on here:",
    ),
    ("reminder", "da"): Mail(
        "Påmindelse: $milestone",
        "»$milestone« skulle have været klaret senest $due.",
        "Se din milepælsplan her:",
    ),
    ("reminder", "en"): Mail(
        "Reminder: $milestone",
        "“$milestone” was due by $due.",
        "See your milestone plan here:",
    ),
    ("escalation_nearest_leader", "da"): Mail(
        "$talent er bagud: $milestone",
        "»$milestone« for $talent skulle have været klaret senest $due.",
        "Tag en snak med $talent om, hvordan du kan støtte, og følg forløbet her:",
    ),
    ("escalation_nearest_leader", "en"): Mail(
        "$talent is behind: $milestone",
        "“$milestone” for $talent was due by $due.",
        "Please talk to $talent about how you can support, and follow the journey here:",
    ),
    ("escalation_leaders_leader", "da"): Mail(
        "Eskalering: $talent, $milestone",
        "»$milestone« for $talent er stadig ikke klaret (frist $due). Nærmeste leder er orienteret.",
        "Se forløbet her:",
    ),
    ("escalation_leaders_leader", "en"): Mail(
        "Escalation: $talent, $milestone",
        "“$milestone” for $talent is still open (due $due). The nearest leader has been told.",
        "See the journey here:",
    ),
    ("escalation_coordinator", "da"): Mail(
        "Forløb i risiko: $talent, $milestone",
        "»$milestone« for $talent er stadig ikke klaret (frist $due). Forløbet er nu i risiko.",
        "Kvittér for eskaleringen, eller afslut den, her:",
    ),
    ("escalation_coordinator", "en"): Mail(
        "Journey at risk: $talent, $milestone",
        "“$milestone” for $talent is still open (due $due). The journey is now at risk.",
        "Acknowledge or resolve the escalation here:",
    ),
    ("escalation_resolved", "da"): Mail(
        "Afsluttet af koordinatoren: $milestone",
        "Koordinatoren har afsluttet eskaleringen af »$milestone« for $talent. "
        "Der kommer ikke flere påmindelser om den.",
        "Se forløbet her:",
    ),
    ("escalation_resolved", "en"): Mail(
        "Closed by the coordinator: $milestone",
        "The coordinator has closed the escalation of “$milestone” for $talent. "
        "No further reminders will be sent about it.",
        "See the journey here:",
    ),
    ("track_submitted", "da"): Mail(
        "$talent har afleveret $milestone",
        "$talent har afleveret en refleksion over »$milestone« og venter på din godkendelse.",
        "Godkend øvebanen, eller send den retur med en kommentar, her:",
    ),
    ("track_submitted", "en"): Mail(
        "$talent submitted $milestone",
        "$talent submitted a reflection on “$milestone” and awaits your sign-off.",
        "Sign off the track, or return it with a comment, here:",
    ),
    ("track_returned", "da"): Mail(
        "Din øvebane er sendt retur: $milestone",
        "Din nærmeste leder har sendt »$milestone« retur med en kommentar.",
        "Læs kommentaren, og aflevér igen, her:",
    ),
    ("track_returned", "en"): Mail(
        "Your track was returned: $milestone",
        "Your nearest leader returned “$milestone” with a comment.",
        "Read the comment and submit again here:",
    ),
    ("completion", "da"): Mail(
        "$programme er evalueret",
        "Forløbet for $talent i $programme er evalueret.",
        "Se resultatet her:",
    ),
    ("completion", "en"): Mail(
        "$programme has been evaluated",
        "The journey of $talent in $programme has been evaluated.",
        "See the result here:",
    ),
    ("leader_changed", "da"): Mail(
        "Ny nærmeste leder i $programme",
        "Du har fået en ny nærmeste leder i $programme. Den nye leder godkender dine øvebaner og holder "
        "mentormøderne med dig fremover.",
        "Se dit forløb her:",
    ),
    ("leader_changed", "en"): Mail(
        "A new nearest leader in $programme",
        "You have a new nearest leader in $programme. From now on the new leader signs off your tracks and "
        "holds the mentor meetings with you.",
        "See your journey here:",
    ),
    ("session_rescheduled", "da"): Mail(
        "$milestone er flyttet",
        "$milestone i $programme er flyttet til et nyt tidspunkt. Din kalender følger med.",
        "Se den nye dato i dit forløb her:",
    ),
    ("session_rescheduled", "en"): Mail(
        "$milestone has moved",
        "$milestone in $programme has moved to a new time. Your calendar follows.",
        "See the new date in your journey here:",
    ),
    ("leader_changed_former", "da"): Mail(
        "Du er ikke længere nærmeste leder for $talent",
        "$talent har fået en ny nærmeste leder i $programme. Godkendelser og mentormøder går fremover til "
        "den nye leder; du har ikke længere adgang til forløbet.",
        "Se dine øvrige talenter her:",
    ),
    ("leader_changed_former", "en"): Mail(
        "You are no longer the nearest leader of $talent",
        "$talent has a new nearest leader in $programme. Sign-offs and mentor meetings now go to the new "
        "leader; you no longer have access to the journey.",
        "See your other talents here:",
    ),
    ("signoff_awaited", "da"): Mail(
        "Evalueringen venter på din godkendelse",
        "$programme er slut for $talent, men »$milestone« venter stadig på din godkendelse. Evalueringen "
        "venter til $due; en godkendelse inden da tæller med.",
        "Godkend øvebanen her:",
    ),
    ("signoff_awaited", "en"): Mail(
        "The evaluation waits for your sign-off",
        "$programme has ended for $talent, but “$milestone” still awaits your sign-off. The evaluation waits "
        "until $due; a sign-off before then counts.",
        "Sign off the track here:",
    ),
    ("follow_up_question", "da"): Mail(
        "Hvordan går det efter $programme?",
        "Har du søgt eller fået en lederstilling siden forløbet?",
        "Svar her, senest $due:",
    ),
    ("follow_up_question", "en"): Mail(
        "How are things after $programme?",
        "Have you applied for, or been appointed to, a leader post since the programme?",
        "Please answer here by $due:",
    ),
    # Rules 4 (issue 14): mentor meetings as appointments, with an invitation attached.
    ("mentor_meeting_proposed", "da"): Mail(
        "Mentormøde $due",
        "Den nærmeste leder har foreslået det næste mentormøde i $programme til $due. Invitationen er vedhæftet.",
        "Se forløbet og log mødet, når det er holdt, her:",
    ),
    ("mentor_meeting_proposed", "en"): Mail(
        "Mentor meeting $due",
        "The nearest leader proposed the next mentor meeting in $programme for $due. The invitation is attached.",
        "See the journey and log the meeting once it is held here:",
    ),
    ("mentor_meeting_reminder", "da"): Mail(
        "Påmindelse: mentormøde med $talent $due",
        "Du har foreslået et mentormøde med $talent til $due.",
        "Log eller bekræft mødet her, når det er holdt:",
    ),
    ("mentor_meeting_reminder", "en"): Mail(
        "Reminder: mentor meeting with $talent $due",
        "You proposed a mentor meeting with $talent for $due.",
        "Log or confirm the meeting here once it is held:",
    ),
    # Rules 4 (issue 14): a stage of the readiness self-assessment opened.
    ("readiness_question", "da"): Mail(
        "Vil du være leder? Et kort spørgsmål fra $programme",
        "Vi vil gerne vide, hvor du står: vil du være leder – ja, ikke nu eller nej? Et velbegrundet nej er "
        "også et godt resultat.",
        "Svar på forløbets side her:",
    ),
    ("readiness_question", "en"): Mail(
        "Do you want to lead? A short question from $programme",
        "We would like to know where you stand: do you want to lead – yes, not now or no? A well-founded no "
        "is a good result too.",
        "Answer on your journey's page here:",
    ),
}

#: Where a reminder or an escalation asks something else of its reader than the template's next
#: step, by the kind of the milestone that slipped.
KIND_STEPS: dict[tuple[str, Language, str], str] = {
    ("reminder", "da", "track"): "Aflevér din refleksion over øvebanen her:",
    ("reminder", "en", "track"): "Submit your reflection on the track here:",
    ("reminder", "da", "mentor_meeting"): "Hold mødet med din nærmeste leder, og log det her:",
    ("reminder", "en", "mentor_meeting"): "Hold the meeting with your nearest leader and log it here:",
    ("reminder", "da", "session"): "Tal med koordinatoren om fremmødet, og se din milepælsplan her:",
    ("reminder", "en", "session"): "Talk to the coordinator about your attendance, and see your milestone plan here:",
    ("escalation_nearest_leader", "da", "track"): "Tal med $talent om øvebanen, og godkend den her, når den er "
    "afleveret:",
    ("escalation_nearest_leader", "en", "track"): "Talk to $talent about the track, and sign it off here once it "
    "is submitted:",
    ("escalation_nearest_leader", "da", "mentor_meeting"): "Hold mentormødet med $talent, og log eller bekræft "
    "det her:",
    ("escalation_nearest_leader", "en", "mentor_meeting"): "Hold the mentor meeting with $talent, and log or "
    "confirm it here:",
}

#: The page an e-mail links to when it is not the journey's own (where every other next step is done).
PAGES: dict[str, Page] = {
    # The nominating leader may nominate again, for a later cohort.
    "nomination_expired": "nominate",
    # The former leader no longer sees the journey (404): their own page, with their other talents.
    "leader_changed_former": "leader",
}

_GREETING: dict[Language, str] = {"da": "Kære", "en": "Dear"}


#: Bidi embeddings, overrides and isolates: they can make a subject read as something else. Other
#: format characters (a zero-width joiner in a name, a soft hyphen) are harmless and kept.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unsafe_char(ch: str) -> bool:
    """Whether `ch` must not stand in a header or a one-line value: a control character (CR, LF,
    NUL, ESC, ...), a line or paragraph separator, or a bidi control."""
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or ch in _BIDI_CONTROLS


def one_line(value: str) -> str:
    """`value` on one line: every unsafe character a space, runs of white space one space."""
    return " ".join("".join(" " if unsafe_char(ch) else ch for ch in value).split())


def render(template: str, language: Language, **values: str) -> Rendered:
    """Fill a template; an unknown template or a missing value is a KeyError (a bug, not a
    delivery problem: the row is dead-lettered rather than sent with a `$placeholder` in it).

    Every value is put on one line first: a name with a line break or a control character (stored
    before such names were refused) then still makes a valid Subject header and an honest body.
    """
    mail = TEMPLATES[(template, language)]
    safe = {key: one_line(value) for key, value in values.items()}
    step = KIND_STEPS.get((template, language, values.get("kind", "")), mail.next_step)
    body = f"{_GREETING[language]} $recipient\n\n{mail.text}\n\n{step}\n$link\n"
    return Rendered(Template(mail.subject).substitute(safe), Template(body).substitute(safe))


def compose(
    template: str,
    language: Language,
    *,
    recipient: str,
    talent: str,
    journey_id: str,
    data: Mapping[str, Any],
    programme: Programme | None,
    due: datetime | None,
    links: Links,
    sign: KeyedId | None = None,
) -> Rendered:
    """An e-mail as people read it: the titles of the programme and its milestones (the same as the
    dashboard's, `domain.wording`), the date as the reader's language writes it, and a link to the
    page where the next step is done."""
    kind = ""
    milestone = ""
    if isinstance(data.get("milestone"), str):
        milestone = milestone_title(data["milestone"], programme, language)
        with contextlib.suppress(ValueError):
            kind = MilestoneKey(data["milestone"]).kind
    elif isinstance(data.get("session_key"), str):
        milestone = session_title(data["session_key"], programme, language)
        kind = "session"
    elif isinstance(data.get("track_key"), str):
        milestone = track_title(data["track_key"], programme, language)
        kind = "track"
    elif isinstance(data.get("awaiting"), list):
        milestone = track_titles([str(k) for k in data["awaiting"]], programme, language)
        kind = "track"
    return render(
        template,
        language,
        recipient=recipient,
        talent=talent,
        milestone=milestone,
        kind=kind,
        due=when(due, language, zone_of(programme)) if due is not None else "",
        programme=programme_title(programme, language),
        link=_answer_link(links, sign, journey_id, data)
        if template == "follow_up_question" and sign
        else links.page(PAGES.get(template, "journey"), journey_id),
    )


def _answer_link(links: Links, sign: KeyedId, journey_id: str, data: Mapping[str, Any]) -> str:
    """A follow-up's one-click answer page, signed with the vault's keyed ids (`infra.answer_links`)."""
    respond_by = parse_time(data.get("respond_by"))
    if not isinstance(data.get("point"), int) or respond_by is None:
        return links.journey(journey_id)
    return links.public_url.rstrip("/") + answer_path(sign, journey_id, data["point"], respond_by)
