"""The base class of every config section, and the error cross-field validators raise."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from .errors import Key


class Section(BaseModel):
    """A config table. Unknown keys are errors: a typo must never pass silently."""

    model_config = ConfigDict(extra="forbid", validate_default=True, validate_assignment=True)


class FieldProblem(ValueError):
    """Raised by a validator to blame precise sub-fields rather than the whole table.

    Pydantic reports a model validator's error at the model's location; the loader adds each
    ``sub_key`` to it, so ``streaming.persist.interval_ms`` is blamed instead of ``streaming``,
    and the line of that key is found in the file.
    """

    def __init__(self, problems: list[tuple[Key, str]]) -> None:
        self.problems = problems
        text = "; ".join(f"{'.'.join(map(str, k)) or '(here)'}: {m}" for k, m in problems)
        super().__init__(text)

    @classmethod
    def one(cls, sub_key: Key, message: str) -> "FieldProblem":
        return cls([(sub_key, message)])


def check(problems: list[tuple[Key, str]]) -> None:
    """Raise the collected problems, if any."""
    if problems:
        raise FieldProblem(problems)
