"""The review page behind ``kws review``: the review queue in a browser, one decision per click.

A small Starlette app (Starlette and uvicorn already come with ``dagster-webserver``; nothing new
to install) served on 127.0.0.1 by default.  It lists the ``review_queue`` rows, each with an
audio player and a spectrogram, and three actions — keep, relabel, reject — with the keyboard
shortcuts labelling tools have (↑/↓ or j/k move, space plays, ``a`` keeps, ``x`` rejects,
``1``-``9`` relabel to the n-th label).  Every decision is one new object in the
``review_decisions`` table (:mod:`kws_assets.core.review.decisions`): two reviewers clicking at
the same moment write two objects, and ``validated_set`` honours the latest one per clip on its
next run.

A decision about a clip whose audio is gone from the clip store (the data moved on since the
queue was built) is refused with a message that says so, instead of being recorded against a
clip no table holds any more.

Routes: ``GET /`` the page; ``GET /clips/{id}.wav`` and ``/clips/{id}.png`` the audio and its
spectrogram; ``GET /decisions`` the table as JSON; ``POST /decisions`` one decision
(``{"clip_id", "action", "new_label"?, "reviewer"}``) -> 201, or 400 (bad decision), 404 (clip not
in the queue or its audio gone).
"""

from __future__ import annotations

import html
import io
import json
from collections.abc import Sequence

import numpy as np
import polars as pl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from kws_assets.core.audio.io import AudioReadError, read_audio
from kws_assets.core.review.decisions import (
    ACTIONS,
    Decision,
    DecisionError,
    read_decisions,
    record_decision,
)
from kws_assets.core.storage.object_store import ObjectNotFound, ObjectStore

SPECTROGRAM_FFT = 512
SPECTROGRAM_HOP = 160
SPECTROGRAM_FLOOR_DB = -80.0
NO_LONGER_EXISTS = "no longer exists"


