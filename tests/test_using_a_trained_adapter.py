"""docs/using-a-trained-adapter.md runs: its commands (a shorter training) and its Python example, in order."""

from __future__ import annotations

import re
import shlex
import sys
import types
from ast import literal_eval
from pathlib import Path

import pytest
from mmadapt.testing import adapt_command

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "using-a-trained-adapter.md"
FENCE = re.compile(r"^```(?P<language>[\w-]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
#: The page trains CoOp for 200 epochs on 2000 images; the example needs a trained folder, not a good one.
QUICK = ["train.epochs=2", "data.train_size=200", "data.test_size=60"]


def blocks(language: str) -> list[str]:
    return [m["body"] for m in FENCE.finditer(PAGE.read_text(encoding="utf-8")) if m["language"] == language]


@pytest.mark.slow
def test_the_pages_commands_and_example_run(plugin_manager, one_torch_thread, tmp_path, monkeypatch, capsys):
    if plugin_manager.registry.find("backbone", "shapes-clip") is None:
        pytest.skip("mmadapt-shapes is not installed")
    from mmadapt_shapes.tasks import SHAPES, get_task
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    Image.fromarray(get_task("shape-upside-down").item(0, "test", seed=3).image).save("photo.png")
    for line in blocks("bash")[0].strip().splitlines():
        argv = shlex.split(line.split("#")[0])
        assert argv[0] == "adapt", line
        if argv[1] == "run":
            argv = [*argv, *QUICK]
        assert adapt_command(argv[1:]) == 0, line
    predicted = capsys.readouterr().out.strip().splitlines()[-1]
    assert predicted.startswith("photo.png: ") and predicted.count(",") == 2, predicted

    [example] = blocks("python")
    module = types.ModuleType("using_a_trained_adapter_md")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(example, str(PAGE), "exec"), module.__dict__)
    printed = capsys.readouterr().out.strip().splitlines()
    base = list(SHAPES[:6])
    assert printed[0] == str(base), "CoOp's base-to-novel run trains on the first half of the shapes"
    on_base, on_all = literal_eval(printed[1]), literal_eval(printed[-1])
    assert set(on_base) <= set(base) and len(on_base) == len(module.base)
    assert set(on_all) <= set(SHAPES) and len(on_all) == 12
    assert module.adapter.classnames == list(SHAPES)
