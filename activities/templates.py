"""E-mail templates per notification and language (Danish by default, English on request)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from string import Template

from domain.values import Language


@dataclass(frozen=True)
class Rendered:
    """A subject and a plain-text body."""

    subject: str
    body: str


_T = dict[tuple[str, Language], tuple[str, str]]

# $recipient: the recipient's name; $talent: the talent's name ("" when erased); $milestone: what
# is due; $due: when; $programme: the programme's id; $journey: the journey id.
TEMPLATES: _T = {
    ("nomination_received", "da"): (
        "Ny indstilling til $programme",
        "Kære $recipient\n\n$talent er indstillet til $programme og venter på din beslutning.\n",
    ),
    ("nomination_received", "en"): (
        "New nomination for $programme",
        "Dear $recipient\n\n$talent has been nominated for $programme and awaits your decision.\n",
    ),
    ("nomination_rejected", "da"): (
        "Indstillingen blev ikke godkendt",
        "Kære $recipient\n\nIndstillingen af $talent til $programme blev ikke godkendt.\n",
    ),
    ("nomination_rejected", "en"): (
        "The nomination was not approved",
        "Dear $recipient\n\nThe nomination of $talent for $programme was not approved.\n",
    ),
    ("nomination_expired", "da"): (
        "Indstillingen af $talent er udløbet",
        "Kære $recipient\n\nIndstillingen af $talent til $programme blev ikke afgjort i tide (frist $due) "
        "og er udløbet. Du kan indstille igen til et senere hold.\n",
    ),
    ("nomination_expired", "en"): (
        "The nomination of $talent has expired",
        "Dear $recipient\n\nThe nomination of $talent for $programme was not decided in time (due $due) "
        "and has expired. You may nominate again for a later cohort.\n",
    ),
    ("approval_overdue", "da"): (
        "Indstilling venter på din beslutning: $talent",
        "Kære $recipient\n\nIndstillingen af $talent til $programme skulle have været afgjort senest $due. "
        "Godkend eller afvis den, før den udløber.\n",
    ),
    ("approval_overdue", "en"): (
        "A nomination awaits your decision: $talent",
        "Dear $recipient\n\nThe nomination of $talent for $programme was due to be decided by $due. "
        "Please approve or reject it before it expires.\n",
    ),
    ("approval_pending_leader", "da"): (
        "Indstillingen af $talent er endnu ikke afgjort",
        "Kære $recipient\n\nKoordinatoren har endnu ikke afgjort din indstilling af $talent til $programme "
        "(frist $due). Koordinatoren er mindet om den.\n",
    ),
    ("approval_pending_leader", "en"): (
        "The nomination of $talent is not decided yet",
        "Dear $recipient\n\nThe coordinator has not yet decided your nomination of $talent for $programme "
        "(due $due). The coordinator has been reminded.\n",
    ),
    ("attendance_unrecorded", "da"): (
        "Fremmøde mangler: $talent",
        "Kære $recipient\n\nFremmødet for $talent ($milestone) er ikke registreret (frist $due). "
        "Registrér det venligst.\n",
    ),
    ("attendance_unrecorded", "en"): (
        "Attendance not recorded: $talent",
        "Dear $recipient\n\nThe attendance of $talent ($milestone) has not been recorded (due $due). "
        "Please record it.\n",
    ),
    ("absence", "da"): (
        "Fravær fra en obligatorisk session i $programme",
        "Kære $recipient\n\nDu er registreret som fraværende fra en obligatorisk session i $programme. "
        "Tal med din nærmeste leder og koordinatoren om, hvordan du når kravet til fremmøde.\n",
    ),
    ("absence", "en"): (
        "Absent from a mandatory session of $programme",
        "Dear $recipient\n\nYou were recorded as absent from a mandatory session of $programme. "
        "Please talk to your nearest leader and the coordinator about meeting the attendance requirement.\n",
    ),
    ("absence_leader", "da"): (
        "$talent var fraværende fra en obligatorisk session",
        "Kære $recipient\n\n$talent er registreret som fraværende fra en obligatorisk session i $programme. "
        "Tag en snak om, hvordan du kan støtte.\n",
    ),
    ("absence_leader", "en"): (
        "$talent was absent from a mandatory session",
        "Dear $recipient\n\n$talent was recorded as absent from a mandatory session of $programme. "
        "Please talk about how you can support.\n",
    ),
    ("welcome", "da"): (
        "Velkommen til $programme",
        "Kære $recipient\n\nDu er optaget på $programme. Vi glæder os til forløbet med dig.\n",
    ),
    ("welcome", "en"): (
        "Welcome to $programme",
        "Dear $recipient\n\nYou have been enrolled in $programme. We look forward to the journey with you.\n",
    ),
    ("welcome_leader", "da"): (
        "Din medarbejder er med i $programme",
        "Kære $recipient\n\n$talent er med i $programme. Som nærmeste leder holder du mentormøder "
        "og godkender øvebanerne.\n",
    ),
    ("welcome_leader", "en"): (
        "Your employee has joined $programme",
        "Dear $recipient\n\n$talent has joined $programme. As nearest leader you hold the mentor "
        "meetings and sign off the practice tracks.\n",
    ),
    ("reminder", "da"): (
        "Påmindelse: $milestone",
        "Kære $recipient\n\n$milestone skulle have været klaret senest $due. Husk at få det gjort.\n",
    ),
    ("reminder", "en"): (
        "Reminder: $milestone",
        "Dear $recipient\n\n$milestone was due by $due. Please see to it.\n",
    ),
    ("escalation_nearest_leader", "da"): (
        "$talent er bagud: $milestone",
        "Kære $recipient\n\n$milestone for $talent skulle have været klaret senest $due. "
        "Tag en snak om, hvordan du kan støtte.\n",
    ),
    ("escalation_nearest_leader", "en"): (
        "$talent is behind: $milestone",
        "Dear $recipient\n\n$milestone for $talent was due by $due. Please talk about how you can support.\n",
    ),
    ("escalation_leaders_leader", "da"): (
        "Eskalering: $talent, $milestone",
        "Kære $recipient\n\n$milestone for $talent er stadig ikke klaret (frist $due). Nærmeste leder er orienteret.\n",
    ),
    ("escalation_leaders_leader", "en"): (
        "Escalation: $talent, $milestone",
        "Dear $recipient\n\n$milestone for $talent is still open (due $due). The nearest leader has been told.\n",
    ),
    ("escalation_coordinator", "da"): (
        "Forløb i risiko: $talent",
        "Kære $recipient\n\n$milestone for $talent er stadig ikke klaret (frist $due). Forløbet er nu i risiko.\n",
    ),
    ("escalation_coordinator", "en"): (
        "Journey at risk: $talent",
        "Dear $recipient\n\n$milestone for $talent is still open (due $due). The journey is now at risk.\n",
    ),
    ("escalation_resolved", "da"): (
        "Afsluttet af koordinatoren: $milestone",
        "Kære $recipient\n\nKoordinatoren har afsluttet eskaleringen af $milestone for $talent. "
        "Der kommer ikke flere påmindelser om den.\n",
    ),
    ("escalation_resolved", "en"): (
        "Closed by the coordinator: $milestone",
        "Dear $recipient\n\nThe coordinator has closed the escalation of $milestone for $talent. "
        "No further reminders will be sent about it.\n",
    ),
    ("track_submitted", "da"): (
        "$talent har afleveret en øvebane",
        "Kære $recipient\n\n$talent har afleveret en refleksion og venter på din godkendelse.\n",
    ),
    ("track_submitted", "en"): (
        "$talent submitted a track",
        "Dear $recipient\n\n$talent submitted a reflection and awaits your sign-off.\n",
    ),
    ("track_returned", "da"): (
        "Din øvebane er sendt retur",
        "Kære $recipient\n\nDin nærmeste leder har sendt øvebanen retur med en kommentar.\n",
    ),
    ("track_returned", "en"): (
        "Your track was returned",
        "Dear $recipient\n\nYour nearest leader returned the track with a comment.\n",
    ),
    ("completion", "da"): (
        "$programme er evalueret",
        "Kære $recipient\n\nForløbet for $talent i $programme er evalueret. Se resultatet hos koordinatoren.\n",
    ),
    ("completion", "en"): (
        "$programme has been evaluated",
        "Dear $recipient\n\nThe journey of $talent in $programme has been evaluated. The coordinator has the result.\n",
    ),
    ("leader_changed", "da"): (
        "Ny nærmeste leder i $programme",
        "Kære $recipient\n\nDu har fået en ny nærmeste leder i $programme. Den nye leder godkender "
        "dine øvebaner og holder mentormøderne med dig fremover.\n",
    ),
    ("leader_changed", "en"): (
        "A new nearest leader in $programme",
        "Dear $recipient\n\nYou have a new nearest leader in $programme. From now on the new leader "
        "signs off your tracks and holds the mentor meetings with you.\n",
    ),
    ("leader_changed_former", "da"): (
        "Du er ikke længere nærmeste leder for $talent",
        "Kære $recipient\n\n$talent har fået en ny nærmeste leder i $programme. Godkendelser og "
        "mentormøder går fremover til den nye leder; du har ikke længere adgang til forløbet.\n",
    ),
    ("leader_changed_former", "en"): (
        "You are no longer the nearest leader of $talent",
        "Dear $recipient\n\n$talent has a new nearest leader in $programme. Sign-offs and mentor "
        "meetings now go to the new leader; you no longer have access to the journey.\n",
    ),
    ("signoff_awaited", "da"): (
        "Evalueringen venter på din godkendelse",
        "Kære $recipient\n\n$programme er slut for $talent, men en øvebane venter stadig på din "
        "godkendelse. Evalueringen venter til $due; en godkendelse inden da tæller med.\n",
    ),
    ("signoff_awaited", "en"): (
        "The evaluation waits for your sign-off",
        "Dear $recipient\n\n$programme has ended for $talent, but a track still awaits your sign-off. "
        "The evaluation waits until $due; a sign-off before then counts.\n",
    ),
    ("follow_up_question", "da"): (
        "Hvordan går det efter $programme?",
        "Kære $recipient\n\nHar du søgt eller fået en lederstilling siden forløbet? Svar gerne via linket fra HR.\n",
    ),
    ("follow_up_question", "en"): (
        "How are things after $programme?",
        "Dear $recipient\n\nHave you applied for, or been appointed to, a leader post since the programme?\n",
    ),
}


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
    """Fill a template; an unknown template is a KeyError (a bug, not a delivery problem).

    Every value is put on one line first: a name with a line break or a control character (stored
    before such names were refused) then still makes a valid Subject header and an honest body.
    """
    subject, body = TEMPLATES[(template, language)]
    safe = {key: one_line(value) for key, value in values.items()}
    return Rendered(Template(subject).safe_substitute(safe), Template(body).safe_substitute(safe))
