"""Outputs are written to a temp file (or directory) and renamed: a process killed at any
moment, even by SIGKILL, leaves the old output or the complete new one, never a part."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.io import load_pickle, safe_url

from .conftest import REPO

WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipeline.io import atomic_dir, save_pickle

    target, kind = Path(sys.argv[1]), sys.argv[2]
    i = 0
    while True:
        i += 1
        if kind == "file":  # a model: 4 MB, every byte telling which write it came from
            save_pickle(target, {"i": i, "payload": bytes([i % 256]) * 4_000_000})
        else:  # a stage's output directory (prepare, evaluate's plots): two files
            with atomic_dir(target) as tmp:
                (tmp / "a.txt").write_text(str(i) * 100_000)
                (tmp / "b.txt").write_text(str(i) * 100_000)
        print(i, flush=True)
""")


def kill_while_writing(tmp_path: Path, kind: str) -> Path:
    target = tmp_path / ("model.pkl" if kind == "file" else "prepared")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), kind],
                            env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline()  # at least one complete write
    time.sleep(random.uniform(0.0, 0.4))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return target


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_never_leaves_a_half_written_file(tmp_path, attempt):
    target = kill_while_writing(tmp_path, "file")
    data = load_pickle(target)  # never truncated
    assert data["payload"] == bytes([data["i"] % 256]) * 4_000_000


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_never_leaves_a_half_written_directory(tmp_path, attempt):
    target = kill_while_writing(tmp_path, "dir")
    if not target.exists():  # killed between moving the old one aside and the new one in
        old = tmp_path / ".prepared.old"
        assert old.exists()
        target = old
    a, b = (target / "a.txt").read_text(), (target / "b.txt").read_text()
    assert a == b and len(a) >= 100_000


def test_safe_url_hides_the_password():
    assert safe_url("postgresql+psycopg://me:secret@db:5432/x") == \
        "postgresql+psycopg://***@db:5432/x"
    assert safe_url("sqlite:///data/optuna.db") == "sqlite:///data/optuna.db"
