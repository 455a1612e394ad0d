"""The README's five-minute walkthrough, run as written against `talent dev`."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_talent_dev import ROOT, Dev, dev_database, free_port, start_dev, stop_and_check, wait_ready

__all__ = ["dev_database"]  # the fixture, used here

_BLOCK = re.compile(r"<!-- walkthrough -->\n```sh\n(?P<script>.*?)```", re.DOTALL)


def walkthrough() -> str:
    """The shell block after the README's walkthrough marker."""
    match = _BLOCK.search((ROOT / "README.md").read_text())
    assert match, "README.md has no walkthrough block"
    return match["script"]


def documents(text: str) -> list[dict[str, Any]]:
    """The JSON documents curl printed back to back (curl adds no newline)."""
    decoder, at = json.JSONDecoder(), 0
    found: list[dict[str, Any]] = []
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at == len(text):
            return found
        document, at = decoder.raw_decode(text, at)
        found.append(document)


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough's calls are curl calls")
async def test_the_readme_walkthrough_works_as_written(tmp_path: Path, dev_database: str) -> None:
    data_dir = tmp_path / "data"
    dev: Dev = start_dev(data_dir, dev_database, free_port(), "walkthrough")
    try:
        await wait_ready(dev)
        env = {**os.environ, "API": dev.url, "TALENT_DATA_DIR": str(data_dir)}
        script = "set -euo pipefail\n" + walkthrough()
        ran = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        # One JSON document per call: the cohort, the approval, status, events, lists, and the problem.
        outputs = documents(ran.stdout)
        cohort, approved, status, events, at_risk, escalations, counts, problem = outputs[:8]
        # A talent's and a leader's day: the reflection, the leader's list, the sign-off, the meeting.
        submitted, led, signed, met = outputs[8:]
        assert "TrackSubmitted" in submitted["events"], submitted
        assert submitted["journey_id"] in [j["journey_id"] for j in led["items"]]
        assert "TrackSignedOff" in signed["events"] and "MentorMeetingLogged" in met["events"], (signed, met)
        assert cohort["cohort_id"] == "tnl-2027-1"
        assert approved["state"] == "enrolled" and status["journey_id"] == approved["journey_id"]
        types = [e["event_type"] for e in events["items"]]
        assert types[:2] == ["TalentNominated", "NominationApproved"] and "TalentEnrolled" in types
        assert isinstance(at_risk["items"], list) and isinstance(escalations["items"], list)
        assert counts["cohort"]["cohort_id"] == "tnl-2027-1" and counts["counts"] == {"enrolled": 1}
        assert (problem["status"], problem["code"]) == (422, "invalid_request")
        # Run again: the cohort is the same one (200), the nomination replays, the approval changes nothing.
        again = await asyncio.to_thread(
            subprocess.run, ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        if dev.process.poll() is None:
            stop_and_check(dev)
