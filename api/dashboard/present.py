"""How things read on the dashboard: names from the vault, milestone titles, times, ages, the timeline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from api.access import touched
from api.dashboard.i18n import Texts
from domain import wording
from domain.events import RecordedEvent
from domain.programme import Programme
from domain.status import LadderView
from domain.values import AtRiskReason
from infra.present import CPH, parse_time, zone_of
from infra.present import when as format_when
from store.catalog import Catalog
from store.vault import Erased, PeopleVault, Unreadable

SYSTEM_ACTOR = "system"


@dataclass(frozen=True)
class Name:
    """A person as shown: their name, "erased", "unavailable" (their record will not decrypt), or
    their id when the vault knows nothing of them."""

    text: str
    erased: bool = False
    unreadable: bool = False
    known: bool = True
    system: bool = False


@dataclass(frozen=True)
class OpenEscalation:
    """A slipped milestone's running ladder: the rung it has reached, since when, and any acknowledgement."""

    journey_id: str
    cohort_id: str
    talent: Name
    milestone: str
    title: str
    rung: int
    rungs: int
    recipient_role: str
    first_raised_at: datetime
    raised_at: datetime
    at_risk: bool
    acknowledged_at: datetime | None
    acknowledged_by: Name | None


@dataclass(frozen=True)
class TimelineRow:
    """One event in a journey's timeline."""

    version: int
    at: datetime
    event_type: str
    text: str
    actor: Name
    tone: str


def _reason(reason: AtRiskReason | str) -> AtRiskReason | None:
    """The domain's at-risk reason, or None for a text it does not know (shown as it is)."""
    if isinstance(reason, AtRiskReason):
        return reason
    try:
        return AtRiskReason.parse(reason)
    except ValueError:
        return None


#: Event types and how their timeline row is coloured.
_TONES = {
    "MilestoneSlipped": "warn",
    "MilestoneMissed": "bad",
    "EscalationRaised": "bad",
    "EscalationAcknowledged": "info",
    "EscalationResolved": "good",
    "MilestoneMet": "good",
    "TrackSignedOff": "good",
    "NominationApproved": "good",
    "ProgrammeCompleted": "good",
    "NominationRejected": "bad",
    "ProgrammeNotCompleted": "bad",
    "TalentWithdrawn": "bad",
    "PersonalDataErased": "muted",
    "NominationExpired": "bad",
    "MilestoneWaived": "muted",
    "EvaluationDeferred": "warn",
}


