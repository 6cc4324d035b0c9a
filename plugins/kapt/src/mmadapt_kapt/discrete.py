"""The discrete knowledge prompt: a class name and its keywords in a template, cut to the text context."""

from __future__ import annotations

from mmadapt import Backbone, prompt_name, token_counts


def render(template: str, without_keywords: str, classname: str, keywords: list[str]) -> str:
    """The prompt of one class: ``template`` with its keywords joined by ", ", or ``without_keywords``."""
    name = prompt_name(classname)
    if not keywords:
        return without_keywords.replace("{class}", name)
    return template.replace("{class}", name).replace("{keywords}", ", ".join(keywords))


def discrete_prompts(
    backbone: Backbone, classnames: list[str], keywords: dict[str, list[str]], k: int,
    template: str, without_keywords: str,
) -> list[str]:
    """Every class's prompt with its first ``k`` keywords, dropping keywords from the end until it fits.

    A prompt fits when its tokens with start and end tokens leave the backbone's last text position
    free: the tokenizer cuts longer texts to the context, and a cut text fills it exactly, so a text
    that fills it is taken as cut. The class name itself is never dropped.
    """
    prompts = []
    for name in classnames:
        words = list(keywords.get(name, []))[:k]
        while True:
            text = render(template, without_keywords, name, words)
            if not words or int(token_counts(backbone, [text])[0]) + 2 < backbone.text.context_length:
                break
            words.pop()
        prompts.append(text)
    return prompts
