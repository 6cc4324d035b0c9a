"""``python -m mmadapt`` is ``adapt`` (``accelerate launch -m mmadapt run recipe.yaml``)."""

import sys

from .cli import main

sys.exit(main())
