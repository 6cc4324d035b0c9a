"""An exported enhancer gives the run's enhanced images; it does not classify."""

from __future__ import annotations

import pytest
from mmadapt import UserError
from mmadapt.testing import assert_export_reproduces_run


def test_an_exported_rave_enhancer_gives_the_runs_images(rave_run, tmp_path):
    loaded = assert_export_reproduces_run(rave_run, tmp_path / "export")
    assert loaded.is_enhancer
    with pytest.raises(UserError, match="enhances images; classify is for classifiers"):
        loaded.classify([])
