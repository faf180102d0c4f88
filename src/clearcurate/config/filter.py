"""The `filter` section: Auto-Filter's threshold."""

from __future__ import annotations

from dataclasses import dataclass

from clearcurate.config.common import AUTO


@dataclass(frozen=True)
class FilterConfig:
    """`filter` in params.yaml: keep confidence >= gamma, or >= a quantile of all scores.

    `quantile: auto` estimates the noisy share from the scores themselves (`estimate_noise_share`)
    and removes that share, lowest scores first.
    """

    gamma: float = 0.2
    quantile: float | str | None = 0.2
    max_share: float = 0.5

    def __post_init__(self) -> None:
        if isinstance(self.quantile, str):
            if self.quantile != AUTO:
                raise ValueError(f"filter.quantile must be a number in [0, 1], 'auto' or null, got {self.quantile!r}")
        elif self.quantile is not None and not 0.0 <= self.quantile <= 1.0:
            raise ValueError(f"filter.quantile must be in [0, 1], 'auto' or null, got {self.quantile}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"filter.gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.max_share <= 1.0:
            raise ValueError(f"filter.max_share must be in (0, 1], got {self.max_share}")
