"""User errors: bad data, bad model files, bad options.

Anything raised as `EdgeError` is the user's to fix; its message says what is wrong and what to do.
The CLI prints it as one line and exits with code 2. Every other exception is a bug.
"""

import difflib
import math
import numbers


class EdgeError(Exception):
    """A problem with the user's input, with a message that says how to fix it."""


# What a Python caller may catch by what it means; the CLI catches EdgeError alone.
class OptionError(EdgeError):
    """An option's value: out of range, unknown, or not meant with the others given."""


class ModelError(EdgeError):
    """A model file or bundle that cannot be used: unreadable, tampered, or not what it says."""


class SourceError(EdgeError):
    """Images, folders, cameras or videos that cannot be read as asked."""


class HostError(EdgeError):
    """The reports host: unreachable, or refusing what is sent."""


def choose(kind: str, value: str, choices) -> str:
    """Return `value` if it is one of `choices`, else raise an EdgeError that suggests the closest ones."""
    choices = list(choices)
    if value in choices:
        return value
    close = close_matches(value.lower(), choices)
    hint = f"did you mean {' or '.join(close)}?" if close else f"choose one of {', '.join(choices)}"
    raise OptionError(f"unknown {kind} '{value}': {hint}")


def close_matches(value: str, choices) -> list[str]:
    """Up to three of `choices` that look like `value`, closest first."""
    return difflib.get_close_matches(value, list(choices), n=3, cutoff=0.4)


def check_keywords(given, known, what: str) -> None:
    """Refuse an option `what` does not have, suggesting the closest ones."""
    for name in given:
        if name not in known:
            close = close_matches(name, known)
            hint = f"did you mean {' or '.join(close)}?" if close else f"its options: {', '.join(sorted(known))}"
            raise OptionError(f"{what} has no option '{name}': {hint}")


def finite(value) -> bool:
    """A real number, not nan or infinite (both parse from option text as floats) and not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def whole(value, lo: int, hi: float = math.inf) -> bool:
    """A whole number from `lo` to `hi`, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and lo <= int(value) <= hi
