"""Errors that reach the user as a message and an exit code, never as a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A problem with the user's input; the CLI prints the message and exits with ``exit_code``."""

    exit_code = 2


class RecipeError(UserError):
    """Every problem found in one recipe, reported together."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s) in the recipe"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


class PluginLoadError(UserError):
    """A plugin failed to load and a component it provides was asked for."""


class NonFiniteLossError(UserError):
    """The loss became NaN or infinite; the run stops and keeps its last good checkpoint."""

    exit_code = 1


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
