"""What the project serves and stores stays safe: the UI binds to 127.0.0.1, and credentials
have no place in the configuration (they come from the environment only)."""

import re
import subprocess
from pathlib import Path

from kws_assets.settings import KwsConfig

PROJECT = Path(__file__).resolve().parents[2]
SECRET_WORDS = re.compile(r"(secret|password|passwd|token|access_key|credential)", re.I)


def test_make_ui_binds_the_webserver_to_localhost():
    dry_run = subprocess.run(
        ["make", "-n", "ui"], cwd=PROJECT, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    commands = [line for line in dry_run.splitlines() if "dagster dev" in line]
    assert commands, dry_run
    for command in commands:
        assert re.search(r"(-h|--host)\s+127\.0\.0\.1\b", command), command
        assert "0.0.0.0" not in command


def test_dagster_webserver_default_host_is_localhost():
    from dagster_webserver.cli import DEFAULT_WEBSERVER_HOST

    assert DEFAULT_WEBSERVER_HOST == "127.0.0.1"


def _field_names(schema: dict) -> set[str]:
    names: set[str] = set()
    for model in [schema, *schema.get("$defs", {}).values()]:
        names |= set(model.get("properties", {}))
    return names


def test_no_configuration_field_can_hold_a_credential():
    names = _field_names(KwsConfig.model_json_schema())
    assert {"deployment", "s3_bucket", "s3_endpoint_url"} <= names
    assert [n for n in names if SECRET_WORDS.search(n)] == []
