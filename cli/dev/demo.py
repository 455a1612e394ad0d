"""The demo `talent dev` loads: its made-up people, the programmes, a cohort that runs in minutes, its journeys."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import structlog

from api.auth import Principal
from api.models import NominationIn, PersonIn
from cli.dev.host import DevError
from domain import commands as c
from domain.programme import Cohort, CohortSession, Programme
from infra.programmes import load_programme
from service import journeys as service
from service.bootstrap import Resources
from store.catalog import Catalog, CatalogConflict
from store.vault import PersonData, PersonErased
from store.views import journeys

log = structlog.get_logger("talent.dev")


@dataclass(frozen=True)
class DemoPerson:
    """A made-up person of the demo; their person id is scoped to a cohort, so every demo cohort
    has its own people and an old cohort's open journeys never stand in for a new one's."""

    slug: str
    name: str
    email: str
    workplace: str

    def person_id(self, cohort_id: str) -> str:
        """Their person id in `cohort_id`."""
        return f"{cohort_id}-{self.slug}"

    def as_input(self, cohort_id: str) -> PersonIn:
        """As a nomination names them."""
        return PersonIn(person_id=self.person_id(cohort_id), name=self.name, email=self.email, workplace=self.workplace)


@dataclass(frozen=True)
class DemoNomination:
    """A talent the HR system nominates; `approve`: the coordinator approves at once."""

    talent: DemoPerson
    leader: DemoPerson
    approve: bool
    motivation: str


_LARS = DemoPerson("lars", "Lars Nielsen", "lars.nielsen@example.org", "Skolen ved Fjorden")
_HANNE = DemoPerson("hanne", "Hanne Krogh", "hanne.krogh@example.org", "Vestbyens Børnehus")
_JENS = DemoPerson("jens", "Jens Madsen", "jens.madsen@example.org", "Hasseris Skole")
_BOSS = DemoPerson("birgitte", "Birgitte Holm", "birgitte.holm@example.org", "Børn og Unge, Aalborg Kommune")
#: The coordinator is the same person in every demo cohort (and the coordinator token's person).
COORDINATOR_ID = "demo-coordinator"
_COORDINATOR = PersonData(
    name="Karen Vestergaard", email="karen.vestergaard@example.org", workplace="Børn og Unge, Aalborg Kommune"
)
HR_SYSTEM = Principal(token_id="demo-hr-system", role="hr_system")  # noqa: S106 - an actor id, not a secret
COORDINATOR: c.Actor = {"actor_id": COORDINATOR_ID, "actor_role": "coordinator"}
#: Four approved (their sessions and tracks slip within minutes), one left for the approval ladder.
DEMO: tuple[DemoNomination, ...] = (
    DemoNomination(
        DemoPerson("mette", "Mette Sørensen", "mette.sorensen@example.org", _LARS.workplace),
        _LARS,
        approve=True,
        motivation="Mette tager ansvar for nye kolleger og har vist lederpotentiale i teamsamarbejdet.",
    ),
    DemoNomination(
        DemoPerson("frederik", "Frederik Jensen", "frederik.jensen@example.org", _LARS.workplace),
        _LARS,
        approve=True,
        motivation="Frederik leder allerede årgangsteamets møder med ro og overblik.",
    ),
    DemoNomination(
        DemoPerson("sofie", "Sofie Andersen", "sofie.andersen@example.org", _HANNE.workplace),
        _HANNE,
        approve=True,
        motivation="Sofie har drevet husets sprogindsats og samler personalegruppen om den.",
    ),
    DemoNomination(
        DemoPerson("mads", "Mads Pedersen", "mads.pedersen@example.org", _JENS.workplace),
        _JENS,
        approve=True,
        motivation="Mads er tillidsrepræsentant og vil gerne prøve kræfter med ledelse.",
    ),
    DemoNomination(
        DemoPerson("ida", "Ida Christensen", "ida.christensen@example.org", _HANNE.workplace),
        _HANNE,
        approve=False,
        motivation="Ida ønsker at blive afdelingsleder på sigt.",
    ),
)
#: Whose tokens the banner prints: a leader with two demo talents, and the first talent.
TOKEN_LEADER, TOKEN_TALENT = _LARS, DEMO[0].talent


async def publish_programmes(catalog: Catalog, examples: Path) -> Programme:
    """Publish the reference and the compressed demo programme (already published is fine); the demo one."""
    published: list[Programme] = []
    for name in ("talent-ny-leder.yaml", "demo-compressed.yaml"):
        programme = load_programme((examples / name).read_text(encoding="utf-8"))
        try:
            new = await catalog.publish(programme)
        except CatalogConflict as exc:
            raise DevError(f"examples/{name}: {exc}; give the changed programme a new version") from exc
        log.info("programme_published" if new else "programme_present", programme_id=programme.id, v=programme.version)
        published.append(programme)
    return published[-1]


def new_demo_cohort(programme: Programme, now: datetime) -> Cohort:
    """A cohort of the compressed programme starting on the minute, one to two minutes from `now`
    (time for the approvals to land first), with a session every minute."""
    start = (now + timedelta(minutes=2)).astimezone(programme.working_calendar.tz).replace(second=0, microsecond=0)
    sessions = tuple(
        CohortSession(key=s.key, starts_at=start + timedelta(minutes=i), location="UCN Aalborg (demo)")
        for i, s in enumerate(programme.sessions)
    )
    return Cohort(
        cohort_id=f"demo-{start:%Y%m%d-%H%M}",
        programme_id=programme.id,
        programme_version=programme.version,
        starts_on=start.date(),
        starts_at=start,
        capacity=24,
        coordinator_id=COORDINATOR_ID,
        sessions=sessions,
    )


async def demo_cohort(catalog: Catalog, pool: asyncpg.Pool[asyncpg.Record], programme: Programme) -> Cohort:
    """The cohort the demo fills: the latest demo cohort until its programme is evaluated, else a new one.

    A restart during the demo keeps its journeys; one after it has run its course starts a fresh
    demo, so escalations happen within minutes again.
    """
    latest = await pool.fetchval(
        "SELECT cohort_id FROM cohorts WHERE programme_id = $1 AND programme_version = $2 "
        "AND cohort_id ~ '^demo-[0-9]{8}-[0-9]{4}$' ORDER BY created_at DESC, cohort_id DESC LIMIT 1",
        programme.id,
        programme.version,
    )
    cohort = await catalog.cohort(latest) if latest is not None else None
    now = datetime.now(UTC)
    if cohort is not None:
        ends = programme.working_calendar.add(cohort.start_instant(programme), programme.completion.evaluate_after)
        if now < ends:
            log.info("demo_cohort_kept", cohort_id=cohort.cohort_id)
            return cohort
    cohort = new_demo_cohort(programme, now)
    await catalog.create_cohort(cohort)
    log.info("demo_cohort_created", cohort_id=cohort.cohort_id, starts_at=cohort.start_instant(programme).isoformat())
    return cohort


async def seed_demo(resources: Resources, cohort: Cohort) -> None:
    """Nominate the demo talents (as the HR system) and approve all but one (as the coordinator).

    Only what the cohort lacks is done, so a restart neither duplicates nor re-decides anything.
    """
    have = {j.talent_id: (j.journey_id, j.state) for j in await journeys.of_cohort(resources.pool, cohort.cohort_id)}
    with contextlib.suppress(PersonErased):  # erased stays erased; the coordinator's name just goes missing
        await resources.vault.put_person(COORDINATOR_ID, _COORDINATOR)
    for n in DEMO:
        found = have.get(n.talent.person_id(cohort.cohort_id))
        if found is None:
            _, status = await service.nominate(
                resources, _nomination(n, cohort.cohort_id), HR_SYSTEM, correlation_id=f"dev-{cohort.cohort_id}"
            )
            found = (status["journey_id"], status["state"])
        journey_id, state = found
        if n.approve and state == "nominated":
            approve = c.DecideNomination(**COORDINATOR, decision="approve")
            await service.execute(resources, journey_id, approve, update_id=f"dev-approve-{journey_id}")


def _nomination(n: DemoNomination, cohort_id: str) -> NominationIn:
    return NominationIn(
        cohort_id=cohort_id,
        external_ref=f"HR-{n.talent.slug.upper()}",
        motivation=n.motivation,
        talent=n.talent.as_input(cohort_id),
        nearest_leader=n.leader.as_input(cohort_id),
        leaders_leader=_BOSS.as_input(cohort_id),
    )


async def demo_summary(resources: Resources, cohort: Cohort, programme: Programme) -> str:
    """The demo's lines of the banner: the cohort, its journeys by state, and when escalations start."""
    rows = await journeys.of_cohort(resources.pool, cohort.cohort_id)
    counts = Counter(j.state for j in rows)
    cal = programme.working_calendar
    rungs = programme.escalation.rungs
    _, first_approval_rung = programme.rungs_for("approval")[0]
    approvals = [
        cal.add(m.due_at, first_approval_rung.after)
        for j in rows
        if j.state == "nominated"
        for m in j.milestones
        if m.key == "approval"
    ]
    kickoff = min(x.starts_at for x in cohort.sessions)
    attendance = cal.add(cal.add(kickoff, programme.attendance_grace), rungs[0].after)
    start = cohort.start_instant(programme).astimezone(cal.tz)
    when = [f"missed attendance from {attendance.astimezone(cal.tz):%H:%M:%S}"]
    if approvals:
        when.insert(0, f"the undecided nomination to the coordinator at {min(approvals).astimezone(cal.tz):%H:%M:%S}")
    return (
        f"Demo: cohort {cohort.cohort_id} ({programme.id} v{programme.version}), "
        f"a session a minute from {start:%H:%M} {cal.tz}\n"
        f"  journeys: {', '.join(f'{n} {state}' for state, n in sorted(counts.items())) or 'none'}\n"
        f"  escalations: {', '.join(when)}"
    )
