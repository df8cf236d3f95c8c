"""Progress for long work, on stderr (stdout stays clean for --json)."""

import sys

import click


class Log:
    """`log(message)` prints a line; `log.bar(total, label)` starts a progress bar. Silent if disabled."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled

    def __call__(self, message: str) -> None:
        if self.enabled:
            click.echo(message, file=sys.stderr)

    def bar(self, total: int, label: str):
        return _Bar(total, label) if self.enabled else _NoBar()

    def __bool__(self) -> bool:
        return self.enabled


class _Bar:
    def __init__(self, total: int, label: str):
        self._bar = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True)

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def finish(self) -> None:
        self._bar.render_finish()


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass
