"""``adapt kapt keywords``: the keywords KAPT's discrete prompts would use for a knowledge file's classes."""

from __future__ import annotations

import argparse

from mmadapt import UserError, read_knowledge_file, tfidf_keywords


def main(args: argparse.Namespace) -> int:
    """Print ``class: kw1, kw2`` per class of the file (explicit keywords win, TF-IDF over all its classes)."""
    if args.top_k < 0:
        raise UserError(f"--top-k is a number of keywords per class, 0 or more; got {args.top_k}")
    descriptions, explicit = read_knowledge_file(args.knowledge_file)
    ranked = tfidf_keywords(descriptions)
    ranked.update(explicit)
    for name in descriptions:
        print(f"{name}: {', '.join(ranked[name][: args.top_k])}")
    return 0
