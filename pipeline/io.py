"""File writing for the stages: atomic files, and a stage's whole output set swapped in at once.

A file is written to a temp file and renamed into place; a stage's outputs are written into a
temporary directory that replaces the old one in one step, so a kill leaves the old set or
the new set, never a mix, and the next run clears what a killed one left behind. Each temp
file and directory is locked (flock) by the process building it for as long as it does, and
only unlocked ones are cleared: a second run at the same time leaves the first one's alone.
A write that fails (a full disk, a file-size limit, a read-only or immutable folder) is a
WriteError naming the output and why; the temp file or directory goes, the old output stays.

Models are pickles, and loading a pickle runs whatever code it carries: each is written with
the SHA-256 of its bytes beside it (`model.pkl.sha256`, as `sha256sum` writes it), and is
loaded only when its bytes still have that hash. This catches a model file replaced or
damaged on its own; it cannot vouch for a store where someone may rewrite both files, which
is why models must come only from trusted stores (docs/security.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

SHA256_SUFFIX = ".sha256"
_RENAME_EXCHANGE = 2  # renameat2 flag (Linux 3.15+): swap two paths atomically
_AT_FDCWD = -100
_NO_ROOM = {errno.EFBIG, errno.ENOSPC, errno.EDQUOT}
# what a user can do about a failed write, by its errno
_WHY = {
    errno.EFBIG: "the disk or a file-size limit is full",
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EACCES: "the file or its folder is read-only or immutable: see ls -l and lsattr",
    errno.EPERM: "the file or its folder is read-only or immutable: see ls -l and lsattr",
    errno.EROFS: "the file system is mounted read-only",
}


class WriteError(Exception):
    """An output could not be written: the disk or a file-size limit is full, or the file or
    its folder cannot be written. Names the output (never the temp name) and why."""

    def __init__(self, path: str | Path, reason: OSError) -> None:
        self.path, self.reason = Path(path), reason
        why = os.strerror(reason.errno) if reason.errno else str(reason)  # (pyarrow: wordy)
        hint = _WHY.get(reason.errno or 0)
        super().__init__(f"cannot write {self.path}: {why}" + (f" ({hint})" if hint else ""))


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Around the system calls that write `path`: an OSError they raise is a WriteError
    naming `path` (they touch nothing else, so it is always a failed write of it)."""
    try:
        yield
    except OSError as exc:
        raise WriteError(path, exc) from exc


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same directory and an atomic rename."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        lock, tmp = _owned_temp(path.parent, f".{path.name}.", directory=False)
    try:
        with writing(path):
            with os.fdopen(os.dup(lock), "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private: normal rights
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(lock)


@contextlib.contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Build a stage's output directory under a temp name; it replaces `path` in one step only
    if the block succeeds. Leftovers of a killed earlier run are cleared first. A write in
    the block that fails for want of room or rights is a WriteError naming the file under
    `path` it was for."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        clear_leftovers(path)
        lock, tmp = _owned_temp(path.parent, f".{path.name}.", directory=True)
    try:
        with writing(path):
            tmp.chmod(0o777 & ~_umask())
        try:
            yield tmp
        except WriteError as exc:  # from write_json & co. into the temp directory
            raise WriteError(_in_place(exc.path, tmp, path), exc.reason) from exc.reason
        except OSError as exc:  # a library's own write into it (a figure, a frame)
            written = _failed_write(exc, tmp, path)
            if written is None:
                raise
            raise WriteError(written, exc) from exc
        with writing(path):
            _fsync_tree(tmp)
            if path.exists() and _exchange(tmp, path):
                shutil.rmtree(tmp, ignore_errors=True)  # now the old set
            elif path.exists():  # no atomic exchange here: two renames, repaired next run
                _swap_in_two_renames(tmp, path)
            else:
                os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        os.close(lock)


def check_writable(path: str | Path) -> None:
    """A WriteError now, not after hours of work, if the folder of `path` (an output to come)
    cannot be written: a temp directory is made beside it and removed. A disk that fills up
    meanwhile is still found at the write."""
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        lock, tmp = _owned_temp(path.parent, f".{path.name}.", directory=True)
        try:
            tmp.rmdir()
        finally:
            os.close(lock)


def clear_leftovers(path: Path) -> None:
    """Remove the temp directories and files that runs now gone left beside `path` (a killed
    run's); those a live run holds locked stay (as may, for an instant, a run killed just
    now: the kernel drops its locks as it closes its files, and the next run clears them).
    Put the old set back if a kill fell between the two renames of a non-atomic swap."""
    old = _old(path)
    if old.exists() and not path.exists():
        with _abandoned(old) as gone:
            if gone:
                os.replace(old, path)
    for leftover in path.parent.glob(f".{path.name}.*"):
        with _abandoned(leftover) as gone:
            if gone and leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            elif gone:
                leftover.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_csv(path: str | Path, frame: pd.DataFrame) -> None:
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))


