"""mmadapt-prompts: CoOp, CoCoOp, latent class prompts, multitask prompts (MVLPT) and KgCoOp for mmadapt.

The components are registered through the ``mmadapt`` entry point (:mod:`mmadapt_prompts.plugin`)
and named in recipes: adapters ``coop``, ``cocoop``, ``latent-prompt``, ``mvlpt``; protocol
``multitask``; benchmark ``prompts`` (``adapt bench prompts``); command ``adapt coop-split``. The
adapters support the core's ``kg-regularizer`` objective (KgCoOp).
"""

__version__ = "0.1.0"
