"""Figures and comparisons of runs: `curves.png` after training, `adapt compare` with and without a plot."""

from __future__ import annotations

import json
import os
import sys

import pytest
from mmadapt.cli import main
from mmadapt.plots import _read_log, _training_steps, matplotlib_available
from mmadapt.testing import run_recipe, tiny_recipe
from PIL import Image

PROBE = {"adapter": {"name": "linear-probe"}, "protocol": {"name": "standard"},
         "train": {"epochs": 4, "optimizer": "adamw", "lr": 0.05, "log_every": 1}}
needs_matplotlib = pytest.mark.skipif(not matplotlib_available(), reason="matplotlib (mmadapt[plots]) is not installed")


@pytest.fixture(autouse=True)
def known_umask():
    """A umask under which plain files are 0644, unlike the 0600 of temporary files."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def assert_png(path, min_side=200):
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= min_side


@needs_matplotlib
def test_training_run_draws_its_curves_and_zero_shot_run_does_not(tiny_plugin, tmp_path):
    run_recipe(tiny_recipe(**PROBE), tmp_path / "probe")
    assert_png(tmp_path / "probe" / "run" / "curves.png")
    run_recipe(tiny_recipe(), tmp_path / "zeroshot")
    assert (tmp_path / "zeroshot" / "run" / "summary.json").is_file()
    assert not (tmp_path / "zeroshot" / "run" / "curves.png").exists()


def hide_matplotlib(monkeypatch):
    """Make every ``import matplotlib...`` raise ImportError, as if it were not installed."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)


def test_run_without_matplotlib_still_finishes(tiny_plugin, tmp_path, monkeypatch):
    hide_matplotlib(monkeypatch)
    summary = run_recipe(tiny_recipe(**PROBE), tmp_path)
    assert summary["steps"] > 0
    assert not (tmp_path / "run" / "curves.png").exists()


def test_a_figure_that_cannot_be_drawn_does_not_fail_the_run(tiny_plugin, tmp_path, monkeypatch, capsys):
    def broken(run_dir):
        raise OSError("No space left on device")

    monkeypatch.setattr("mmadapt.plots.write_training_curves", broken)
    summary = run_recipe(tiny_recipe(**PROBE), tmp_path)
    assert (tmp_path / "run" / "summary.json").is_file() and summary["steps"] > 0
    assert "curves.png not drawn: OSError: No space left on device" in capsys.readouterr().err


@pytest.fixture
def two_runs(tiny_plugin, tmp_path):
    seeds = run_recipe(tiny_recipe(), tmp_path / "zeroshot", seeds=[1, 2])
    probe = run_recipe(tiny_recipe(**PROBE), tmp_path / "probe")
    return (tmp_path / "zeroshot" / "run", seeds), (tmp_path / "probe" / "run", probe)


@needs_matplotlib
def test_compare_prints_one_row_per_run_with_std_for_seed_runs(two_runs, capsys, tmp_path):
    (seeds_dir, seeds), (probe_dir, probe) = two_runs
    capsys.readouterr()
    out_png = tmp_path / "figures" / "compare.png"
    assert main(["compare", str(seeds_dir), str(probe_dir), "--labels", "zero-shot, probe",
                 "--plot", str(out_png)]) == 0
    header, first, second, wrote = capsys.readouterr().out.strip().splitlines()
    assert header.split() == ["run", "test/accuracy"]
    mean, std = seeds["mean"]["test/accuracy"], seeds["std"]["test/accuracy"]
    assert first.split() == ["zero-shot", f"{mean:.2f}", "±", f"{std:.2f}"]
    assert second.split() == ["probe", f"{probe['metrics']['test/accuracy']:.2f}"]
    assert wrote == f"wrote {out_png}"
    assert_png(out_png)


def test_compare_reports_bad_input_clearly(two_runs, capsys, tmp_path):
    (seeds_dir, _), (probe_dir, _) = two_runs
    capsys.readouterr()
    assert main(["compare", str(seeds_dir), "--metrics", "test/acuracy"]) == 2
    assert "no run reports test/acuracy; the runs report: test/accuracy" in capsys.readouterr().err
    assert main(["compare", str(seeds_dir), str(probe_dir), "--labels", "only-one"]) == 2
    assert "1 label(s) for 2 run(s)" in capsys.readouterr().err
    assert main(["compare", str(tmp_path)]) == 2
    assert f"{tmp_path}: no summary.json" in capsys.readouterr().err


def test_compare_plot_without_matplotlib_names_the_fix(two_runs, capsys, tmp_path, monkeypatch):
    (seeds_dir, _), _ = two_runs
    hide_matplotlib(monkeypatch)
    capsys.readouterr()
    assert main(["compare", str(seeds_dir), "--plot", str(tmp_path / "x.png")]) == 2
    assert "pip install 'mmadapt[plots]'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_run_files_get_the_usual_permissions(two_runs):
    (seeds_dir, _), (probe_dir, _) = two_runs
    for path in (seeds_dir / "summary.json", seeds_dir / "seeds.json", probe_dir / "summary.json"):
        assert path.stat().st_mode & 0o777 == 0o644, path
    checkpoint = next((probe_dir / "checkpoints").iterdir())
    assert checkpoint.stat().st_mode & 0o777 == 0o755


def test_curves_of_a_resumed_run_keep_one_point_per_step(tmp_path):
    records = [{"stage": "train", "step": s, "loss": 1.0} for s in (10, 20, 30)]  # killed after step 30
    records += [{"stage": "train", "step": s, "loss": 0.5} for s in (20, 30, 40)]  # resumed from step 10
    lines = [json.dumps(r) for r in records]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"stage": "tr')  # cut short by a crash
    steps = _training_steps(_read_log(tmp_path))
    assert [(r["step"], r["loss"]) for r in steps] == [(10, 1.0), (20, 0.5), (30, 0.5), (40, 0.5)]


@needs_matplotlib
def test_compare_plot_format_follows_the_suffix(two_runs, tmp_path, capsys):
    (seeds_dir, _), _ = two_runs
    assert main(["compare", str(seeds_dir), "--plot", str(tmp_path / "cmp.pdf")]) == 0
    assert (tmp_path / "cmp.pdf").read_bytes().startswith(b"%PDF")
    assert main(["compare", str(seeds_dir), "--plot", str(tmp_path / "cmp.jpeg")]) == 2
    assert "choose a file name with one of these suffixes" in capsys.readouterr().err
    assert not (tmp_path / "cmp.jpeg").exists()
