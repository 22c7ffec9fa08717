"""Outputs are written to a temp file (or directory) and renamed: a process killed at any
moment, even by SIGKILL, leaves the old output or the complete new one, never a part."""

from __future__ import annotations

import errno
import fcntl
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.io import (
    ModelFileError,
    WriteError,
    atomic_dir,
    clear_leftovers,
    load_pickle,
    save_pickle,
    sha256_record,
)

from .conftest import REPO

WRITER = textwrap.dedent("""
    import pickle
    import sys
    from pathlib import Path
    from pipeline.io import atomic_dir, atomic_write_bytes

    target, kind = Path(sys.argv[1]), sys.argv[2]
    i = 0
    while True:
        i += 1
        if kind == "file":  # a model's bytes: 4 MB, every byte telling which write it came from
            payload = bytes([i % 256]) * 4_000_000
            atomic_write_bytes(target, pickle.dumps({"i": i, "payload": payload}))
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
    for leftover in tmp_path.glob(f".{target.name}.*"):
        wait_until_unlocked(leftover)
    return target


def wait_until_unlocked(path: Path, seconds: float = 10.0) -> None:
    """Wait for a killed process's lock on `path` to go: the kernel drops a killed process's
    flocks as it closes its files, which can end a moment after the process is reaped."""
    fd = os.open(path, os.O_RDONLY)
    deadline = time.monotonic() + seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                assert time.monotonic() < deadline, f"{path} still locked {seconds} s after " \
                                                    "its process was killed"
                time.sleep(0.01)
    finally:
        os.close(fd)


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_never_leaves_a_half_written_file(tmp_path, attempt):
    target = kill_while_writing(tmp_path, "file")
    data = pickle.loads(target.read_bytes())  # never truncated
    assert data["payload"] == bytes([data["i"] % 256]) * 4_000_000


@pytest.mark.parametrize("attempt", range(3))
def test_sigkill_never_leaves_a_half_written_directory(tmp_path, attempt):
    """The new set is swapped in with one atomic exchange: the old set or the new one is in
    place at every moment, and the next run clears what the killed one left beside it."""
    target = kill_while_writing(tmp_path, "dir")
    assert target.exists()
    a, b = (target / "a.txt").read_text(), (target / "b.txt").read_text()
    assert a == b and len(a) >= 100_000
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("next")
    assert [p.name for p in tmp_path.iterdir()] == ["prepared"]  # no temp dir left
    assert [p.name for p in target.iterdir()] == ["a.txt"]


def test_a_kill_between_the_two_renames_of_a_plain_swap_is_repaired(tmp_path):
    """Where the atomic exchange is missing, the swap is two renames; a kill between them
    leaves the old set aside, and the next run puts it back before anything else."""
    old = tmp_path / ".prepared.old"
    old.mkdir()
    (old / "a.txt").write_text("old set")
    (tmp_path / ".prepared.x1y2.tmp").mkdir()  # the killed run's half-built new set
    clear_leftovers(tmp_path / "prepared")
    assert (tmp_path / "prepared" / "a.txt").read_text() == "old set"
    assert [p.name for p in tmp_path.iterdir()] == ["prepared"]


HOLDER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pipeline.io import atomic_dir

    with atomic_dir(Path(sys.argv[1])) as tmp:
        (tmp / "a.txt").write_text("first writer")
        print(tmp, flush=True)
        sys.stdin.readline()  # held open until the test says go on
        (tmp / "b.txt").write_text("first writer")
""")


def test_a_second_run_leaves_a_live_runs_temporary_directory_alone(tmp_path):
    """Two `train`s at once: the second clears only leftovers of processes that are gone,
    so the first, still writing, finishes with its whole set."""
    target = tmp_path / "models"
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(target)],
                             env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        building = Path(first.stdout.readline().strip())
        assert building.is_dir()  # the first is inside its block
        with atomic_dir(target) as tmp:  # the second run, start to end
            (tmp / "a.txt").write_text("second writer")
        assert building.is_dir()
        first.stdin.write("go on\n")
        first.stdin.close()
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
        first.wait()
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "first writer",
                                                                  "b.txt": "first writer"}
    assert [p.name for p in tmp_path.iterdir()] == ["models"]


