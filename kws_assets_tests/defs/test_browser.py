"""A user in a browser: open the asset graph of a live ``dagster dev``, select ``validated_set``,
click "Materialize selected" (and confirm its multi-asset twin), and wait until the graph shows
the new materialization and the run page shows success, then the asset's page, where a
metadata table (clips per label and split) renders as a table.  Screenshots land in
``test-artifacts/`` (kept by CI as test artifacts).

Playwright drives Debian's Chromium (``.ci/system-deps`` installs it; ``playwright install``
cannot download browsers here).  Shares the session's ``dagster dev`` with the GraphQL test and
runs after it; run alone, it first materializes the upstream partitions itself.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from pathlib import Path

import pytest

from kws_assets.defs.jobs import INGEST_JOB, KEYWORD_JOB
from kws_assets.lib.partitions import CORPUS_BATCHES, KEYWORDS
from kws_assets_tests.defs.conftest import PROJECT_ROOT, DagsterDev, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
VIEWPORT = {"width": 1600, "height": 1000}
UI_TIMEOUT_MS = 60_000
RUN_TIMEOUT_S = 300.0
ASSET = "validated_set"
TABLE_ENTRY = "per_label_and_split"  # a MetadataValue.table entry of validated_set

MATERIALIZED = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    ... on AssetNode { partitionKeys assetPartitionStatuses {
      ... on DefaultPartitionStatuses { materializedPartitions } } }
  }
}
"""
ADD_PARTITION = """
mutation ($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) {
    __typename
  }
}
"""
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename ... on LaunchRunSuccess { run { runId } } }
}
"""
RUN_STATUS = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }
"""
RECENT_RUNS = """
query {
  runsOrError(limit: 20) { ... on Runs { results { runId status assetSelection { path } } } }
}
"""


def _materialized(server: DagsterDev, asset: str) -> set[str]:
    node = server.graphql(MATERIALIZED, key={"path": [asset]})["assetNodeOrError"]
    return set(node["assetPartitionStatuses"]["materializedPartitions"])


def _run_and_wait(server: DagsterDev, job: str, partition: str) -> None:
    params = {
        "selector": {**server.graphql.repository_selector, "jobName": job},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    run_id = server.graphql(LAUNCH_RUN, params=params)["launchRun"]["run"]["runId"]

    def finished() -> str | None:
        status = server.graphql(RUN_STATUS, runId=run_id)["runOrError"]["status"]
        return status if status in {"SUCCESS", "FAILURE", "CANCELED"} else None

    status = wait_for(finished, RUN_TIMEOUT_S, f"{job} [{partition}]", server.log_tail)
    assert status == "SUCCESS", server.log_tail()


def _ensure_upstream(server: DagsterDev) -> None:
    """Everything validated_set reads: the demo batch and every keyword partition."""
    selector = server.graphql.repository_selector
    keywords = ["yes", "no", "up"]
    for name, keys in ((KEYWORDS.name, keywords), (CORPUS_BATCHES.name, ["source-demo"])):
        for key in keys:
            server.graphql(ADD_PARTITION, selector=selector, name=name, key=key)
    if "source-demo" not in _materialized(server, "raw_corpus"):
        _run_and_wait(server, INGEST_JOB, "source-demo")
    for keyword in sorted(set(keywords) - _materialized(server, "synthetic_clips")):
        _run_and_wait(server, KEYWORD_JOB, keyword)


def _asset_runs(server: DagsterDev) -> dict[str, str]:
    runs = server.graphql(RECENT_RUNS)["runsOrError"]["results"]
    return {
        r["runId"]: r["status"]
        for r in runs
        if [ASSET] in [a["path"] for a in (r["assetSelection"] or [])]
    }


def _skip_community_dialog(page) -> None:
    """The first visit shows a newsletter dialog over the page; dismiss it if it comes."""
    with contextlib.suppress(Exception):
        page.get_by_role("button", name="Skip").click(timeout=10_000)


def test_materialize_from_the_asset_graph(dagster_dev):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (see .ci/system-deps)")
    from playwright.sync_api import sync_playwright

    _ensure_upstream(dagster_dev)
    before = set(_asset_runs(dagster_dev))
    ARTIFACTS.mkdir(exist_ok=True)
    group_url = f"{dagster_dev.url}/locations/{dagster_dev.graphql.location}/asset-groups/curate"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(group_url, wait_until="networkidle")
            _skip_community_dialog(page)

            title = page.get_by_text(ASSET, exact=True).first
            node = title.locator("xpath=ancestor::div[.//text()[contains(., 'Latest event')]][1]")
            title.click()
            page.get_by_role("button", name="Materialize selected").click()
            # validated_set and quarantined_clips are one multi-asset: the UI asks to confirm both
            page.get_by_role("button", name="Confirm").click()
            clicked_at = time.monotonic()

            (run_id,) = wait_for(
                lambda: set(_asset_runs(dagster_dev)) - before,
                60,
                "the run launched by the click",
                dagster_dev.log_tail,
            )
            # The graph node shows this run's materialization: status "Materialized", linked to it.
            run_link = node.locator(f"a[href*='/runs/{run_id}']")
            wait_for(
                lambda: run_link.count() > 0 and "Materialized" in node.inner_text(),
                RUN_TIMEOUT_S,
                f"the graph to show run {run_id} materialized {ASSET}",
                dagster_dev.log_tail,
            )
            page.screenshot(path=str(ARTIFACTS / "browser_asset_graph_materialized.png"))
            assert _asset_runs(dagster_dev)[run_id] == "SUCCESS"

            # The run the node links to: its page says so too, down to the run's last event.
            page.goto(f"{dagster_dev.url}/runs/{run_id}")
            page.get_by_text("Success", exact=True).first.wait_for(state="visible")
            page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for(state="visible")
            page.screenshot(path=str(ARTIFACTS / "browser_run_success.png"))

            # The asset's events page: the latest materialization's metadata, where
            # per_label_and_split is a native table (column headers and counts as cells).
            page.goto(f"{dagster_dev.url}/assets/{ASSET}?view=events")
            entry = page.get_by_text(TABLE_ENTRY, exact=True).first
            entry.wait_for(state="visible")
            row = page.locator("tr", has=page.locator("td", has_text=TABLE_ENTRY)).first
            table = row.locator("table").first
            table.wait_for(state="visible")
            headers = [h.strip() for h in table.locator("th").all_inner_texts()]
            assert headers[0] == "label" and {"train", "val", "test"} <= set(headers), headers
            silence = table.locator("tr", has=page.get_by_text("_silence_", exact=True)).first
            counts = [c.strip() for c in silence.locator("td").all_inner_texts()][1:]
            assert counts and all(c.isdigit() for c in counts) and sum(map(int, counts)) > 0
            table.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_metadata_table.png"))
            print(
                f"materialized {ASSET} from the browser in {time.monotonic() - clicked_at:.0f} s "
                f"(run {run_id}); screenshots in {ARTIFACTS}"
            )
        finally:
            browser.close()
    shutil.copy(dagster_dev.log_file, ARTIFACTS / "dagster_dev.log")
