"""How options are declared: a frozen dataclass per command (or group of options), each field made by
`option`, which states its default once, with the help the command line shows. The CLI makes its click
options from these fields (edge.cli.options_of), and the Python API takes the same dataclass, or its fields
as keywords; a dataclass validates itself when made (`__post_init__`), so both refuse the same values."""
from dataclasses import MISSING, field
from typing import Any


def option(default: Any = MISSING, help: str = "", flag: str | None = None, **click: Any) -> Any:  # noqa: A002
    """A dataclass field with its default and what `--help` says of it. `flag`: the option's spelling when it is
    not the field's name (e.g. "--protect-reads/--open-reads"); `click`: more of click.option's arguments."""
    return field(default=default, metadata={"help": help, "flag": flag, "click": click})
