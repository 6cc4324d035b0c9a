"""The recipe sections of mmadapt-deep's adapters and objectives. Cheap to import: dataclasses."""

from __future__ import annotations
