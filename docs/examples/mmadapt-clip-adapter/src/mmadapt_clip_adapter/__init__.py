"""mmadapt-clip-adapter: the ``clip-adapter`` adapter for mmadapt (see README.md).

mmadapt finds the plugin through the entry point in pyproject.toml, which names
:mod:`mmadapt_clip_adapter.plugin`; nothing needs to be imported here.
"""
