"""publish(whole_folder=True): the run's or export's folder swapped whole, in one system call."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fmnist_keras.system import publish as files

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux's; elsewhere the journal runs")

OLD = {"model_int8.tflite": "old int8", "report.json": "old report", "labels.txt": "old labels"}
NEW = {"model_float32.tflite": "new float", "report.json": "new report", "labels.txt": "new labels"}
FOREIGN = {"notes.txt": "the user's", ".train_state/config.json": "an interrupted run's"}


def _folder(tmp_path: Path) -> Path:
    out = tmp_path / "export"
    for name, text in {**OLD, **FOREIGN}.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return out


def _contents(folder: Path, with_staging: bool = False) -> dict:
    """Every file and its text; a writer's hidden staging folder (work in progress, never part
    of the set) only when asked."""
    found = {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}
    return {k: v for k, v in found.items() if with_staging or not k.startswith(files.STAGING_PREFIX)}


def test_the_folder_is_swapped_whole_keeping_files_we_do_not_own(tmp_path):
    out = _folder(tmp_path)
    inode = out.stat().st_ino
    with files.staging_dir(out) as staged:
        for name, text in NEW.items():
            (staged / name).write_text(text)
        files.publish(staged, out, list(NEW), replaces=list(OLD), whole_folder=True)
    assert _contents(out) == {**NEW, **FOREIGN}
    assert out.stat().st_ino != inode  # a new folder took the name: one step, not file by file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # the old folder is gone too


_SLOW_PUBLISH = textwrap.dedent('''
    import os, sys, time
    from pathlib import Path
    from fmnist_keras.system import publish as files
    out = Path(sys.argv[1])
    def slowed(call):  # widen the window a kill or a reader can hit, whichever way it publishes
        def slow(*args, **kwargs):
            time.sleep(0.2)
            return call(*args, **kwargs)
        return slow
    os.link, os.replace = slowed(os.link), slowed(os.replace)
    with files.staging_dir(out) as staged:
        for name, text in {new}.items():
            (staged / name).write_text(text)
        print("staged", flush=True)
        files.publish(staged, out, list({new}), replaces=list({old}), whole_folder=True)
    print("done", flush=True)
''').format(new=NEW, old=OLD)


def _slow_publisher(out: Path) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", _SLOW_PUBLISH, str(out)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "staged"
    return process


def test_a_kill_9_mid_publish_leaves_the_old_folder_whole_and_the_next_run_cleans_up(tmp_path):
    out = _folder(tmp_path)
    before = _contents(out)
    publisher = _slow_publisher(out)
    time.sleep(0.3)  # inside the assembly of the new folder
    publisher.send_signal(signal.SIGKILL)
    publisher.wait()
    assert _contents(out) == before  # no fmnist command has run since: readers saw the old set, whole
    with files.staging_dir(out):  # the next run in the folder removes the dead one's debris
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert _contents(out, with_staging=True) == before


def _snapshot(fd: int, prefix: str = "") -> dict:
    """Every file under an open folder and its text, read through the folder's descriptor: what a
    reader that opened the folder once (an app, a copy, a sync) sees, whatever renames happen."""
    found = {}
    for entry in os.scandir(fd):
        if entry.name.startswith(files.STAGING_PREFIX):
            continue
        if entry.is_dir():
            sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            try:
                found.update(_snapshot(sub, f"{prefix}{entry.name}/"))
            finally:
                os.close(sub)
        else:
            with open(os.open(entry.name, os.O_RDONLY, dir_fd=fd)) as f:
                found[prefix + entry.name] = f.read()
    return found


def test_a_reader_sees_the_whole_old_set_or_the_whole_new_one(tmp_path):
    out = _folder(tmp_path)
    old, new = _contents(out), {**NEW, **FOREIGN}
    publisher = _slow_publisher(out)
    seen = set()
    while publisher.poll() is None:
        fd = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
        try:
            snapshot = _snapshot(fd)
        except FileNotFoundError:  # this reader held the old folder while it was removed after the swap
            continue
        finally:
            os.close(fd)
        # The new set, whole; or the old one (whole, or with files gone as it is removed after the
        # swap): never a mix of the two.
        assert snapshot == new or snapshot.items() <= old.items(), snapshot
        seen.add("new" if snapshot == new else "old" if snapshot == old else "partly removed")
    assert publisher.returncode == 0 and _contents(out) == new
    assert "old" in seen  # the reader did look while the publish was under way


def test_without_renameat2_or_hard_links_the_transaction_publishes(tmp_path, monkeypatch):
    out = _folder(tmp_path)

    def refuse(*_):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    with files.staging_dir(out) as staged:
        for name, text in NEW.items():
            (staged / name).write_text(text)
        files.publish(staged, out, list(NEW), replaces=list(OLD), whole_folder=True)
    assert _contents(out) == {**NEW, **FOREIGN}
