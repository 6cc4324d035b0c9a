"""mmadapt hooks of mmadapt-deep.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations
