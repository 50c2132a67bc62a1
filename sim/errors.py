"""Errors for bad input: one line per problem, naming the key path, the value and what was expected.

Every layer that validates user input (units, distributions, components, experiment files)
raises :class:`ConfigError`. The CLI prints ``str(error)`` and exits with status 2; the
Python API lets it propagate. A single error may carry several problems so that a user
fixes a whole file in one pass instead of one key at a time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ConfigError", "Problem"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input.

    Attributes:
        path: where the value sits, as a dotted key path (``"pools.db.capacity"``) or a
            parameter name (``"capacity"``).
        value: the offending value, exactly as given.
        expected: what would have been accepted, in words (``"an integer >= 1"``).
    """

    path: str
    value: object
    expected: str

    def __str__(self) -> str:
        return f"{self.path}: got {self.value!r}, expected {self.expected}"


class ConfigError(ValueError):
    """Bad input: a parameter, a config key or a unit that cannot be used.

    ``str(error)`` is one line per problem. ``error.problems`` keeps them structured.
    """

    def __init__(self, problems: Problem | Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = (
            (problems,) if isinstance(problems, Problem) else tuple(problems)
        )
        super().__init__("\n".join(str(p) for p in self.problems))

    @classmethod
    def single(cls, path: str, value: object, expected: str) -> ConfigError:
        """The error for exactly one problem."""
        return cls(Problem(path, value, expected))

    def under(self, prefix: str) -> ConfigError:
        """The same problems with their paths moved under ``prefix`` (``"a.b"`` + ``"c"``)."""
        return ConfigError(
            Problem(f"{prefix}.{p.path}" if prefix else p.path, p.value, p.expected)
            for p in self.problems
        )
