"""Hugging Face Hub access that fails fast and explains itself when there is no network.

The ``openclip`` and ``timm`` backbones fetch pretrained files through these helpers, and exported
adapters are downloaded (``load_adapter("hf-hub:...")``) and pushed (``adapt export --push``) with
them. Importing this module is cheap; ``huggingface_hub`` is imported when the Hub is about to be used.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

#: Modules whose exceptions mean "could not fetch from the network or the download cache".
_DOWNLOAD_ERROR_MODULES = ("huggingface_hub", "httpx", "requests", "urllib3")
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
HUB_PROBE_TIMEOUT_S = 3.0
HUB_PROBE_REUSE_S = 60.0
_probes: dict[str, tuple[float, bool]] = {}
# The offline switch is global to huggingface_hub; loads that may flip it run one at a time.
_HUB_SWITCH = threading.Lock()


def hub_reachable(endpoint: str, timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the Hub endpoint opens within ``timeout`` seconds (plus the time
    name resolution takes); the answer is reused for a minute, so building several backbones probes
    once.

    Behind a proxy the direct connection says nothing, so the Hub is then assumed reachable.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    checked_at, reachable = _probes.get(endpoint, (-math.inf, False))
    if time.monotonic() - checked_at < HUB_PROBE_REUSE_S:
        return reachable
    url = urlparse(endpoint)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout).close()
        reachable = True
    except OSError:
        reachable = False
    _probes[endpoint] = (time.monotonic(), reachable)
    return reachable


@contextmanager
def hub_offline_when_unreachable() -> Iterator[bool]:
    """Download from the Hugging Face Hub only if it can be reached; yields whether it can.

    Without a network huggingface_hub retries for about a minute before it gives up, even for files
    it has cached. When the Hub does not answer within a few seconds, this switches it to offline mode
    for the duration: cached files load at once and missing ones fail at once.
    """
    from huggingface_hub import constants

    with _HUB_SWITCH:
        if constants.HF_HUB_OFFLINE or hub_reachable(constants.ENDPOINT):
            yield True
            return
        constants.HF_HUB_OFFLINE = True
        try:
            yield False
        finally:
            constants.HF_HUB_OFFLINE = False


def download_failure(exc: BaseException) -> BaseException | None:
    """The innermost network or download-cache error behind ``exc``, or None if there is none."""
    found = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) or type(current).__module__.startswith(_DOWNLOAD_ERROR_MODULES):
            found = current
        current = current.__cause__ or current.__context__
    return found


def offline_help(what: str, reason: BaseException, local_key: str | None, hub_reached: bool = True) -> str:
    """A message for files that could not be downloaded, with the ways to run offline.

    ``local_key`` is the recipe key that loads a local checkpoint instead, if there is one.
    """
    detail = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    if not hub_reached:
        from huggingface_hub import constants

        detail = f"the Hugging Face Hub cannot be reached ({constants.ENDPOINT}) and the files are not cached"
    local = f"  - load a local checkpoint file instead: {local_key}=/path/to/checkpoint, or\n" if local_key else ""
    return (
        f"cannot get {what}: {detail}\n"
        "Pretrained files are downloaded on first use and cached (Hugging Face Hub cache: HF_HUB_CACHE, "
        "or backbone.cache_dir). Without a network, either\n"
        f"{local}"
        "  - fetch them once on a machine with a network (run the same recipe there), copy the cache "
        "here and point HF_HUB_CACHE (or backbone.cache_dir) at it."
    )
