"""The ShapesWorld experiment of docs/methods/atlas.md: vectors, few-shot grid, test-time adaptation, one table.

Run from the repository root (one torch thread; every step is skipped when its summary exists, so an
interrupted grid continues where it stopped)::

    OMP_NUM_THREADS=1 python plugins/atlas/shapes_grid.py            # everything, then the table
    python plugins/atlas/shapes_grid.py --table                      # the table of what has finished

1. ``finetune`` runs (atlas-shapes-finetune) on five ShapesWorld tasks, and their vectors
   (``adapt atlas vectors``) in runs/atlas-vectors/.
2. The held-out task ``shape-upside-down`` at 1, 4 and 16 shots over seeds 1, 2, 3: aTLAS, isotropic
   scaling, linear probe and CoOp; zero-shot is aTLAS before training (zero coefficients: the
   pre-trained model, exactly).
3. Test-time adaptation on its test split, seeds 1, 2, 3.
4. A control (``--control``): the held-out task's own vector added to the bank (``allow_own_task``),
   1 and 16 shots and test-time adaptation: what the composition reaches when the bank holds what the
   task needs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

VECTOR_TASKS = ("shape", "shape-low-light", "shape-negative", "colour-shape", "lighting")
SHOTS = (1, 4, 16)
SEEDS = "1,2,3"
RUNS = Path("runs")
#: method -> (recipe, overrides); every one evaluates 600 test images of shape-upside-down.
METHODS = {
    "aTLAS": ("atlas-shapes-fewshot", []),
    "isotropic": ("atlas-shapes-isotropic", []),
    "linear probe": ("shapes-linear-probe", ["data.test_size=600"]),
    "CoOp": ("prompts-shapes-coop",
             ["data.test_size=600", "protocol.name=standard", "train.epochs=50"]),
}


def adapt(*args: str) -> None:
    """Run ``adapt`` with these arguments; stop the grid when it fails."""
    print("+ adapt", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "mmadapt", *args], check=True)


def finished(folder: Path) -> bool:
    return (folder / "summary.json").is_file()


def make_vectors() -> None:
    for task in VECTOR_TASKS:
        folder = RUNS / "atlas-ft" / task
        if not finished(folder):
            adapt("run", "atlas-shapes-finetune", f"data.task={task}", "--output-dir", str(folder))
    vectors = RUNS / "atlas-vectors"
    if not all((vectors / f"{task}.safetensors").is_file() for task in VECTOR_TASKS):
        adapt("atlas", "vectors", *(str(RUNS / "atlas-ft" / task) for task in VECTOR_TASKS), "--out", str(vectors))


def grid_folder(method: str, shots: int) -> Path:
    return RUNS / "atlas-grid" / f"{method.replace(' ', '-').lower()}-{shots}"


def run_grid(methods: list[str]) -> None:
    for method in methods:
        recipe, overrides = METHODS[method]
        for shots in SHOTS:
            folder = grid_folder(method, shots)
            if not finished(folder):
                adapt("run", recipe, f"data.shots={shots}", *overrides, "--seeds", SEEDS, "--output-dir", str(folder))


def run_tta() -> None:
    folder = RUNS / "atlas-grid" / "tta"
    if not finished(folder):
        adapt("run", "atlas-shapes-tta", "--seeds", SEEDS, "--output-dir", str(folder))


def run_control() -> None:
    """aTLAS with shape-upside-down's own vector added to the bank: 1 and 16 shots, test-time adaptation."""
    task = "shape-upside-down"
    folder = RUNS / "atlas-ft" / task
    if not finished(folder):
        adapt("run", "atlas-shapes-finetune", f"data.task={task}", "--output-dir", str(folder))
    own = RUNS / "atlas-own-vector"
    if not (own / f"{task}.safetensors").is_file():
        adapt("atlas", "vectors", str(folder), "--out", str(own))
    bank = [str(RUNS / "atlas-vectors" / f"{name}.safetensors") for name in VECTOR_TASKS]
    vectors = "adapter.vectors=[" + ",".join([*bank, str(own / f"{task}.safetensors")]) + "]"
    for shots in (1, 16):
        out = grid_folder("aTLAS with own vector", shots)
        if not finished(out):
            adapt("run", "atlas-shapes-fewshot", f"data.shots={shots}", vectors,
                  "adapter.allow_own_task=true", "--seeds", SEEDS, "--output-dir", str(out))
    out = RUNS / "atlas-grid" / "tta-with-own-vector"
    if not finished(out):
        adapt("run", "atlas-shapes-tta", vectors, "adapter.allow_own_task=true", "--seeds", SEEDS,
              "--output-dir", str(out))


def cell(folder: Path, key: str = "test/accuracy") -> str:
    if not finished(folder):
        return "not run"
    summary = json.loads((folder / "summary.json").read_text())
    return f"{summary['mean'][key]:.1f} ± {summary['std'][key]:.1f}"


def table() -> str:
    """The Markdown table of what has finished (mean ± std over the seeds, test accuracy %)."""
    lines = ["| method | 1 shot | 4 shots | 16 shots |", "|---|---|---|---|"]
    zeroshot = [cell(grid_folder("aTLAS", shots), "initial/test/accuracy") for shots in SHOTS]
    lines.append("| zero-shot (aTLAS before training) | " + " | ".join(zeroshot) + " |")
    for method in METHODS:
        lines.append(f"| {method} | " + " | ".join(cell(grid_folder(method, shots)) for shots in SHOTS) + " |")
    control = [cell(grid_folder("aTLAS with own vector", shots)) if shots != 4 else "-" for shots in SHOTS]
    lines.append("| control: aTLAS, bank + the task's own vector | " + " | ".join(control) + " |")
    tta, own_tta = RUNS / "atlas-grid" / "tta", RUNS / "atlas-grid" / "tta-with-own-vector"
    lines += ["", "| test-time adaptation (no labels) | test accuracy |", "|---|---|",
              f"| zero-shot | {cell(tta, 'initial/test/accuracy')} |", f"| aTLAS TTA | {cell(tta)} |",
              f"| control: aTLAS TTA, bank + the task's own vector | {cell(own_tta)} |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--table", action="store_true", help="only print the table of what has finished")
    parser.add_argument("--control", action="store_true", help="run only the control with the task's own vector")
    parser.add_argument("--methods", default=",".join(METHODS), help="few-shot methods to run, comma-separated")
    args = parser.parse_args()
    if args.control:
        run_control()
    elif not args.table:
        make_vectors()
        methods = args.methods.split(",")
        run_grid([m for m in methods if m in ("aTLAS", "isotropic")])
        run_tta()
        run_grid([m for m in methods if m not in ("aTLAS", "isotropic")])
    text = table()
    (RUNS / "atlas-grid").mkdir(parents=True, exist_ok=True)
    (RUNS / "atlas-grid" / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
