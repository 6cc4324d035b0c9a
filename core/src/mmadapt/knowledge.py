"""Class knowledge: description files (``data.knowledge_file``) and TF-IDF keywords of descriptions.

A knowledge file is YAML or JSON mapping class names to a description, or to ``{description,
keywords}``. Names match a dataset's class names after ``_`` -> space and case-folding. Applied to
a dataset's task before few-shot sampling and class splits, the file overrides the task's own
descriptions class by class, and every class's keywords are ranked over all described classes, so a
class keeps the same keywords whether it is trained on (base) or only evaluated (novel).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from .data import DataBundle, Task
from .errors import UserError

# scikit-learn's ENGLISH_STOP_WORDS (BSD-3-Clause), from the Glasgow Information Retrieval Group's list.
_STOP_WORDS = """
a about above across after afterwards again against all almost alone along already also although always am
among amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at back
be became because become becomes becoming been before beforehand behind being below beside besides between
beyond bill both bottom but by call can cannot cant co con could couldnt cry de describe detail do done down
due during each eg eight either eleven else elsewhere empty enough etc even ever every everyone everything
everywhere except few fifteen fify fill find fire first five for former formerly forty found four from front
full further get give go had has hasnt have he hence her here hereafter hereby herein hereupon hers herself
him himself his how however hundred i ie if in inc indeed interest into is it its itself keep last latter
latterly least less ltd made many may me meanwhile might mill mine more moreover most mostly move much must
my myself name namely neither never nevertheless next nine no nobody none noone nor not nothing now nowhere
of off often on once one only onto or other others otherwise our ours ourselves out over own part per perhaps
please put rather re same see seem seemed seeming seems serious several she should show side since sincere
six sixty so some somehow someone something sometime sometimes somewhere still such system take ten than that
the their them themselves then thence there thereafter thereby therefore therein thereupon these they thick
thin third this those though three through throughout thru thus to together too top toward towards twelve
twenty two un under until up upon us very via was we well were what whatever when whence whenever where
whereafter whereas whereby wherein whereupon wherever whether which while whither who whoever whole whom
whose why will with within without would yet you your yours yourself yourselves
"""
ENGLISH_STOP_WORDS = frozenset(_STOP_WORDS.split())

_WORD = re.compile(r"[a-z]+")
_FIX = ("give every class a non-empty description: `class name: description` or "
        "`class name: {description: ..., keywords: [...]}`")


def match_name(name: str) -> str:
    """The form class names are matched in: ``_`` read as a space, case-folded, outer spaces dropped."""
    return name.replace("_", " ").casefold().strip()


def read_knowledge_file(path: str | Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Descriptions and explicit keywords of a YAML or JSON knowledge file, keyed as the file names them.

    Raises ``UserError`` naming the file, the offending classes and the fix for an unreadable or
    malformed file, an empty one, and entries without a non-empty string description.
    """
    path = Path(path)
    where = f"data.knowledge_file={str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(
            f"{where}: cannot read the file ({error.strerror}); give the path of a YAML or JSON file"
        ) from None
    try:
        content = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0]
        raise UserError(f"{where}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} ({first}); "
                        f"{_FIX}") from None
    if not isinstance(content, dict) or not content:
        raise UserError(f"{where}: the file holds no class entries; {_FIX}")
    descriptions: dict[str, str] = {}
    keywords: dict[str, list[str]] = {}
    bad: list[str] = []
    for name, entry in content.items():
        description, words = _entry(entry)
        if description is None:
            bad.append(str(name))
            continue
        descriptions[str(name)] = description
        if words is not None:
            keywords[str(name)] = words
    if bad:
        raise UserError(f"{where}: no usable description for {len(bad)} class(es): {', '.join(bad)}; {_FIX} "
                        "(keywords, when given, are a list of strings)")
    return descriptions, keywords


