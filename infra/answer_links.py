"""One-click answer links (issue 14): the follow-up e-mail links the talent to a small page where
they answer "did you apply, were you appointed" without signing in.

The link is a capability: it names the journey and the follow-up point, expires, and carries a
signature that is the people vault's keyed id of those (`PeopleVault.keyed_id`, an HMAC under a
key derived from this instance's master key): the same mechanism that derives journey ids, no
other key and no crypto of its own. Only the service can make one; a changed part breaks it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

#: The page's path (api/dashboard/purpose.py serves it).
ANSWER_PAGE = "/dashboard/answer/{journey_id}"
#: How long after the answer's due date a link still works: a late answer beats no answer.
GRACE = timedelta(days=60)

KeyedId = Callable[..., str]


def signature(keyed_id: KeyedId, journey_id: str, point: int, expires: int) -> str:
    """The link's signature: the vault's keyed id of its parts."""
    return keyed_id("follow-up-answer/v1", journey_id, str(point), str(expires))


def answer_path(keyed_id: KeyedId, journey_id: str, point: int, respond_by: datetime) -> str:
    """The signed path of a follow-up's answer page; it expires `GRACE` after `respond_by`."""
    expires = int((respond_by + GRACE).timestamp())
    query = urlencode({"point": point, "expires": expires, "sig": signature(keyed_id, journey_id, point, expires)})
    return ANSWER_PAGE.format(journey_id=quote(journey_id, safe="")) + "?" + query


def valid(
    keyed_id: KeyedId, journey_id: str, point: int, expires: int, sig: str, *, now: datetime | None = None
) -> bool:
    """Whether a link's parts carry their signature and it has not expired."""
    moment = now or datetime.now(UTC)
    if expires < moment.timestamp():
        return False
    return hmac.compare_digest(signature(keyed_id, journey_id, point, expires).encode(), sig.encode())
