"""The progress logger: a step's start, its messages at most one per interval (the last one held
back shown when the step ends), its wall time or FAILED; off unless the run config turns it on."""

import re

import dagster as dg
import pytest

from kws_assets.lib.progress import RUN_LOGGERS


@dg.asset
def counted(context: dg.AssetExecutionContext) -> int:
    for epoch in range(1, 4):
        context.log.info(f"epoch {epoch}/3: val acc 0.{epoch}")
    context.log.debug("not for a person")
    return 3


@dg.asset
def broken(context: dg.AssetExecutionContext, counted: int) -> int:
    context.log.info("about to fail")
    raise ValueError("no")


def _run(enabled: bool, interval_s: float, *assets: dg.AssetsDefinition) -> None:
    job = dg.define_asset_job("progress_job", selection=[a.key for a in assets])
    defs = dg.Definitions(assets=list(assets), jobs=[job], loggers=RUN_LOGGERS)
    defs.resolve_job_def("progress_job").execute_in_process(
        run_config={
            "loggers": {
                "console": {"config": {"log_level": "CRITICAL"}},
                "progress": {"config": {"enabled": enabled, "interval_s": interval_s}},
            }
        },
        raise_on_error=False,
    )


def test_a_step_shows_its_start_first_and_last_message_and_time(
    capsys: pytest.CaptureFixture,
) -> None:
    _run(True, 1000.0, counted)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "    counted …"
    assert lines[1:3] == [
        "    counted: epoch 1/3: val acc 0.1",
        "    counted: epoch 3/3: val acc 0.3",
    ]
    assert re.fullmatch(r"    counted done in \d+\.\d s", lines[3])
    assert len(lines) == 4  # epoch 2 was within the interval; DEBUG is not shown


def test_every_message_shows_when_the_interval_is_zero(capsys: pytest.CaptureFixture) -> None:
    _run(True, 0.0, counted)
    out = capsys.readouterr().out
    assert [f"epoch {i}/3" in out for i in (1, 2, 3)] == [True, True, True]


def test_a_failed_step_says_failed(capsys: pytest.CaptureFixture) -> None:
    _run(True, 0.0, counted, broken)
    lines = capsys.readouterr().out.splitlines()
    assert "    broken: about to fail" in lines
    assert any(re.fullmatch(r"    broken FAILED in \d+\.\d s", line) for line in lines)


def test_off_by_default_prints_nothing(capsys: pytest.CaptureFixture) -> None:
    _run(False, 0.0, counted)
    captured = capsys.readouterr()
    assert "counted" not in captured.out and "counted" not in captured.err
