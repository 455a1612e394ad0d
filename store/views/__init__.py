"""The read model: every query of journey_status, journey_access, cohort_counts and the KPIs, as typed rows.

Entry points (API routes, dashboard pages, the CLI, the service) read through these functions;
the scope rule (§8.1) is `SCOPE`, here once. Rows are `domain.status.JourneyStatus` or small
frozen models; only the list page and the one-journey read stream PostgreSQL-built JSON, for speed.
"""

from store.views._base import MAY_ACT, PAGE, SCOPE, Pool, Reader
from store.views.cohorts import AtRiskJourney, CohortLine, CohortSummary, Deadline
from store.views.escalations import OpenLadder, RaisedRung, RungPage
from store.views.journeys import Access, FeedJourney, OpenJourney

__all__ = [
    "MAY_ACT",
    "PAGE",
    "SCOPE",
    "Access",
    "AtRiskJourney",
    "CohortLine",
    "CohortSummary",
    "Deadline",
    "FeedJourney",
    "OpenJourney",
    "OpenLadder",
    "Pool",
    "RaisedRung",
    "Reader",
    "RungPage",
]
