"""The data contract: a task description, its splits, and the helpers every dataset shares."""

from .splits import *  # noqa: F403
from .splits import __all__  # noqa: F401
