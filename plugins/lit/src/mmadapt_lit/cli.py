"""``adapt lit enhance RUN_DIR IMAGES... --out DIR``, ``adapt lit residual-words RUN_DIR [--top N]`` and
``adapt lit photos RUN_DIR... --out DIR``.

``enhance`` applies a trained enhancer at full resolution to images of any size and writes one PNG
per input into ``--out`` (and nowhere else). ``residual-words`` lists the vocabulary tokens nearest
and farthest from a RAVE run's residual vector: what the two training sets differ in besides lighting.
``photos`` scores runs on scikit-image's bundled photos made backlit (see :mod:`mmadapt_lit.photos`).
Cheap to import: torch loads inside the actions.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .enhancer import load_enhancer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The actions of ``adapt lit`` and their options."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    enhance = actions.add_parser("enhance", help="enhance images with a trained lit run's network")
    enhance.add_argument("run_dir", metavar="RUN_DIR", help="a finished run of a lit adapter")
    enhance.add_argument("images", nargs="+", metavar="IMAGES", help="image files of any size")
    enhance.add_argument("--out", required=True, metavar="DIR", help="folder for the enhanced PNGs (created)")
    words = actions.add_parser("residual-words", help="vocabulary tokens nearest a RAVE run's residual vector")
    words.add_argument("run_dir", metavar="RUN_DIR", help="a finished run of the rave adapter")
    words.add_argument("--top", type=int, default=20, help="tokens listed at each end (default 20)")
    photos = actions.add_parser("photos", help="score trained runs on scikit-image's photos made backlit")
    photos.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="finished runs of lit adapters")
    photos.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and photos.json (created)")


def main(args: argparse.Namespace) -> int:
    """Run the chosen action; bad input raises ``UserError`` (exit code 2, no traceback)."""
    if args.action == "enhance":
        return enhance(Path(args.run_dir), [Path(p) for p in args.images], Path(args.out))
    if args.action == "photos":
        return photos(Path(args.out), [Path(p) for p in args.run_dirs])
    return residual_words(Path(args.run_dir), args.top)


def enhance(run_dir: Path, images: list[Path], out: Path) -> int:
    """Enhance every image into ``out/<stem>.png``; every input is read before anything is written."""
    import numpy as np
    import torch
    from mmadapt import UserError, open_image

    from .images import save_png

    stems: dict[str, Path] = {}
    for path in images:
        if path.stem in stems:
            raise UserError(
                f"{path} and {stems[path.stem]} would both be written as {path.stem}.png; "
                "enhance them in two calls with different --out folders"
            )
        stems[path.stem] = path
    adapter = load_enhancer(run_dir)
    pixels = {stem: open_image(path) for stem, path in stems.items()}  # a non-image fails here, before any write
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for stem, picture in pixels.items():
            image = torch.from_numpy(np.array(picture, dtype=np.uint8)).permute(2, 0, 1).float().div(255.0)
            save_png(adapter.enhance(image[None])[0], out / f"{stem}.png")
            print(f"{stems[stem]} -> {out / f'{stem}.png'} ({picture.width}x{picture.height})")
    return 0


def photos(out: Path, run_dirs: list[Path]) -> int:
    """Print PSNR, SSIM, under- and over-exposure of the degraded photos and of each run's enhancement of them."""
    from .photos import run

    rows = run(run_dirs, out)
    print(f"{'photo':10s} {'degradation':11s} {'size':8s} {'image':6s} {'psnr':>7s} {'ssim':>6s} {'Y<0.1':>6s} "
          f"{'blown':>6s}")
    for row in rows:
        for key, value in row.items():
            if isinstance(value, dict):
                print(
                    f"{row['photo']:10s} {row['degradation']:11s} {row['size']:8s} {key:6s} {value['psnr']:7.2f} "
                    f"{value['ssim']:6.3f} {value['under_exposed']:6.3f} {value['blown_out']:6.3f}"
                )
    print(f"written to {out}: photos.png, photos.json and one PNG per photo and run")
    return 0


def residual_words(run_dir: Path, top: int) -> int:
    """Print the ``top`` tokens nearest and farthest from the run's residual vector."""
    from mmadapt import UserError

    from .vocabulary import nearest_tokens

    if top < 1:
        raise UserError(f"--top must be at least 1; got {top}")
    adapter = load_enhancer(run_dir)
    if adapter.guidance != "rave" or not adapter.has_residual:
        raise UserError(f"{run_dir}: residual-words needs a trained rave run; this run's adapter is {adapter.guidance}")
    if adapter.backbone.text is None:
        raise UserError(f"{run_dir}: the backbone {adapter.backbone.name} has no text tower to rank tokens with")
    ranked = nearest_tokens(adapter.backbone, adapter.residual, top)
    for title, rows in (
        ("nearest v_res (well-lit side)", ranked["nearest"]),
        ("farthest from v_res (backlit side)", ranked["farthest"]),
    ):
        print(title)
        for rank, (word, cosine) in enumerate(rows, 1):
            print(f"  {rank:3d}  {cosine:+.4f}  {word}")
    return 0
