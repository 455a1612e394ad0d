from datetime import timedelta, date
import asyncpg
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.client import WorkflowUpdateFailedError
from domain import commands as c
from tests.support import COORD, TALENT, nominate, reference_cohort, reference_programme
from workers.journeys import start_journey
from workflows.journey import TalentJourneyWorkflow
from workflows.names import AT_RISK


async def test_smoke(time_env: WorkflowEnvironment, journey_worker: Worker, pool: asyncpg.Pool, unique: str) -> None:
    now = await time_env.get_current_time()
    print("now", now)
    p = reference_programme()
    cohort = reference_cohort(p, cohort_id=f"c-{unique}", starts_on=(now + timedelta(days=14)).date())
    h = await start_journey(time_env.client, nominate(p, cohort, journey_id=unique), task_queue=journey_worker.task_queue)
    print(h.id, h.run_id, h.result_run_id, h.first_execution_run_id)
    r = await h.execute_update(TalentJourneyWorkflow.decide_nomination, c.DecideNomination(**COORD, decision="approve"))
    print(r)
    try:
        await h.execute_update(TalentJourneyWorkflow.record_attendance, c.RecordAttendance(**COORD, session_key="nope", status="attended"), id="bad-1")
    except WorkflowUpdateFailedError as exc:
        print("refused", repr(exc.cause), getattr(exc.cause, "type", None))
    s = await h.query(TalentJourneyWorkflow.status)
    print(s.state, s.next_deadline)
    d = await h.describe()
    print(d.typed_search_attributes)
    hist = await h.fetch_history()
    for ev in hist.events:
        print(ev.event_id, ev.event_type, ev.event_time.ToDatetime())
    t0 = await time_env.get_current_time()
    await time_env.sleep(timedelta(days=30))
    print("after sleep", await time_env.get_current_time() - t0)
    s = await h.query(TalentJourneyWorkflow.status)
    print(s.state, [ (m.key, m.status) for m in s.milestones][:5], s.escalations)
    rows = await pool.fetch("select stream_version, event_type from events where stream_id=$1 order by stream_version", f"journey-{unique}")
    print([tuple(r) for r in rows])
