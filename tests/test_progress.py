"""Progress away from a terminal: a plain line at most every few seconds, with done of
expected, elapsed and remaining time; on a terminal, a tqdm bar."""

import logging
import re

from pipeline.progress import Progress


def test_plain_lines_say_done_of_total_elapsed_and_left(caplog):
    caplog.set_level(logging.INFO, logger="pipeline")
    progress = Progress(200, "trial 3", "epochs", interactive=False, period=0.0)
    progress.update(50, best=0.123456)
    progress.update(50)
    progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert re.fullmatch(r"trial 3: 50/200 epochs, 0:\d\d elapsed, ~\d+:\d\d left, "
                        r"best 0\.1235", lines[0]), lines[0]
    assert lines[1].startswith("trial 3: 100/200 epochs")


def test_plain_lines_are_spaced_by_the_period(caplog):
    caplog.set_level(logging.INFO, logger="pipeline")
    progress = Progress(1000, "study", "trials", interactive=False, period=3600.0)
    for _ in range(1000):
        progress.update()
    assert caplog.records == []  # none within the period: a log is never flooded
    assert progress.line().startswith("study: 1000/1000 trials")


def test_an_unknown_total_shows_the_count_only():
    progress = Progress(None, "references", "fits", interactive=False)
    progress.update(3, model="gbm")
    assert re.fullmatch(r"references: 3 fits, 0:\d\d elapsed, model gbm", progress.line())


def test_a_terminal_gets_a_tqdm_bar(capsys):
    progress = Progress(10, "final fit", "epochs", interactive=True)
    progress.update(4, view="standard")
    assert progress.bar is not None and progress.bar.n == 4
    progress.close()
