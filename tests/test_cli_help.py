"""`--help` at 80 columns: choices shown as choices, nothing cut, every option described;
`video3d run` prints the result folder (and only that) on stdout."""
from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from video3d.cli import app, main

COMMANDS = ["run", "batch", "lift", "train", "eval", "bench"]


def help_text(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "80", "TERM": "dumb"}, prog_name="video3d")
    assert result.exit_code == 0, result.output
    return result.output


def click_command(name: str):
    return typer.main.get_command(app).commands[name]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_fits_80_columns_without_cutting(command):
    text = help_text(command)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text  # rich's ellipsis: something was cut
    assert "list[" not in text  # repeatable options show a plain metavar


@pytest.mark.parametrize("command, choices", [
    ("run", ["ktpformer|ampose", "blazepose|mmpose"]),
    ("batch", ["ktpformer|ampose", "blazepose|mmpose"]),
    ("lift", ["h36m|coco|blazepose", "ktpformer|ampose"]),
    ("train", ["ktpformer|ampose", "paper, small, cpu, tiny (ktpformer); paper, small (ampose)"]),
    ("eval", ["gt|noisy|both"]),
])
def test_choices_are_shown_as_choices(command, choices):
    text = help_text(command)
    flat = " ".join(text.replace("│", " ").split())
    for choice in choices:
        assert choice in flat, (command, choice)
    if command in ("run", "batch"):
        # long choice lists are spelled out in the help text (wrapped at words, not cut)
        assert "none, oneeuro, savgol, butterworth" in " ".join(text.split()).replace("│ ", "")


@pytest.mark.parametrize("command", ["run", "batch", "lift", "eval", "train"])
def test_every_option_is_described(command):
    missing = [p.name for p in click_command(command).params if not (getattr(p, "help", None) or "").strip()]
    assert missing == [], f"{command}: options without help text: {missing}"


def test_run_and_batch_share_their_option_declarations():
    run, batch = click_command("run"), click_command("batch")
    shared = {p.name for p in run.params} & {p.name for p in batch.params}
    assert {"lifter", "weights", "detector", "person", "smooth_2d", "export", "mmpose_preset"} <= shared
    run_p, batch_p = {p.name: p for p in run.params}, {p.name: p for p in batch.params}
    for name in shared - {"video", "input_dir", "out"}:
        assert (run_p[name].help, run_p[name].default, run_p[name].opts) == \
               (batch_p[name].help, batch_p[name].default, batch_p[name].opts), name


def test_lifter_precedence_is_documented_in_help():
    text = " ".join(help_text("run").replace("│", " ").split())
    from video3d.models.registry import DEFAULT_LIFTER

    assert f"Default: the one in the --weights card, else {DEFAULT_LIFTER}" in text
    assert "the two must agree" in text


@pytest.mark.slow
def test_run_prints_the_result_folder_on_stdout_only(tmp_path, capsys, tiny_weights):
    from tests.videos import person_clip

    clip, _ = person_clip(tmp_path / "walker.mp4", frames=12, fps=25.0)
    code = main(["run", str(clip), "--out", str(tmp_path / "o"), "--weights", str(tiny_weights["ktpformer"]),
                 "--no-render"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out == f"{tmp_path / 'o' / 'walker'}\n"
    assert (tmp_path / "o" / "walker" / "keypoints.npz").is_file()
    for status in ("load lifter", "detect 2D", "lift 3D"):  # status lines on stderr
        assert status in err, status
