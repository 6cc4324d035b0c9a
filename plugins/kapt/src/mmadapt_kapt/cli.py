"""``adapt kapt keywords KNOWLEDGE_FILE [--top-k K]``: the keywords KAPT's discrete prompts would use for a
knowledge file's classes.

Cheap to import (``adapt`` imports it to build its parser): the knowledge reader loads inside :func:`main`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``adapt kapt`` and their options."""
    commands = parser.add_subparsers(dest="kapt_command", required=True, metavar="COMMAND")
    keywords = commands.add_parser("keywords", help="print every class's keywords of a knowledge file")
    keywords.add_argument("knowledge_file", metavar="KNOWLEDGE_FILE", help="YAML or JSON: class -> description")
    keywords.add_argument("--top-k", type=int, default=2, help="keywords per class (default 2, the adapter's)")


def main(args: argparse.Namespace) -> int:
    """Print ``class: kw1, kw2`` per class of the file (explicit keywords win, TF-IDF over all its classes)."""
    from mmadapt import UserError, read_knowledge_file, tfidf_keywords

    if args.top_k < 0:
        raise UserError(f"--top-k is a number of keywords per class, 0 or more; got {args.top_k}")
    descriptions, explicit = read_knowledge_file(args.knowledge_file)
    ranked = tfidf_keywords(descriptions)
    ranked.update(explicit)
    for name in descriptions:
        print(f"{name}: {', '.join(ranked[name][: args.top_k])}")
    return 0