def _entry(entry: Any) -> tuple[str | None, list[str] | None]:
    """(description, keywords or None) of one file entry; description None when the entry is unusable."""
    if isinstance(entry, str):
        return (entry.strip() or None), None
    if not isinstance(entry, dict) or set(entry) - {"description", "keywords"}:
        return None, None
    description = entry.get("description")
    words = entry.get("keywords")
    if not isinstance(description, str) or not description.strip():
        return None, None
    if words is not None and (not isinstance(words, list) or not all(isinstance(w, str) and w.strip() for w in words)):
        return None, None
    return description.strip(), None if words is None else [w.strip() for w in words]


def tfidf_keywords(descriptions: dict[str, str]) -> dict[str, list[str]]:
    """Every class's candidate keywords, best first, by TF-IDF with one document per class.

    Tokens are lower-cased runs of letters, without scikit-learn's English stop words, words under
    three letters and words of the class name. tf = count / kept tokens of the description; idf =
    ln((1 + N) / (1 + df)) + 1 over the N descriptions (the smoothed form). Ties keep the order of
    first occurrence, so the result is deterministic; the top k are the first k.
    """
    documents = {}
    for name, text in descriptions.items():
        name_words = set(_WORD.findall(match_name(name)))
        documents[name] = [w for w in _WORD.findall(text.lower())
                           if len(w) >= 3 and w not in ENGLISH_STOP_WORDS and w not in name_words]
    n_documents = len(documents)
    df = Counter(word for tokens in documents.values() for word in set(tokens))
    ranked = {}
    for name, tokens in documents.items():
        counts = Counter(tokens)
        first = {word: tokens.index(word) for word in counts}
        score = {w: counts[w] / len(tokens) * (math.log((1 + n_documents) / (1 + df[w])) + 1) for w in counts}
        ranked[name] = sorted(counts, key=lambda w: (-score[w], first[w]))
    return ranked


def task_keywords(task: Task, explicit: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Ranked keywords of every class the task describes: ``explicit`` ones win, TF-IDF for the rest."""
    ranked = tfidf_keywords(task.knowledge or {})
    for name, words in (explicit or {}).items():
        ranked[name] = list(words)
    return ranked


def apply_knowledge(bundle: DataBundle, knowledge_file: str | Path | None) -> DataBundle:
    """The bundle with the file's descriptions over the task's own ones and every class's ranked keywords.

    Without a file, a task that describes its classes gets their keywords and is otherwise unchanged.
    With one, every class of the task needs an entry (a ``UserError`` lists the missing classes);
    entries naming no class of the task are warned about.
    """
    task = bundle.task
    if knowledge_file is None:
        if task.knowledge is None:
            return bundle
        return replace(bundle, task=replace(task, keywords=task_keywords(task)))
    descriptions, explicit = read_knowledge_file(knowledge_file)
    by_match = {match_name(name): name for name in descriptions}
    classes = {match_name(name): name for name in task.classnames}
    missing = [name for name in task.classnames if match_name(name) not in by_match and
               not (task.knowledge or {}).get(name)]
    if missing:
        raise UserError(
            f"data.knowledge_file={str(knowledge_file)!r} has no description for {len(missing)} of the "
            f"{task.n_classes} classes of {task.name or 'the dataset'}: {', '.join(missing)}; add an entry per class "
            "(names match after `_` -> space, ignoring case)"
        )
    unknown = [name for key, name in by_match.items() if key not in classes]
    if unknown:
        warnings.warn(f"data.knowledge_file={str(knowledge_file)!r}: {len(unknown)} entries name no class of "
                      f"{task.name or 'the dataset'} and are not used: {', '.join(unknown)}", stacklevel=2)
    knowledge = dict(task.knowledge or {})
    keywords = {}
    for key, name in classes.items():
        if key in by_match:
            knowledge[name] = descriptions[by_match[key]]
            if by_match[key] in explicit:
                keywords[name] = explicit[by_match[key]]
    described = replace(task, knowledge=knowledge)
    return replace(bundle, task=replace(described, keywords=task_keywords(described, keywords)))
