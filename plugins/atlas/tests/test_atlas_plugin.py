"""The plugin's registration, cheap entry modules and ``adapt bench atlas`` on a tiny model."""

from __future__ import annotations

import json
import re

from mmadapt.testing import adapt_command, assert_import_is_cheap


def test_the_entry_point_registers_every_component(plugin_manager):
    for kind, name in (("adapter", "atlas"), ("protocol", "atlas-tta"), ("command", "atlas"), ("benchmark", "atlas")):
        assert plugin_manager.registry.get(kind, name).distribution == "mmadapt-atlas", (kind, name)


def test_the_plugin_and_command_modules_are_cheap_to_import():
    assert_import_is_cheap("mmadapt_atlas.plugin")
    assert_import_is_cheap("mmadapt_atlas.cli")


def test_bench_atlas_reports_fp16_against_fp32_vectors(tmp_path, capsys, plugin_manager):
    import open_clip
    from mmadapt.testing_models import tiny_openclip_config

    (tmp_path / "tiny-bench-atlas.json").write_text(json.dumps(tiny_openclip_config()))
    open_clip.add_model_config(tmp_path / "tiny-bench-atlas.json")
    argv = ["bench", "atlas", "--arch", "tiny-bench-atlas", "--vectors", "3", "--batch-size", "2", "--repeats", "1"]
    assert adapt_command(argv) == 0
    out = capsys.readouterr().out
    blocks = int(re.search(r"3 vectors x (\d+) blocks = ([\d,]+) coefficients", out).group(1))
    assert blocks == 32 and "= 96 coefficients" in out
    sizes = dict(re.findall(r"vectors (fp16|fp32): .* vectors +([\d.]+) MiB", out))
    assert float(sizes["fp32"]) > float(sizes["fp16"]) > 0
    assert re.search(r"ratio fp32 / fp16 vector memory: 2\.0+x", out)
