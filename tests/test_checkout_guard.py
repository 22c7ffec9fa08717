"""The session guard in conftest.py: it sees any change to a checkout's generated outputs."""

from __future__ import annotations

import os

from .conftest import changes, snapshot


def test_the_guard_names_every_output_created_changed_or_removed(tmp_path):
    """Created (a folder too), changed in place with the same size and mtime, removed: each
    is named, and an untouched checkout gives nothing."""
    (tmp_path / "data" / "tune").mkdir(parents=True)
    kept = tmp_path / "data" / "tune" / "best_params.json"
    kept.write_text('{"value": 0.1}')
    (tmp_path / "dvc.lock").write_text("schema: '2.0'")
    (tmp_path / "data" / "raw").mkdir()  # not generated: never looked at
    before = snapshot(tmp_path)
    assert changes(before, snapshot(tmp_path)) == []
    stat = kept.stat()
    kept.write_text('{"value": 0.2}')  # same size...
    os.utime(kept, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # ... and the same mtime
    (tmp_path / "data" / "timings").mkdir()
    (tmp_path / "dvc.lock").unlink()
    (tmp_path / "data" / "raw" / "train.csv").write_text("Id\n1\n")
    assert changes(before, snapshot(tmp_path)) == [
        "created data/timings/", "removed dvc.lock", "changed data/tune/best_params.json"]
