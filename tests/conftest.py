"""Shared test set-up: never touch the network, keep CPU threads modest."""

import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def unreachable_hub(monkeypatch):
    """No network at all (name resolution fails), and HF_HUB_OFFLINE not set: the case a user without
    a network hits. Restores everything afterwards."""
    import huggingface_hub.constants

    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr("mmadapt.hub._probes", {})  # no answer remembered from before
    return huggingface_hub.constants


@pytest.fixture
def env_dir(tmp_path):
    """A folder for a subprocess's PYTHONPATH with the tiny components and the runtime test plugin installed."""
    from plugin_dists import make_entry_point_dist

    plugins = tmp_path / "site"
    plugins.mkdir()
    make_entry_point_dist(plugins, "mmadapt-testing-tiny", "tiny", "mmadapt.testing:tiny_components")
    make_entry_point_dist(plugins, "mmadapt-testing-runtime", "runtime", "runtime_plugin")
    return plugins
