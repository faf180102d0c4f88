"""The `data` and `prepare` sections: where the rows are and how to read them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field, model_validator

from clearcurate.config.common import FORMATS, Section


@dataclass(frozen=True)
class IngestConfig:
    """`data.format` and `data.columns` in params.yaml, plus `prepare.strict`."""

    format: str = "auto"
    columns: dict[str, str] = field(default_factory=dict)
    strict: bool = False
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"data.format must be one of {FORMATS}, got {self.format!r}")
        unknown = set(self.columns) - {"id", "prompt", "response"}
        if unknown:
            raise ValueError(f"data.columns maps unknown fields {sorted(unknown)}; use id, prompt, response")


class DataParams(Section):
    """`data`: where the rows are and how to read them."""

    train: str = "data/raw/train.jsonl"
    test: str = "data/raw/test.jsonl"
    format: str = "auto"
    columns: dict[str, str] = Field(default_factory=dict)
    encoding: str = "utf-8"

    @model_validator(mode="after")
    def _readable(self) -> DataParams:
        IngestConfig(format=self.format, columns=dict(self.columns))  # its checks name the bad key
        return self


class PrepareParams(Section):
    strict: bool = False
