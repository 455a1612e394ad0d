"""`talent vault rotate-key | verify | replay-erasures`: the vault's keys and its erasure ledger (PRODUCT §8.7).

Rotation, online: set TALENT_VAULT_KEY to the new key and TALENT_VAULT_OLD_KEYS to the old one,
restart the API and workers (they read data keys under either, and write under the new one), then
run `talent vault rotate-key`. Offline (services stopped): `talent vault rotate-key --new-key-file F`
with the old key still in TALENT_VAULT_KEY, then start the services with the new key. Either way
the command re-wraps the instance id key and every data key in batches (resumable: run it again
after a crash), verifies that every one opens under the new key, binds the database to the new key
and retires the old one. The id key's value is kept, so journey ids, signed answer links and the
erasure ledger's entries stay valid across rotations.
"""

from __future__ import annotations

import argparse
import base64
import binascii
from pathlib import Path
from typing import Any

from cli.ops import Refused
from infra.postgres import open_pool, vault_for
from infra.settings import Settings
from store.vault import ErasureLedger, LedgerError, PeopleVault, VaultError, VerifyReport


def add_parser(sub: Any) -> None:
    """The `talent vault` subcommands."""
    vault = sub.add_parser("vault", help="the people vault's keys and its erasure ledger")
    actions = vault.add_subparsers(dest="action", required=True)
    rotate = actions.add_parser(
        "rotate-key",
        help="re-wrap the id key and every data key under a new key-encryption key, verify, retire the old key",
    )
    rotate.add_argument(
        "--new-key-file",
        type=Path,
        metavar="FILE",
        help="base64 of the new 32-byte key; unset: TALENT_VAULT_KEY is the new key (the old in TALENT_VAULT_OLD_KEYS)",
    )
    rotate.add_argument("--batch-size", type=int, default=500, help="data keys per transaction (default 500)")
    rotate.add_argument(
        "--max-batches", type=int, help="stop after this many batches (run again to continue); unset: all"
    )
    actions.add_parser(
        "verify",
        help="check that the id key and every data key open under the key their row names, none under an old key",
    )
    replay = actions.add_parser(
        "replay-erasures", help="after a restore: shred again everyone the erasure ledger lists (idempotent)"
    )
    replay.add_argument("--ledger", type=Path, metavar="FILE", help="the ledger (default TALENT_ERASURE_LEDGER)")


async def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `talent vault <action>`."""
    try:
        match args.action:
            case "rotate-key":
                return await rotate_key(
                    settings, args.new_key_file, batch_size=args.batch_size, max_batches=args.max_batches
                )
            case "verify":
                return await verify(settings)
            case "replay-erasures":
                return await replay_erasures(settings, args.ledger)
    except (VaultError, LedgerError) as exc:
        raise Refused(str(exc)) from exc
    raise Refused(f"unknown vault action {args.action}")


def read_key_file(path: Path) -> bytes:
    """The key in `path`: base64 of 32 bytes. Errors never quote the file's content."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError as exc:
        raise Refused(f"{path}: no such file") from exc
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise Refused(f"{path}: must hold base64 of exactly 32 bytes")
    return key


async def rotate_key(settings: Settings, new_key_file: Path | None, *, batch_size: int, max_batches: int | None) -> int:
    """Re-wrap every data key under the new KEK, verify, then bind the database to it and retire the old."""
    if batch_size < 1 or (max_batches is not None and max_batches < 1):
        raise Refused("--batch-size and --max-batches must be at least 1")
    current = settings.master_key()
    target = read_key_file(new_key_file) if new_key_file is not None else current
    readable = [key for key in (current, *settings.old_vault_keys()) if key != target]
    pool = await open_pool(settings)  # refuses a database this start's keys do not belong to
    try:
        vault = PeopleVault(pool, target, old_keys=readable)
        report = await vault.rewrap(batch_size=batch_size, max_batches=max_batches)
        print(f"re-wrapped {report.rewrapped} data keys in {report.batches} batches under the key {vault.kek_id}")
        if report.remaining:
            print(f"{report.remaining} data keys are still under another key: run `talent vault rotate-key` again")
            return 1
        checked = await vault.verify()
        if checked.unopenable or checked.remaining or not checked.id_key_opens or checked.id_key_kek != vault.kek_id:
            _print_verify(checked)
            raise Refused("verification failed: the old key is not retired")
        retired = await vault.retire_old_keys()
    finally:
        await pool.close()
    print(f"verified {checked.keys} data keys; the database is bound to the key {vault.kek_id}")
    print(f"retired: {', '.join(retired) if retired else 'none'}")
    if target != current:
        print("start the services with TALENT_VAULT_KEY set to the new key; the old key is refused from now on")
    elif settings.old_vault_keys():
        print("TALENT_VAULT_OLD_KEYS is no longer needed: remove it")
    return 0


async def verify(settings: Settings) -> int:
    """Every data key opens under the KEK its row names, all under the current one: exit 0, else 1."""
    pool = await open_pool(settings)
    try:
        report = await vault_for(pool, settings).verify()
    finally:
        await pool.close()
    _print_verify(report)
    return 0 if report.ok else 1


def _print_verify(report: VerifyReport) -> None:
    print(f"current key {report.current}; database bound to {report.bound}")
    if report.id_key_kek is None:
        print("the instance id key is missing")
    else:
        opens = "opens" if report.id_key_opens else "does NOT open"
        print(f"the instance id key is under {report.id_key_kek} and {opens}")
    print(f"{report.keys} data keys: " + (", ".join(f"{n} under {k}" for k, n in sorted(report.by_kek.items())) or "-"))
    if report.unopenable:
        shown = ", ".join(report.unopenable[:20]) + (" ..." if len(report.unopenable) > 20 else "")
        print(f"{len(report.unopenable)} do not open under the key their row names: {shown}")
    if report.remaining:
        print(f"{report.remaining} are under another key than the current one (a rotation is not finished)")
    if report.under_retired:
        print(f"{report.under_retired} are under a retired key")
    print("ok" if report.ok else "NOT ok")


async def replay_erasures(settings: Settings, ledger_path: Path | None) -> int:
    """Shred everyone the erasure ledger lists who is still readable; print the counts."""
    ledger = ErasureLedger(ledger_path or settings.erasure_ledger_path())
    pool = await open_pool(settings)
    try:
        report = await vault_for(pool, settings).replay_erasures(ledger)
    finally:
        await pool.close()
    print(
        f"{report.entries} erasures in {ledger.path}: {report.shredded} shredded now, "
        f"{report.already_erased} already erased, {report.not_here} not in this database"
    )
    if report.unheld_keys:
        print(
            f"some entries were keyed under keys this start does not hold ({', '.join(report.unheld_keys)}): "
            "give them in TALENT_VAULT_OLD_KEYS and replay again"
        )
    if report.other_id_keys:
        print(
            f"some entries were keyed by another instance's id key ({', '.join(report.other_id_keys)}): "
            "that ledger is not this database's"
        )
    return 1 if report.unheld_keys or report.other_id_keys else 0
