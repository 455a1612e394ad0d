"""The dev tokens file: one token per role, the same across restarts, for the demo's people."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from api.auth import Role, TokenEntry, write_tokens_file
from cli.dev.demo import COORDINATOR_ID, TOKEN_LEADER, TOKEN_TALENT
from cli.dev.host import DevError
from domain.programme import Cohort
from infra.settings import Settings

ROLES: tuple[Role, ...] = ("coordinator", "hr_system", "leader", "talent")
_TOKENS = TypeAdapter(list[TokenEntry])


def dev_tokens(path: Path, people: Mapping[Role, str | None], *, keep_people: bool) -> list[TokenEntry]:
    """The dev tokens file: one token per role, the same tokens across restarts, for `people`
    (or, with `keep_people`, for whom the file already names). Tokens added by hand are kept."""
    try:
        old = _TOKENS.validate_json(path.read_bytes()) if path.exists() else []
    except ValidationError as exc:
        raise DevError(f"{path} is not a tokens file ({exc.error_count()} errors): fix or delete it") from exc
    first: dict[Role, TokenEntry] = {}
    for entry in old:
        first.setdefault(entry.role, entry)
    entries = [
        TokenEntry(
            token=first[role].token if role in first else secrets.token_urlsafe(24),
            role=role,
            person_id=(first[role].person_id if keep_people and role in first else None) or people.get(role),
            # A stable id of its own (§8.2), kept if the file already gave it one.
            id=(first[role].id if role in first else None) or f"dev-{role.replace('_', '-')}",
        )
        for role in ROLES
    ]
    entries += [e for e in old if first[e.role] is not e]
    if entries != old:
        write_tokens_file(path, entries)
    return entries


def tokens_for(settings: Settings, data_dir: Path, cohort: Cohort | None) -> tuple[Path, list[TokenEntry]]:
    """TALENT_TOKENS_FILE as it is, else `<data_dir>/tokens.json` with one token per role, whose
    leader and talent tokens are the demo cohort's (without a demo: as before, or placeholders)."""
    if settings.tokens_file is not None:
        path = settings.tokens_file.resolve()
        try:
            return path, _TOKENS.validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            raise DevError(f"TALENT_TOKENS_FILE={settings.tokens_file} is not a readable tokens file") from exc
    scope = cohort.cohort_id if cohort is not None else "demo"
    people: dict[Role, str | None] = {
        "coordinator": COORDINATOR_ID,
        "hr_system": None,
        "leader": TOKEN_LEADER.person_id(scope),
        "talent": TOKEN_TALENT.person_id(scope),
    }
    path = data_dir / "tokens.json"
    return path, dev_tokens(path, people, keep_people=cohort is None)
