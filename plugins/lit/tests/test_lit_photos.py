"""The backlit degradation of scikit-image's photos and ``adapt lit photos``."""

from __future__ import annotations

import json

import numpy as np
from mmadapt.testing import adapt_command
from mmadapt_lit.photos import DEGRADATIONS, PHOTOS, load_photo, make_backlit, scores, subject_mask


def test_the_degradation_darkens_the_subject_and_clips_the_background():
    original = load_photo("chelsea")
    degraded = make_backlit(original)
    assert degraded.shape == original.shape and degraded.min() >= 0.0 and degraded.max() <= 1.0
    mask = subject_mask(*original.shape[:2])
    subject, background = mask > 0.99, mask < 0.01
    assert degraded[subject].mean() < 0.6 * original[subject].mean()
    assert (degraded[background] == 1.0).mean() > (original[background] == 1.0).mean() + 0.1
    assert scores(degraded, original)["under_exposed"] > scores(original, original)["under_exposed"]
    assert scores(original, original)["ssim"] == 1.0


def test_the_unclipped_degradation_brightens_the_background_and_keeps_its_detail():
    original = load_photo("chelsea")
    degraded = make_backlit(original, "unclipped")
    background = subject_mask(*original.shape[:2]) == 0.0
    assert degraded[background].mean() > original[background].mean() + 0.05
    assert (degraded[background] == 1.0).mean() <= (original[background] == 1.0).mean()
    # Brightened by a strictly increasing map: no two background tones merge, unlike a clip to white.
    tones = np.unique(original[background])
    assert len(np.unique(degraded[background])) == len(tones)
    assert (make_backlit(original)[background] == 1.0).mean() > 0.1


def test_blown_out_counts_pixels_pushed_to_white_that_are_not_white_in_the_original():
    original = np.full((16, 20, 3), 0.5)
    original[:4] = 1.0  # white in the original: whitening it again is no over-exposure
    image = original.copy()
    image[:8] = 1.0  # rows 0-3 stay white, rows 4-7 are pushed to white
    assert scores(image, original)["blown_out"] == 0.25
    assert scores(original, original)["blown_out"] == 0.0


def test_photos_scores_every_photo_for_every_run(rave_run, tmp_path, capsys):
    assert adapt_command(["lit", "photos", str(rave_run), "--out", str(tmp_path / "out")]) == 0
    rows = json.loads((tmp_path / "out" / "photos.json").read_text())["rows"]
    assert [(row["photo"], row["degradation"]) for row in rows] == [(p, d) for p in PHOTOS for d in DEGRADATIONS]
    for row in rows:
        assert set(row) == {"photo", "degradation", "size", "input", "run0"}
        assert np.isfinite(row["run0"]["psnr"]) and 0 < row["run0"]["ssim"] <= 1
        assert 0 <= row["run0"]["blown_out"] <= 1
    assert (tmp_path / "out" / "photos.png").is_file()
    assert "astronaut" in capsys.readouterr().out
