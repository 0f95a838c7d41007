"""The review page (``kws review``): decisions from many reviewers at once are all kept, a
decision about a clip whose audio is gone is refused with a message, and — in a real browser —
a person relabels one clip and rejects another, sees both in the decisions table, and the next
curation reflects both."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest
import uvicorn

from kws_assets.core.review.decisions import read_decisions
from kws_assets.core.review.queue import QUEUE_COLUMNS
from kws_assets.review_page import NO_LONGER_EXISTS, ReviewSession, create_app, spectrogram_png
from kws_assets_tests.clip_candidates import Candidates, burst_clip

LABELS = ["_silence_", "_unknown_", "yes", "no"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
UI_TIMEOUT_MS = 30_000


def queued(candidates: Candidates) -> pl.DataFrame:
    """A review queue over the candidates, as review_queue writes it."""
    rows = [
        {
            "rank": i + 1,
            "clip_id": r["clip_id"],
            "data_version": "v1",
            "uri": r["uri"],
            "label": r["label"],
            "source": r["source"],
            "speaker": r["speaker"],
            "in_set": "validated",
            "reason": "near_min_confidence",
            "score": 1.0 - i / 10,
            "detail": "confidence 0.5",
            "reasons": "near_min_confidence",
            "origin": f"tts|please say {r['label']} again|{r['label']}|en+f{i}",
        }
        for i, r in enumerate(candidates.rows)
    ]
    return pl.DataFrame(rows, schema=QUEUE_COLUMNS)


class Served:
    """The review app on a free local port, in a thread (uvicorn, as ``kws review`` runs it)."""

    def __init__(self, session: ReviewSession) -> None:
        config = uvicorn.Config(create_app(session, "ana"), host="127.0.0.1", port=0)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the review app did not start"
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/"

    def post(self, body: dict) -> tuple[int, dict]:
        request = urllib.request.Request(
            self.url + "decisions",
            json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def review(tmp_path: Path) -> Iterator[tuple[Candidates, ReviewSession, Served]]:
    candidates = Candidates(tmp_path)
    for i, label in enumerate(["yes", "yes", "no", "yes"]):
        candidates.add(f"clip{i}", burst_clip(i), label=label, confidence=0.52)
    objects = candidates.store.objects
    session = ReviewSession(queued(candidates), objects, LABELS, objects)
    served = Served(session)
    yield candidates, session, served
    served.stop()


def test_concurrent_reviewers_keep_every_decision_and_a_vanished_clip_is_refused(review):
    candidates, session, served = review
    bodies = [
        {"clip_id": f"clip{i % 3}", "action": "keep", "reviewer": f"reviewer{r}"}
        for r in range(6)
        for i in range(10)
    ]
    with ThreadPoolExecutor(6) as pool:
        statuses = [status for status, _ in pool.map(served.post, bodies)]
    assert statuses == [201] * len(bodies)
    table = read_decisions(session.decisions)
    assert table.height == len(bodies)
    assert table.group_by("reviewer").len()["len"].to_list() == [10] * 6

    Path(candidates.rows[3]["uri"]).unlink()
    status, body = served.post({"clip_id": "clip3", "action": "keep", "reviewer": "ana"})
    assert status == 404 and NO_LONGER_EXISTS in body["error"]
    assert served.post({"clip_id": "clip0", "action": "relabel", "reviewer": "ana"})[0] == 400
    assert served.post({"clip_id": "nope", "action": "keep", "reviewer": "ana"})[0] == 404
    assert read_decisions(session.decisions).height == len(bodies)


def test_spectrogram_is_a_png(review):
    _, session, _ = review
    assert spectrogram_png(session.audio("clip0"))[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian chromium is not installed")
def test_a_person_relabels_and_rejects_in_the_browser(review, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from kws_assets.core.dataset import curation
    from kws_assets.core.review.apply import REVIEW_REJECTED, apply_decisions
    from kws_assets_tests.clip_candidates import config

    candidates, session, served = review
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(served.url)
            rows = page.locator("tr.clip")
            expect(rows).to_have_count(4)
            # what each clip was made from, beside its label
            expect(rows.nth(2).locator(".origin")).to_have_text("tts|please say no again|no|en+f2")
            # the spectrogram of the first clip loaded
            page.wait_for_function(
                "document.querySelector('tr.clip img').naturalWidth > 0", timeout=UI_TIMEOUT_MS
            )
            # clip0 is current: "4" relabels it to the 4th label (no), then clip1 is current
            page.keyboard.press("4")
            expect(rows.nth(0).locator(".status")).to_have_text("relabel: no")
            page.keyboard.press("x")
            expect(rows.nth(1).locator(".status")).to_have_text("reject: rejected")
            decisions = page.locator("#decisions tbody tr")
            expect(decisions).to_have_count(2)
            expect(decisions.nth(0)).to_contain_text("clip0")
            expect(decisions.nth(1)).to_contain_text("clip1")
            # clip3's audio disappears (the data moved on); the click is refused on the page
            Path(candidates.rows[3]["uri"]).unlink()
            rows.nth(3).get_by_role("button", name="keep (a)").click()
            expect(rows.nth(3).locator(".status.error")).to_contain_text(
                f"clip clip3 {NO_LONGER_EXISTS}"
            )
            expect(decisions).to_have_count(2)
        finally:
            browser.close()

    candidates.rows.pop(3)
    applied = apply_decisions(candidates.table(), read_decisions(session.decisions))
    result = curation.curate(applied.candidates, config(), candidates.store.read)
    labels = dict(zip(result.validated["clip_id"], result.validated["label"], strict=True))
    assert labels == {"clip0": "no", "clip2": "no"}
    rejected = result.quarantined.filter(pl.col("clip_id") == "clip1").row(0, named=True)
    assert (rejected["reason"], rejected["review"]) == (REVIEW_REJECTED, "reject")