class Presenter:
    """Formats one request's page in the viewer's language: names, titles, times and ages."""

    def __init__(self, texts: Texts, vault: PeopleVault, catalog: Catalog, now: datetime) -> None:
        self.t = texts
        self.now = now
        self._vault = vault
        self._catalog = catalog
        self._names: dict[str, Name] = {}
        self._programmes: dict[tuple[str, int], Programme | None] = {}

    # -- people ------------------------------------------------------------------------------

    async def load_people(self, person_ids: Iterable[str | None]) -> None:
        """Read the names of these people from the vault (one round trip), for `name()`.

        A record that will not decrypt shows as "unavailable" (the vault logs it); the page goes on.
        """
        wanted = {p for p in person_ids if p and p != SYSTEM_ACTOR and p not in self._names}
        touched(people=wanted)  # whose names the page shows: the access log's people (§8.7)
        found = await self._vault.read_people(wanted)
        for person_id in wanted:
            data = found.get(person_id)
            if isinstance(data, Erased):
                self._names[person_id] = Name(self.t("erased"), erased=True)
            elif isinstance(data, Unreadable):
                self._names[person_id] = Name(self.t("unreadable"), unreadable=True)
            elif data is not None:
                self._names[person_id] = Name(data.name)
            else:
                self._names[person_id] = Name(person_id, known=False)

    def name(self, person_id: str | None) -> Name:
        """A person's name as loaded (`load_people` first); the system by its role name."""
        if not person_id:
            return Name("—", known=False)
        if person_id == SYSTEM_ACTOR:
            return Name(self.t("role_system"), system=True)
        return self._names.get(person_id, Name(person_id, known=False))

    # -- programmes and milestones -----------------------------------------------------------

    async def programme(self, programme_id: str, version: int) -> Programme | None:
        """A published programme version (cached for the request)."""
        key = (programme_id, version)
        if key not in self._programmes:
            self._programmes[key] = await self._catalog.programme(programme_id, version)
        return self._programmes[key]

    @staticmethod
    def zone(programme: Programme | None) -> ZoneInfo:
        """The programme's time zone (Copenhagen unless it says otherwise)."""
        return zone_of(programme)

    # Titles are `domain.wording`'s, the same the e-mails use.

    def milestone_title(self, key: str, programme: Programme | None) -> str:
        """A milestone key (`track:observe-leader`) as its title in the programme ("Mentormøde 3")."""
        return wording.milestone_title(key, programme, self.t.lang)

    def session_title(self, key: str, programme: Programme | None) -> str:
        """A session's title."""
        return wording.session_title(key, programme, self.t.lang)

    def track_title(self, key: str, programme: Programme | None) -> str:
        """A track's title."""
        return wording.track_title(key, programme, self.t.lang)

    def reason(self, reason: AtRiskReason | str, programme: Programme | None) -> str:
        """An at-risk reason (a milestone's ladder at its last rung, attendance out of reach) in words."""
        parsed = _reason(reason)
        if parsed is not None and parsed.milestone is not None:
            return self.t("reason_escalated", milestone=self.milestone_title(parsed.milestone, programme))
        key = f"reason_{reason}"
        return self.t(key) if self.t.has(key) else str(reason).replace("_", " ")

    def reasons(self, reasons: Iterable[AtRiskReason | str], programme: Programme | None) -> list[str]:
        """At-risk reasons in words, the escalated milestones together on one line."""
        parsed = [(r, _reason(r)) for r in reasons]
        escalated = [p.milestone for _, p in parsed if p is not None and p.milestone is not None]
        found = []
        if escalated:
            titles = ", ".join(self.milestone_title(m, programme) for m in escalated)
            found.append(self.t("reason_escalated", milestone=titles))
        return found + [self.reason(r, programme) for r, p in parsed if p is None or p.milestone is None]

    # -- time --------------------------------------------------------------------------------

    def when(self, at: datetime | str | None, zone: ZoneInfo = CPH, *, seconds: bool = False) -> str:
        """A local date and time in a table ("10. feb. 2027 16.00"), as the e-mails write dates."""
        return format_when(at, self.t.lang, zone, "seconds" if seconds else "short")

    def when_long(self, at: datetime | str | None, zone: ZoneInfo = CPH) -> str:
        """A local date and time in a sentence ("onsdag den 10. februar kl. 16.00")."""
        return format_when(at, self.t.lang, zone, "long")

    def age(self, since: datetime | str | None) -> str:
        """How long ago, in the largest whole unit: `45 s`, `3 min`, `5 t`, `2 d`."""
        moment = parse_time(since)
        if moment is None:
            return "—"
        seconds = max(0, int((self.now - moment).total_seconds()))
        if seconds < 60:
            return self.t("age_seconds", n=seconds)
        if seconds < 3600:
            return self.t("age_minutes", n=seconds // 60)
        if seconds < 86400:
            return self.t("age_hours", n=seconds // 3600)
        return self.t("age_days", n=seconds // 86400)

    def overdue(self, due_at: datetime | str | None) -> bool:
        """Whether a deadline has passed."""
        moment = parse_time(due_at)
        return moment is not None and moment < self.now

    # -- escalations -------------------------------------------------------------------------

    def open_escalation(
        self, journey_id: str, cohort_id: str, talent_id: str, ladder: LadderView, programme: Programme | None
    ) -> OpenEscalation:
        """A journey's running ladder as a list shows it (at risk by the domain's rule, `LadderView.at_risk`)."""
        return OpenEscalation(
            journey_id=journey_id,
            cohort_id=cohort_id,
            talent=self.name(talent_id),
            milestone=ladder.milestone,
            title=self.milestone_title(ladder.milestone, programme),
            rung=ladder.rung,
            rungs=ladder.last_rung or 0,
            recipient_role=ladder.recipient_role,
            first_raised_at=ladder.first_raised_at,
            raised_at=ladder.raised_at,
            at_risk=ladder.at_risk,
            acknowledged_at=ladder.acknowledged_at,
            acknowledged_by=self.name(ladder.acknowledged_by) if ladder.acknowledged_at else None,
        )

    # -- the timeline ------------------------------------------------------------------------

    @staticmethod
    def people_in(events: Iterable[RecordedEvent]) -> set[str]:
        """Every person an event names: its actor, recipients, leaders, the erased."""
        found: set[str] = set()
        for ev in events:
            found.add(ev.metadata.actor)
            for field in ("recipient_id", "nearest_leader_id", "previous_leader_id", "person_id", "talent_id"):
                value = ev.data.get(field)
                if isinstance(value, str):
                    found.add(value)
            by = ev.data.get("acknowledged_by")
            if isinstance(by, str):
                found.add(by)
        return found

    def timeline(self, events: Iterable[RecordedEvent], programme: Programme | None) -> list[TimelineRow]:
        """The journey's events as rows: what happened, when, by whom (names loaded first)."""
        zone = self.zone(programme)
        rows = []
        for ev in events:
            values = self._event_values(ev.data, programme, zone)
            rows.append(
                TimelineRow(
                    version=ev.stream_version,
                    at=ev.occurred_at,
                    event_type=ev.event_type,
                    text=self.t.event(ev.event_type, values),
                    actor=self.name(ev.metadata.actor),
                    tone=_TONES.get(ev.event_type, ""),
                )
            )
        return rows

    def _event_values(self, data: Mapping[str, Any], programme: Programme | None, zone: ZoneInfo) -> dict[str, Any]:
        """The placeholders of an event's text, in words."""
        t = self.t
        cohort = data.get("cohort")
        values: dict[str, Any] = {
            "cohort": cohort.get("cohort_id", "") if isinstance(cohort, dict) else data.get("cohort_id", ""),
            "count": len(data.get("milestones") or ()),
            "number": data.get("number", ""),
            "point": data.get("point", ""),
            "rung": data.get("rung", ""),
            "held_on": data.get("held_on", ""),
        }
        if "session_key" in data:
            values["session"] = self.session_title(str(data["session_key"]), programme)
        if "track_key" in data:
            values["track"] = self.track_title(str(data["track_key"]), programme)
        if "milestone" in data:
            values["milestone"] = self.milestone_title(str(data["milestone"]), programme)
        if "status" in data:
            values["attendance"] = t.value(str(data["status"]))
        if "starts_at" in data:
            values["starts_at"] = self.when_long(data["starts_at"], zone)
        if data.get("late"):
            values["late"] = f" ({t('late')})"
        if "recipient_role" in data:
            values["recipient_role"] = t(f"role_{data['recipient_role']}")
            values["recipient"] = self.name(data.get("recipient_id")).text
        if "resolution" in data:
            values["resolution"] = t.value(str(data["resolution"]))
        if "nearest_leader_id" in data:
            values["leader"] = self.name(str(data["nearest_leader_id"])).text
        if "reasons" in data:
            values["reasons"] = ", ".join(t.value(str(r)) for r in data["reasons"]) or t("none")
        if "applied_for_leader_post" in data:
            values["applied"] = t("yes") if data["applied_for_leader_post"] else t("no")
            values["appointed"] = t("yes") if data.get("appointed") else t("no")
        if "person_id" in data:
            values["person"] = self.name(str(data["person_id"])).text
        if "due_at" in data:
            values["due"] = self.when_long(data["due_at"], zone)
        if "awaiting" in data:
            values["tracks"] = ", ".join(self.track_title(str(k), programme) for k in data["awaiting"])
        # Rules 4 (issue 14): the readiness self-assessment, lab debriefs, the clarified outcome.
        if "stage" in data:
            values["stage"] = t.value(str(data["stage"]))
        if "answer" in data:
            answer = str(data["answer"])
            values["answer"] = t(answer) if answer in ("yes", "no") else t.value(answer)
        if "clarity" in data:
            values["clarity"] = f"{data['clarity']}/5" if data["clarity"] is not None else "–"
        if "clarified" in data:
            clarified = data["clarified"]
            values["clarified"] = t.value(
                "unknown" if clarified is None else "clarified" if clarified else "not_clarified"
            )
        return values
