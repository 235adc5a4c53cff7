"""The ``liftos`` command line: the fit contract, reports, and precise errors on bad input."""

from __future__ import annotations

import json

import polars as pl
import pytest

from liftos_app.cli import main

FIT_ARGS = ["--date-column", "date_week", "--target", "y", "--channels", "x1,x2",
            "--controls", "event_1,event_2", "--draws", "200", "--tune", "300", "--chains", "2",
            "--no-progress"]


@pytest.mark.slow
def test_fit_writes_summary_artifacts_and_report(shared_data, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "validation.json").write_text('{"trust": {"score": 99}}')  # of an earlier fit
    code = main(["fit", str(shared_data / "mmm_example.csv"), *FIT_ARGS, "--out", str(out)])
    assert code == 0
    assert not (out / "validation.json").exists()  # it described another model
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["channels"]) == {"x1", "x2"}
    for key in ("roas_mean", "roas_hdi_low", "roas_hdi_high", "contribution_total_mean",
                "share_mean"):
        assert key in summary["channels"]["x1"]
    assert set(summary["diagnostics"]) >= {"rhat_max", "ess_bulk_min", "divergences"}
    assert summary["timing"]["total_s"] > 0
    for name in ("posterior.nc", "model.json", "panel.parquet", "report.md"):
        assert (out / name).exists(), name
    for plot in ("fit_vs_actual", "contributions", "roas", "response_curves"):
        assert (out / "plots" / f"{plot}.png").stat().st_size > 5_000
    report = (out / "report.md").read_text()
    assert "x1" in report and "r-hat" in report
    assert "summary.json" in capsys.readouterr().out


def test_fit_bad_column_exits_non_zero_with_suggestion(shared_data, tmp_path, capsys):
    args = [a if a != "x1,x2" else "x1,x3" for a in FIT_ARGS]
    code = main(["fit", str(shared_data / "mmm_example.csv"), *args, "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "mmm_example.csv" in err and "'x3'" in err and "did you mean 'x2'" in err
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize("change, message", [
    (("x1,x2", "x1,x2,x1"), "column 'x1' is listed twice"),
    (("x1,x2", "x1,y"), "'y' is the target; it cannot also be a channel"),
    (("event_1,event_2", "event_1,date_week"), ("'date_week' is the date column; it cannot "
                                              "also be a control")),
    (("event_1,event_2", "event_1,x2"), "column 'x2' is listed as a channel and a control"),
])
def test_fit_columns_play_one_role_each(shared_data, tmp_path, capsys, change, message):
    args = [change[1] if a == change[0] else a for a in FIT_ARGS]
    assert main(["fit", str(shared_data / "mmm_example.csv"), *args, "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_fit_checks_out_before_fitting(shared_data, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    assert main(["fit", str(shared_data / "mmm_example.csv"), *FIT_ARGS, "--out",
                 str(taken)]) == 2
    assert f"--out {taken}: exists and is not a folder" in capsys.readouterr().err


def test_fit_unknown_template_is_a_clear_error(shared_data, tmp_path, capsys):
    code = main(["fit", str(shared_data / "mmm_example.csv"), *FIT_ARGS, "--template", "nope",
                 "--out", str(tmp_path)])
    assert code == 2 and "unknown template 'nope'" in capsys.readouterr().err


def test_simulate_writes_data_and_truth(tmp_path):
    code = main(["simulate", "--template", "education", "--weeks", "60", "--seed", "4",
                 "--out", str(tmp_path)])
    assert code == 0
    truth = json.loads((tmp_path / "truth.json").read_text())
    data = pl.read_csv(tmp_path / "data.csv")
    assert data.columns[:2] == ["date", "enrollments"]
    for channel, entry in truth["channels"].items():
        # the truth describes the file written beside it: the spend it prices is that file's
        assert entry["spend_total"] == pytest.approx(data[channel].sum(), rel=1e-9)
        assert {"adstock", "saturation", "share_of_media", "share_of_outcome"} <= set(entry)
    assert sum(e["share_of_media"] for e in truth["channels"].values()) == pytest.approx(1.0)


def test_simulate_same_seed_is_reproducible(tmp_path):
    for folder in ("a", "b"):
        assert main(["simulate", "--weeks", "30", "--seed", "9", "--out", str(tmp_path / folder)]) == 0
    assert (tmp_path / "a" / "data.csv").read_text() == (tmp_path / "b" / "data.csv").read_text()


def test_every_command_and_option_has_help_text():
    import argparse

    from liftos_app.cli import parser

    missing = []

    def walk(p: argparse.ArgumentParser, path: str) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {choice.dest: choice.help for choice in action._choices_actions}
                for name, sub in action.choices.items():
                    if not helps.get(name):
                        missing.append(f"{path} {name}")
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(parser(), "liftos")
    assert missing == []
    assert parser().description.startswith("LiftOS: causal marketing intelligence")


def test_sampler_flags_come_from_the_options_model_and_bad_values_are_one_line(capsys):
    from liftos.model.options import ModelOptions
    from liftos_app.cli import main, parser

    flags = {a.dest for a in parser()._subparsers._group_actions[0].choices["run"]._actions}
    assert set(ModelOptions.model_fields) <= flags
    assert main(["run", "--tenant", "demo", "--draws", "0"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --draws: input should be greater than or "
                                               "equal to 1, got 0")
