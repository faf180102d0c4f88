"""clearcurate: CLEAR (Chen & Mueller 2024) data curation for instruction tuning, as a DVC pipeline."""

__version__ = "0.1.0"
