"""A live ``dagster dev`` (webserver + daemon) for the GraphQL and browser tests.

``dagster_dev`` (session scope) starts ``dagster dev`` on 127.0.0.1 and a free port, with a
temporary ``DAGSTER_HOME`` (telemetry off, a run queue that dequeues every second) and
``KWS_CONFIG`` pointing at a copy of ``fixtures/live.yaml`` whose storage lives in the same
temporary folder.  It stops the whole process group (webserver, daemon, code server, runs) when
the session ends.  :class:`GraphQL` is a small client for the webserver's ``/graphql`` endpoint.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kws_assets_tests.conftest import FIXTURES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCALHOST = "127.0.0.1"
SERVER_START_TIMEOUT_S = 240.0
STOP_GRACE_S = 20.0
POLL_S = 1.0

INSTANCE_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    max_concurrent_runs: 3
    dequeue_interval_seconds: 1
"""

WORKSPACE_YAML = """\
load_from:
  - python_module:
      module_name: kws_assets.definitions
      working_directory: {root}
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


def wait_for(
    condition: Callable[[], Any],
    timeout_s: float,
    what: str,
    on_timeout: Callable[[], str] = lambda: "",
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}\n{on_timeout()}")
        time.sleep(POLL_S)


class GraphQLError(AssertionError):
    pass


@dataclass
class GraphQL:
    """POSTs queries to the webserver's GraphQL endpoint; errors raise with the server's message."""

    url: str
    location: str = ""
    repository: str = ""

    def __call__(self, query: str, **variables: Any) -> dict:
        response = httpx.post(self.url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        payload = response.json()
        if payload.get("errors"):
            raise GraphQLError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]

    @property
    def repository_selector(self) -> dict:
        return {"repositoryLocationName": self.location, "repositoryName": self.repository}


@dataclass
class DagsterDev:
    """A running ``dagster dev`` and where its files are."""

    url: str
    graphql: GraphQL
    home: Path
    config_file: Path
    log_file: Path
    process: subprocess.Popen

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_file.read_text(errors="replace") if self.log_file.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


LOCATIONS_QUERY = """
query {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { name repositories { name } }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""


def _loaded_location(graphql: GraphQL) -> tuple[str, str] | None:
    try:
        data = graphql(LOCATIONS_QUERY)
    except (httpx.HTTPError, GraphQLError):
        return None
    for entry in data["workspaceOrError"].get("locationEntries", []):
        location = entry["locationOrLoadError"]
        if location and location["__typename"] == "PythonError":
            pytest.fail(f"code location {entry['name']} failed to load: {location['message']}")
        if location and location["__typename"] == "RepositoryLocation":
            return location["name"], location["repositories"][0]["name"]
    return None


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the whole process group (webserver, daemon, code server, run workers), then KILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers of the group (run workers)
    process.wait(timeout=STOP_GRACE_S)


@pytest.fixture(scope="session")
def dagster_dev(tmp_path_factory) -> Iterator[DagsterDev]:
    root = tmp_path_factory.mktemp("dagster_dev")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    config_file = root / "kws.yaml"
    shutil.copy(FIXTURES / "live.yaml", config_file)
    workspace = root / "workspace.yaml"
    workspace.write_text(WORKSPACE_YAML.format(root=PROJECT_ROOT))
    port = free_port()
    url = f"http://{LOCALHOST}:{port}"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "KWS_CONFIG": str(config_file),
        "PYTHONWARNINGS": "ignore",
    }
    log_file = root / "dagster_dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [str(dagster), "dev", "-h", LOCALHOST, "-p", str(port), "-w", str(workspace)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # its own process group, stopped as a whole
    server = DagsterDev(url, GraphQL(f"{url}/graphql"), home, config_file, log_file, process)
    try:

        def loaded():
            if process.poll() is not None:
                pytest.fail(f"dagster dev exited with {process.returncode}:\n{server.log_tail()}")
            return _loaded_location(server.graphql)

        server.graphql.location, server.graphql.repository = wait_for(
            loaded, SERVER_START_TIMEOUT_S, "dagster dev to load the code location", server.log_tail
        )
        yield server
    finally:
        _stop(process)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser test last: after the GraphQL test it finds the data it needs already there
    (run alone, it makes that data itself)."""
    items.sort(
        key=lambda item: item.module.__name__.endswith("test_browser") if item.module else False
    )
