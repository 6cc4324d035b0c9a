"""``adapt clip-adapter params [--width D] [--reduction R]``: the trainable parameters of the adapter at a width.

The plugin's commands: each command's options (``add_arguments``) and handler (``main``), which
plugin.py registers by reference. ``adapt`` imports this module whenever it builds its parser, so it
imports nothing heavy; a handler that needs torch imports it inside.
"""

from __future__ import annotations

import argparse

from mmadapt import UserError

from .config import ClipAdapterConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``adapt clip-adapter`` and their options."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    params = actions.add_parser("params", help="trainable parameters of the adapter at a feature width")
    params.add_argument("--width", type=int, default=512, help="the backbone's embed_dim (default 512: ViT-B/16)")
    params.add_argument("--reduction", type=int, default=ClipAdapterConfig.reduction,
                        help="the recipe's adapter.reduction (default %(default)s)")


def main(args: argparse.Namespace) -> int:
    """Print the parameter count of the MLP that adapter.py builds: two bias-free layers through the hidden width."""
    try:
        config = ClipAdapterConfig(reduction=args.reduction)
    except ValueError as error:
        raise UserError(str(error).replace("adapter.reduction", "--reduction")) from None
    if args.width < 1:
        raise UserError(f"--width must be a positive number of features; got {args.width}")
    hidden = max(1, args.width // config.reduction)
    print(f"{2 * args.width * hidden:,} trainable parameters (width {args.width}, hidden width {hidden})")
    return 0