FULL = textwrap.dedent("""
    import resource
    import sys
    from pathlib import Path
    from pipeline.io import WriteError, atomic_dir, write_json

    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # as a full disk: EFBIG
    target, how = Path(sys.argv[1]), sys.argv[2]
    try:
        with atomic_dir(target) as tmp:
            write_json(tmp / "small.json", {"fits": True})
            if how == "library":  # a library writing into the output directory itself
                (tmp / "plots").mkdir()
                (tmp / "plots" / "big.png").write_bytes(b"x" * 5000)
            else:
                write_json(tmp / "big.json", ["x" * 5000])
    except WriteError as exc:
        print(exc)
""")


@pytest.mark.parametrize("how, name", [("helper", "big.json"), ("library", "")])
def test_a_write_that_fails_names_the_output_file_and_leaves_the_old_set(tmp_path, how, name):
    """A full disk (here a file-size limit) while a stage's set is written: a WriteError
    naming the file as it would be in place (never the temp directory; the directory when a
    library's write failed at flush, which names no file), the old set as it was and
    nothing left beside it."""
    target = tmp_path / "models"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("old set")
    done = subprocess.run([sys.executable, "-c", FULL, str(target), how], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    named = target / name if name else target
    assert done.stdout == (f"cannot write {named}: File too large (the disk or a file-size "
                           "limit is full)\n"), done.stderr
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a.txt": "old set"}
    assert [p.name for p in tmp_path.iterdir()] == ["models"]


def test_an_error_that_is_not_a_failed_write_of_the_output_stays_what_it_is(tmp_path):
    """Only a write into the output that failed for want of room or rights becomes a
    WriteError: a missing input, a refused write elsewhere or a refusal naming no file keeps
    its own type (and traceback)."""
    with pytest.raises(FileNotFoundError), atomic_dir(tmp_path / "out"):
        (tmp_path / "missing.csv").read_text()
    elsewhere = str(tmp_path / "elsewhere.txt")
    with pytest.raises(PermissionError) as raised, atomic_dir(tmp_path / "out"):
        raise PermissionError(errno.EACCES, "Permission denied", elsewhere)
    assert not isinstance(raised.value, WriteError)
    with pytest.raises(PermissionError) as raised, atomic_dir(tmp_path / "out"):
        raise PermissionError(errno.EPERM, "Operation not permitted")  # no file: not a write
    assert not isinstance(raised.value, WriteError)
    assert not (tmp_path / "out").exists() and list(tmp_path.iterdir()) == []


def test_a_failing_stage_leaves_the_old_set(tmp_path):
    target = tmp_path / "out"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("second, half done")
        raise RuntimeError("the stage failed")
    assert (target / "a.txt").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_model_file_is_loaded_only_with_the_sha256_recorded_for_it(tmp_path):
    """save_pickle records the hash beside the file (as sha256sum writes it); load_pickle
    unpickles nothing whose bytes differ from the record, or that has no record."""
    path = tmp_path / "model.pkl"
    digest = save_pickle(path, {"weights": [1.0, 2.0]})
    record = sha256_record(path)
    assert record.read_text() == f"{digest}  model.pkl\n"
    assert load_pickle(path) == {"weights": [1.0, 2.0]}

    class Loud:  # what a replaced pickle can do: run code on load
        def __reduce__(self):
            return (Path.write_text, (tmp_path / "ran", "code ran"))

    path.write_bytes(pickle.dumps(Loud()))  # replaced, the record left as it was
    with pytest.raises(ModelFileError, match=r"model\.pkl: its SHA-256 \(\w{16}\.\.\.\) is not "
                                             r"the one recorded in model\.pkl\.sha256"):
        load_pickle(path)
    record.unlink()
    with pytest.raises(ModelFileError, match=r"model\.pkl: no SHA-256 recorded for it "
                                             r"\(model\.pkl\.sha256 is missing"):
        load_pickle(path)
    assert not (tmp_path / "ran").exists()  # nothing was unpickled
    with pytest.raises(ModelFileError, match=r"nowhere\.pkl: file not found"):
        load_pickle(tmp_path / "nowhere.pkl")