def spectrogram_png(wav: bytes) -> bytes:
    """A log-magnitude spectrogram of a WAV as a PNG image (time left to right, low frequencies
    at the bottom): enough to see where the word is and whether it was cut."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    info = read_audio(io.BytesIO(wav))
    x = np.asarray(info.samples, np.float64)
    if x.size < SPECTROGRAM_FFT:
        x = np.pad(x, (0, SPECTROGRAM_FFT - x.size))
    frames = np.lib.stride_tricks.sliding_window_view(x, SPECTROGRAM_FFT)[::SPECTROGRAM_HOP]
    power = np.abs(np.fft.rfft(frames * np.hanning(SPECTROGRAM_FFT), axis=1)) ** 2
    db = 10 * np.log10(np.maximum(power, 1e-12))
    db = np.maximum(db, db.max() + SPECTROGRAM_FLOOR_DB)
    out = io.BytesIO()
    plt.imsave(out, db.T, cmap="magma", origin="lower", format="png")
    return out.getvalue()


class ReviewSession:
    """The queue being reviewed, the clip objects behind it and where decisions go."""

    def __init__(
        self, queue: pl.DataFrame, clips: ObjectStore, labels: Sequence[str], decisions: ObjectStore
    ) -> None:
        self.queue = queue
        self.rows = {r["clip_id"]: r for r in queue.iter_rows(named=True)}
        self.clips = clips
        self.labels = list(labels)
        self.decisions = decisions

    def audio(self, clip_id: str) -> bytes:
        """The clip's WAV bytes; :class:`ObjectNotFound` when the clip is not queued or its audio
        is gone."""
        row = self.rows.get(clip_id)
        if row is None:
            raise ObjectNotFound(clip_id, detail="not in the review queue")
        return self.clips.read_uri(row["uri"])

    def missing(self, clip_id: str) -> str | None:
        """Why a decision about ``clip_id`` cannot be recorded now (None: it can)."""
        row = self.rows.get(clip_id)
        if row is None:
            return f"clip {clip_id} {NO_LONGER_EXISTS}: it is not in this review queue"
        if not self.clips.exists(self.clips.key_for_uri(row["uri"])):
            return (
                f"clip {clip_id} {NO_LONGER_EXISTS}: its audio is gone from the clip store "
                "(the data changed since the queue was built; rebuild review_queue). "
                "Nothing was recorded."
            )
        return None

    def decide(self, payload: dict) -> Decision:
        """Record one decision from the page; DecisionError for a bad one, LookupError for a
        clip that no longer exists."""
        clip_id = str(payload.get("clip_id", ""))
        why = self.missing(clip_id)
        if why is not None:
            raise LookupError(why)
        row = self.rows[clip_id]
        new_label = payload.get("new_label") or None
        if new_label is not None and new_label not in self.labels:
            raise DecisionError(f"unknown label {new_label!r} (one of {', '.join(self.labels)})")
        decision = Decision.make(
            clip_id=clip_id,
            data_version=row["data_version"],
            action=str(payload.get("action", "")),
            old_label=row["label"],
            new_label=new_label,
            reason=row["reason"],
            reviewer=str(payload.get("reviewer", "")),
        )
        record_decision(self.decisions, decision)
        return decision


def create_app(session: ReviewSession, reviewer: str = "") -> Starlette:
    """The review page over ``session`` (``reviewer``: the name the page starts with)."""

    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(render_page(session, reviewer))

    async def clip_audio(request: Request) -> Response:
        try:
            return Response(session.audio(request.path_params["clip_id"]), media_type="audio/wav")
        except ObjectNotFound:
            return Response(status_code=404)

    async def clip_spectrogram(request: Request) -> Response:
        try:
            png = spectrogram_png(session.audio(request.path_params["clip_id"]))
        except (ObjectNotFound, AudioReadError):
            return Response(status_code=404)
        return Response(png, media_type="image/png")

    async def list_decisions(request: Request) -> JSONResponse:
        table = read_decisions(session.decisions)
        return JSONResponse(table.drop("key").to_dicts())

    async def post_decision(request: Request) -> JSONResponse:
        try:
            payload = await request.json()
        except json.JSONDecodeError:
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        if not isinstance(payload, dict):
            return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
        try:
            decision = session.decide(payload)
        except LookupError as err:
            return JSONResponse({"error": str(err.args[0])}, status_code=404)
        except DecisionError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        return JSONResponse(
            {"clip_id": decision.clip_id, "action": decision.action, "label": decision.new_label},
            status_code=201,
        )

    return Starlette(
        routes=[
            Route("/", page),
            Route("/clips/{clip_id}.wav", clip_audio),
            Route("/clips/{clip_id}.png", clip_spectrogram),
            Route("/decisions", list_decisions, methods=["GET"]),
            Route("/decisions", post_decision, methods=["POST"]),
        ]
    )


def _row_html(row: dict, labels: Sequence[str]) -> str:
    cid = html.escape(row["clip_id"])
    options = "".join(
        f'<option value="{html.escape(label)}"{" selected" if label == row["label"] else ""}>'
        f"{i + 1}: {html.escape(label)}</option>"
        for i, label in enumerate(labels)
    )
    return (
        f'<tr class="clip" data-clip="{cid}" tabindex="0">'
        f"<td>{row['rank']}</td>"
        f'<td><code>{cid}</code><br><span class="label">{html.escape(row["label"])}</span>'
        f" · {html.escape(row['source'] or '')}"
        f'<br><small class="origin">{html.escape(row.get("origin") or "")}</small></td>'
        f"<td>{html.escape(row['reason'])}<br>{row['score']:.2f}<br>"
        f"<small>{html.escape(row['detail'] or '')}</small></td>"
        f'<td><audio controls preload="none" src="clips/{cid}.wav"></audio><br>'
        f'<img alt="spectrogram of {cid}" loading="lazy" src="clips/{cid}.png"></td>'
        f'<td><button data-action="keep">keep (a)</button> '
        f'<select aria-label="new label">{options}</select>'
        f'<button data-action="relabel">relabel</button> '
        f'<button data-action="reject">reject (x)</button>'
        f'<div class="status" role="status"></div></td></tr>'
    )


PAGE_SCRIPT = """
const rows = [...document.querySelectorAll('tr.clip')];
const labels = JSON.parse(document.body.dataset.labels);
let current = 0;
const reviewer = document.getElementById('reviewer');
reviewer.value = localStorage.getItem('kws-reviewer') || reviewer.value;
reviewer.addEventListener('change', () => localStorage.setItem('kws-reviewer', reviewer.value));
function select(i) {
  if (!rows.length) return;
  current = Math.max(0, Math.min(rows.length - 1, i));
  rows.forEach((r, j) => r.classList.toggle('current', j === current));
  rows[current].scrollIntoView({block: 'nearest'});
}
async function refreshDecisions() {
  const table = await (await fetch('decisions')).json();
  const body = document.querySelector('#decisions tbody');
  body.innerHTML = '';
  for (const d of table) {
    const tr = document.createElement('tr');
    for (const v of [d.clip_id, d.action, d.old_label, d.new_label ?? '(rejected)',
                     d.reviewer, d.time]) {
      const td = document.createElement('td'); td.textContent = v; tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}
async function decide(row, action, label) {
  const status = row.querySelector('.status');
  const body = {clip_id: row.dataset.clip, action, reviewer: reviewer.value};
  if (action === 'relabel') body.new_label = label ?? row.querySelector('select').value;
  const res = await fetch('decisions', {method: 'POST', body: JSON.stringify(body),
                                        headers: {'Content-Type': 'application/json'}});
  const out = await res.json();
  status.textContent = res.ok ? `${out.action}: ${out.label ?? 'rejected'}` : out.error;
  status.className = 'status ' + (res.ok ? 'ok' : 'error');
  if (res.ok) { row.classList.add('done'); select(rows.indexOf(row) + 1); }
  await refreshDecisions();
}
rows.forEach((row, i) => {
  row.addEventListener('click', () => select(i));
  row.querySelectorAll('button').forEach(b =>
    b.addEventListener('click', e => { e.stopPropagation(); select(i);
                                      decide(row, b.dataset.action); }));
});
document.addEventListener('keydown', e => {
  if (e.target.tagName === 'INPUT' || e.target.tagName === 'SELECT' || !rows.length) return;
  const row = rows[current];
  if (e.key === 'ArrowDown' || e.key === 'j') select(current + 1);
  else if (e.key === 'ArrowUp' || e.key === 'k') select(current - 1);
  else if (e.key === ' ') { const a = row.querySelector('audio'); a.paused ? a.play() : a.pause(); }
  else if (e.key === 'a') decide(row, 'keep');
  else if (e.key === 'x') decide(row, 'reject');
  else if (/^[1-9]$/.test(e.key) && Number(e.key) <= labels.length)
    decide(row, 'relabel', labels[Number(e.key) - 1]);
  else return;
  e.preventDefault();
});
select(0);
refreshDecisions();
"""

PAGE_STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; } td, th { border-bottom: 1px solid #ddd; padding: 4px; }
tr.current { outline: 2px solid #36c; } tr.done { opacity: 0.55; }
img { height: 64px; width: 200px; } .error { color: #b00; font-weight: bold; } .ok { color: #070; }
"""


def render_page(session: ReviewSession, reviewer: str = "") -> str:
    """The whole page: the queue, the shortcuts and the decisions recorded so far."""
    labels = session.labels
    rows = "".join(_row_html(r, labels) for r in session.queue.iter_rows(named=True))
    version = session.queue["data_version"].first() if session.queue.height else "-"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kws review</title>
<style>{PAGE_STYLE}</style></head>
<body data-labels="{html.escape(json.dumps(labels))}">
<h1>Review queue</h1>
<p>{session.queue.height} clip(s), data version <code>{html.escape(str(version))}</code>.
Reviewer: <input id="reviewer" value="{html.escape(reviewer)}" aria-label="reviewer">
Shortcuts: ↑/↓ or j/k move, space plays, <kbd>a</kbd> keep, <kbd>x</kbd> reject,
<kbd>1</kbd>-<kbd>{min(len(labels), 9)}</kbd> relabel ({", ".join(ACTIONS)}).</p>
<table id="queue"><thead><tr><th>#</th><th>clip</th><th>why</th><th>listen</th>
<th>decide</th></tr></thead><tbody>{rows}</tbody></table>
<h2>Decisions</h2>
<table id="decisions"><thead><tr><th>clip</th><th>action</th><th>old label</th>
<th>new label</th><th>reviewer</th><th>time</th></tr></thead><tbody></tbody></table>
<script>{PAGE_SCRIPT}</script>
</body></html>"""


def load_session(config_file: str | None = None) -> tuple[ReviewSession, str, int]:
    """The session ``kws review`` serves: the materialized ``review_queue`` of the config's
    deployment (local folder or S3) and its clip store, which also holds the decisions table;
    plus the configured host and port."""
    from kws_assets.definitions import build_definitions
    from kws_assets.lib.resources import settings_resource, storage_resources

    defs = build_definitions(config_file)
    cfg = settings_resource(defs).config
    queue = defs.load_asset_value("review_queue")
    if isinstance(queue, pl.LazyFrame):
        queue = queue.collect()
    if not isinstance(queue, pl.DataFrame):
        raise TypeError(f"review_queue loaded as {type(queue).__name__}, not a table")
    clips = storage_resources(cfg)["clip_store"].open_objects()
    return ReviewSession(queue, clips, cfg.labels, clips), cfg.review.host, cfg.review.port


def serve(session: ReviewSession, host: str, port: int, reviewer: str = "") -> None:
    """Serve the page until interrupted (uvicorn, one process)."""
    import uvicorn

    uvicorn.run(create_app(session, reviewer), host=host, port=port, log_level="warning")
