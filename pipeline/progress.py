"""Progress you can trust: a tqdm bar on a terminal, a plain line every few seconds elsewhere.

Stages open one per long step (the study's trials, a trial's epochs, the references' folds,
the final fit's epochs); the pure code reports through callbacks. Each line or bar shows what
is done of what is expected, the elapsed and the remaining time.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

log = logging.getLogger("pipeline")
PERIOD_SECONDS = 10.0  # plain lines: at most this long between two (no stage silent > 15 s)


class Progress:
    """Progress of one step: `update(n, **notes)`; `close()` (or use it as a context)."""

    def __init__(self, total: float | None, desc: str, unit: str = "it",
                 interactive: bool | None = None, period: float = PERIOD_SECONDS) -> None:
        self.total, self.desc, self.unit, self.period = total, desc, unit, period
        self.done = 0.0
        self.notes: dict[str, object] = {}
        self.started = self.last_line = time.monotonic()
        interactive = sys.stderr.isatty() if interactive is None else interactive
        self.bar = (tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False,
                         dynamic_ncols=True, mininterval=0.5) if interactive else None)

    def update(self, n: float = 1, **notes: object) -> None:
        self.done += n
        self.notes.update(notes)
        if self.bar is not None:
            self.bar.update(n)
            if notes:
                self.bar.set_postfix({k: _short(v) for k, v in self.notes.items()},
                                     refresh=False)
            return
        now = time.monotonic()
        if now - self.last_line >= self.period:
            self.last_line = now
            log.info("%s", self.line())

    def note(self, **notes: object) -> None:
        """Change what the line says without counting progress."""
        self.update(0, **notes)

    def line(self) -> str:
        """What a plain progress line says: done of total, elapsed, remaining, notes."""
        elapsed = time.monotonic() - self.started
        done = f"{_count(self.done)}/{_count(self.total)}" if self.total else _count(self.done)
        parts = [f"{self.desc}: {done} {self.unit}", f"{_clock(elapsed)} elapsed"]
        if self.total and self.done:
            left = elapsed * (self.total - self.done) / self.done
            parts.append(f"~{_clock(max(left, 0.0))} left")
        parts += [f"{k} {_short(v)}" for k, v in self.notes.items()]
        return ", ".join(parts)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def steps(total: float | None, desc: str, unit: str = "it") -> Iterator[Progress]:
    progress = Progress(total, desc, unit)
    try:
        yield progress
    finally:
        progress.close()


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _count(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"

