"""How options are declared: a frozen dataclass per command (or group of options), each field made by
`option`, which states its default once, with the help the command line shows. The CLI makes its click
options from these fields (edge.cli.options_of), and the Python API takes the same dataclass, or its fields
as keywords; a dataclass validates itself when made (`__post_init__`), so both refuse the same values.
A field made without `option` (a nested group of options, a setting for tests) is no option of the command."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import MISSING, field, fields
from typing import Any

from edge.errors import EdgeError, OptionError, check_keywords


def option(
    default: Any = MISSING,
    help: str = "",
    flag: str | None = None,
    keyword: str | None = None,  # noqa: A002
    secret: bool = False,
    **click: Any,
) -> Any:
    """A dataclass field with its default and what `--help` says of it. `keyword`: the name the CLI passes it
    by and the Python API takes it as, when not the field's (a nested group's field: "report_to" for `url`);
    `flag`: the option's spelling when not --KEYWORD (e.g. "--protect-reads/--open-reads"); `secret`: left out
    of the dataclass's repr; `click`: more of click.option's arguments (envvar, hidden, type, ...)."""
    return field(
        default=default, repr=not secret, metadata={"help": help, "flag": flag, "keyword": keyword, "click": click}
    )


def options(cls) -> dict:
    """{keyword: field} of a dataclass's options, in their order."""
    return {spec.metadata["keyword"] or spec.name: spec for spec in fields(cls) if "help" in spec.metadata}


def flag_of(spec) -> str:
    """How the command line spells an option (its first spelling, for an on/off pair)."""
    return (spec.metadata["flag"] or "--" + (spec.metadata["keyword"] or spec.name).replace("_", "-")).split("/")[0]


def take(cls, given: dict) -> dict:
    """Remove `cls`'s options from `given` (keywords, as the CLI and the API have them), and return them as
    `cls`'s field names; None stands for the default, as it does in the API's signatures."""
    return {
        spec.name: value for keyword, spec in options(cls).items() if (value := given.pop(keyword, None)) is not None
    }


def made(cls, given, keywords: dict, what: str, build=None):
    """The options the API was given: `given` (a `cls`), or else a `cls` of `keywords` (None: the default),
    any it lacks refused with the closest it has, or made by `build(keywords)` where keywords reach nested
    groups; not both."""
    keywords = {name: value for name, value in keywords.items() if value is not None}
    if given is not None and keywords:
        raise OptionError(f"{what} takes options (a {cls.__name__}) or keywords ({', '.join(keywords)}), not both")
    if given is not None:
        return given
    if build is not None:
        return build(keywords)
    check_keywords(keywords, [spec.name for spec in fields(cls)], what)
    return cls(**keywords)


# A flag in a message, and what follows it when that is its value: a metavar (URL, KEYDIR/edge-sign.pub) or an
# unquoted value the message goes on from ("--report-every -1: give ...", "--max-frames 0 must be ...").
FLAG = re.compile(
    r"(?<![\w-])(--[a-z][a-z0-9-]*)"
    r"(?: ([A-Z][A-Z0-9_./-]*\b|[^\s'\"]\S*(?=:(?:\s|$)| must\b| cannot\b| needs\b| is\b)))?"
)


_FLAGS: ContextVar[bool] = ContextVar("edge_flags", default=False)


@contextmanager
def flags() -> Iterator[None]:
    """Within, `python_names` leaves errors as they are: the command line (edge.cli) runs in here."""
    token = _FLAGS.set(True)
    try:
        yield
    finally:
        _FLAGS.reset(token)


@contextmanager
def python_names(*sources) -> Iterator[None]:
    """An EdgeError raised within, as a Python caller reads it: each flag of `sources` (options dataclasses, or
    keywords of the API that are their flags' words) named by the keyword the API takes (--max-frames 0 must be
    ... -> max_frames=0 must be ...); a flag they lack stays as it is. Not under `flags`."""
    keywords = {}
    for source in sources:
        for keyword, spec in options(source).items() if not isinstance(source, str) else [(source, None)]:
            spellings = (spec and spec.metadata["flag"]) or "--" + keyword.replace("_", "-")
            keywords.update(dict.fromkeys(spellings.split("/"), keyword))

    def named(found: re.Match) -> str:
        keyword = keywords.get(found[1])
        if keyword is None:
            return found[0]
        return keyword + (f"={found[2]}" if found[2] else "")

    try:
        yield
    except EdgeError as e:
        if not _FLAGS.get():
            e.args = (FLAG.sub(named, str(e)),)
        raise