def write_parquet(path: str | Path, frame: pd.DataFrame) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(tmp, index=False)
            os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ModelFileError(ValueError):
    """A model file is missing, or its bytes do not have the SHA-256 recorded for it."""


def sha256_record(path: str | Path) -> Path:
    """Where the SHA-256 of a model file is recorded: beside it, `<name>.sha256`."""
    path = Path(path)
    return path.with_name(path.name + SHA256_SUFFIX)


def save_pickle(path: str | Path, obj: Any) -> str:
    """Write `obj` as a pickle and its SHA-256 beside it (a stage writes both into its output
    directory, which is swapped in whole); return the hash."""
    path = Path(path)
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    atomic_write_text(sha256_record(path), f"{digest}  {path.name}\n")
    return digest


def load_pickle(path: str | Path, record: str | Path | None = None) -> Any:
    """Unpickle a model file only if its bytes have the SHA-256 recorded for it (in `record`,
    by default the `.sha256` file beside it); else ModelFileError, and nothing is run."""
    path = Path(path)
    record = Path(record) if record is not None else sha256_record(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: file not found")
    refuse = ("a model file is a pickle, and loading one runs the code it holds: rebuild it "
              "(dvc repro) or take it only from a trusted store")
    try:
        expected = record.read_text(encoding="utf-8").split()[0].lower()
    except (OSError, UnicodeDecodeError, IndexError):
        raise ModelFileError(f"{path}: no SHA-256 recorded for it ({record.name} is missing "
                             f"or unreadable), so it is not loaded; {refuse}") from None
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ModelFileError(f"{path}: its SHA-256 ({actual[:16]}...) is not the one recorded "
                             f"in {record.name} ({_shown_hash(expected)}), so it is not loaded; "
                             f"{refuse}")
    return pickle.loads(data)


def _shown_hash(text: str) -> str:
    return f"{text[:16]}..." if len(text) > 16 else repr(text)


def file_hash(paths: Iterable[str | Path]) -> str:
    """A short SHA-256 over the bytes of some files (the raw data), in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _old(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _failed_write(exc: OSError, tmp: Path, path: Path) -> Path | None:
    """The output an OSError raised in an atomic_dir block failed to write, or None if it is
    not such a failure (a missing input, a bug): an error for want of room or rights on a
    file in the temp directory, or for want of room with no file named (a write that fails
    at flush or close names none; then the directory is named)."""
    if exc.errno not in _WHY:
        return None
    if exc.filename is None:
        return path if exc.errno in _NO_ROOM else None
    if not isinstance(exc.filename, (str, bytes, os.PathLike)):
        return None
    written = Path(os.fsdecode(exc.filename))
    return _in_place(written, tmp, path) if written.is_relative_to(tmp) else None


def _in_place(written: Path, tmp: Path, path: Path) -> Path:
    """The output a file in the temp directory stands for: tmp/x -> path/x."""
    return path / written.relative_to(tmp) if written.is_relative_to(tmp) else written


def _owned_temp(parent: Path, prefix: str, directory: bool) -> tuple[int, Path]:
    """A new temp directory (or file) in `parent`, and an open descriptor holding an exclusive
    flock on it: the mark of a live owner, released when the descriptor is closed or the
    process ends, however it ends. A run clearing leftovers may remove the new one in the
    instant before it is locked; then another is made."""
    while True:
        if directory:
            name = tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=".tmp")
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY)
        else:
            fd, name = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=".tmp")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            still_there = os.path.samestat(os.fstat(fd), os.stat(name))
        except FileNotFoundError:
            still_there = False
        if still_there:
            return fd, Path(name)
        os.close(fd)


@contextlib.contextmanager
def _abandoned(path: Path) -> Iterator[bool]:
    """Whether no live process holds `path` locked; if so, it stays locked by this one for
    the block (to remove or restore it). Anything that cannot be told is left alone."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:  # gone meanwhile, or a symlink: not ours
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live run (or locks unsupported here)
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _swap_in_two_renames(tmp: Path, path: Path) -> None:
    """The new set in, the old one out, where no atomic exchange exists: the old set is
    locked while it is set aside, so a run clearing leftovers meanwhile leaves it alone."""
    old = _old(path)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where not supported."""
    libc = _libc()
    if libc is None:
        return False
    result = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                            _RENAME_EXCHANGE)
    return result == 0


def _libc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        libc.renameat2  # noqa: B018 - glibc 2.28+; absent elsewhere
    except (OSError, AttributeError):
        return None
    return libc


def _fsync_tree(directory: Path) -> None:
    """Flush every file of a finished output set to disk before it is swapped in."""
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
