"""The `validate` section: the Great Expectations gates' bounds."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ValidateConfig:
    """The `validate` block of params.yaml."""

    strict: bool = True
    min_chars: int = 1
    max_chars: int = 20_000
    max_removed_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_removed_share <= 1.0:
            raise ValueError(f"validate.max_removed_share must be in [0, 1], got {self.max_removed_share}")
        if not 0 <= self.min_chars <= self.max_chars:
            raise ValueError(f"validate.min_chars must be in [0, max_chars], got {self.min_chars} with max_chars {self.max_chars}")
