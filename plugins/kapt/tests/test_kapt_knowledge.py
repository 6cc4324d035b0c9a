"""The core's knowledge source as KAPT uses it: keyword ranking, knowledge files and their errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mmadapt import UserError, apply_knowledge, read_knowledge_file, select_classes, tfidf_keywords
from mmadapt.testing import adapt_command, tiny_bundle

#: Hand-computed (N = 3, idf = ln(4 / (1 + df)) + 1):
#: cat: whiskers 2/4 * 1.693, soft 1/4 * 1.693, fur 1/4 * 1 -> whiskers, soft, fur
#: dog: loyal = long = 1/4 * 1.693 (first occurrence wins), tail 1/4 * 1.288, fur 1/4 -> loyal, long, tail, fur
#: red fox ("red", "fox" are its name): bushy 1/3 * 1.693, tail 1/3 * 1.288, fur 1/3 -> bushy, tail, fur
DESCRIPTIONS = {
    "cat": "whiskers and whiskers, soft fur",
    "dog": "a loyal dog with fur and a long tail",
    "Red Fox": "a fox with red fur and a bushy tail",
}
EXPECTED = {"cat": ["whiskers", "soft", "fur"], "dog": ["loyal", "long", "tail", "fur"],
            "Red Fox": ["bushy", "tail", "fur"]}


def test_keywords_of_a_hand_made_file_equal_the_hand_computed_ranking():
    assert tfidf_keywords(DESCRIPTIONS) == EXPECTED


def test_keywords_never_hold_stop_words_short_words_or_class_name_words():
    ranked = tfidf_keywords({"sweet_pepper": "The sweet pepper is a big red fruit of an annual plant, a pepper",
                             "ox": "an ox is a big animal"})
    assert ranked["sweet_pepper"] == ["red", "fruit", "annual", "plant", "big"]
    assert ranked["ox"] == ["animal", "big"]


def test_keywords_are_the_same_under_other_hash_seeds():
    code = ("import json; from mmadapt import tfidf_keywords; "
            f"print(json.dumps(tfidf_keywords({DESCRIPTIONS!r})))")
    outputs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={"PYTHONHASHSEED": seed, "PATH": ""}).stdout for seed in ("1", "2")}
    assert len(outputs) == 1 and json.loads(outputs.pop()) == EXPECTED


def test_a_file_overrides_by_matched_name_and_explicit_keywords_win(tmp_path):
    path = tmp_path / "colours.yaml"
    path.write_text("RED: a warm colour of fire and blood\nGreen: the colour of grass and leaves\n"
                    "blue: {description: the colour of the sky, keywords: [sky, sea]}\nYELLOW: a colour of lemons\n")
    task = apply_knowledge(tiny_bundle(), path).task
    assert task.knowledge["red"] == "a warm colour of fire and blood"
    assert task.keywords["blue"] == ["sky", "sea"]
    assert task.keywords["green"][:2] == ["grass", "leaves"]


def test_novel_classes_keep_the_keywords_of_the_full_dataset(tmp_path):
    path = tmp_path / "colours.json"
    path.write_text(json.dumps({"red": "fire and blood", "green": "grass and fire", "blue": "sky and sea",
                                "yellow": "lemons and fire"}))
    full = apply_knowledge(tiny_bundle(), path)
    novel = select_classes(full, [2, 3]).task
    assert novel.keywords == {name: full.task.keywords[name] for name in ("blue", "yellow")}
    assert novel.knowledge == {name: full.task.knowledge[name] for name in ("blue", "yellow")}
    # IDF over the two novel classes alone would rank "fire" first for yellow; over all four, "lemons" is.
    assert novel.keywords["yellow"][0] == "lemons"


def test_unknown_names_in_a_file_are_warned_about(tmp_path):
    path = tmp_path / "colours.yaml"
    path.write_text("red: r\ngreen: g\nblue: b\nyellow: y\npurple: p\n")
    with pytest.warns(UserWarning, match="purple"):
        apply_knowledge(tiny_bundle(), path)


@pytest.mark.parametrize(("text", "message"), [
    ("red: [unclosed", "not valid YAML"),
    ("", "no class entries"),
    ("red: 3\ngreen: {description: 4}\nblue: b\nyellow: y\n", "red, green"),
    ("red: ''\ngreen: g\nblue: b\nyellow: y\n", "red"),
    ("red: r\ngreen: g\n", "blue, yellow"),
])
def test_bad_knowledge_files_name_the_file_the_classes_and_the_fix(tmp_path, text, message):
    path = tmp_path / "colours.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message) as error:
        apply_knowledge(tiny_bundle(), path)
    text = str(error.value)
    assert str(path) in text and ("give every class" in text or "add an entry" in text)


def test_bad_json_is_reported(tmp_path):
    path = tmp_path / "colours.json"
    path.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        read_knowledge_file(path)


def test_adapt_kapt_keywords_prints_them_and_exits_2_on_a_bad_file(tmp_path, plugin_manager, capsys):
    path = tmp_path / "animals.yaml"
    path.write_text(json.dumps(DESCRIPTIONS))
    assert adapt_command(["kapt", "keywords", str(path), "--top-k", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == ["cat: whiskers, soft", "dog: loyal, long", "Red Fox: bushy, tail"]
    path.write_text("cat: [1, 2]\n")
    assert adapt_command(["kapt", "keywords", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "cat" in err and "give every class" in err
