"""File output a reader can trust: a folder shows either the whole new set of
files or the whole old one, never a mix, and no run leaves debris behind.

Writers stage their files in a hidden sibling folder (same file system, so
renames are atomic), then `publish` moves the set in as one step.

For the folders `fmnist train` and `fmnist export` own (`whole_folder=True`), on Linux
the step is one system call: the new folder is assembled beside the old one (the
files we keep hard-linked, the new set moved in) and the two are swapped with
renameat2(RENAME_EXCHANGE), so a reader, even a `kill -9` at any moment, sees the
whole old folder or the whole new one. Elsewhere (another OS or file system, a folder
too large to assemble, an evaluate into any folder) `publish` falls back to a
transaction: it first moves the old files it replaces into a hidden backup folder,
then the new ones into place; any failure (or Ctrl-C) moves everything back, and a
journal written before the first rename lets the next run undo a publish that a
`kill -9` cut short. Hidden folders of processes that no longer exist are removed
by the next run in the same folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import itertools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from fmnist_keras.errors import OutputError

STAGING_PREFIX = ".staging-"
BACKUP_PREFIX = ".previous-"
JOURNAL = ".publish-journal.json"
NEXT_INFIX = ".next-"  # `.<folder>.next-<pid>-*`: a folder being assembled beside <folder>
# Assembling a whole folder hard-links each file we keep: beyond this many entries (an
# --output pointed at a home folder, say) the transaction is used instead.
MAX_EXCHANGE_ENTRIES = 10_000
_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


class _NoExchange(Exception):
    """The whole-folder swap is not possible here: use the transaction."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def os_error_text(exc: OSError) -> str:
    """`No space left on device`, not `[Errno 28] No space left on device: '/x/.tmp123'`."""
    return exc.strerror or str(exc) or type(exc).__name__


def ensure_writable_dir(path: Path) -> Path:
    """Create `path` if needed and prove we can write there, or raise OutputError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write to output folder {path} ({os_error_text(exc)}); choose another with --output"
        ) from None
    return path


def check_output_folder(path: Path) -> Path:
    """`path` is a writable folder, or one we can create, proven without creating it: so a
    command finds a bad --output in a second, not after minutes of work."""
    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    refused = f"cannot write to output folder {path}"
    if not existing.is_dir():
        raise OutputError(f"{refused}: {existing} is not a folder; choose another with --output")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise OutputError(f"{refused} ({os_error_text(exc)}); choose another with --output") from None
    return path


def check_output_file(path: Path) -> Path:
    """`path` may become a file we publish by renaming: refuse a device, FIFO or folder there
    (renaming over /dev/null would replace the system's), in one line."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise OutputError(f"{path} is a device, FIFO or folder, not a file; pass the path of a file to write")
    return path


@contextlib.contextmanager
def output_folder(path: Path) -> Iterator[Path]:
    """`ensure_writable_dir`, and remove the folder again if this run created it and fails leaving it empty."""
    path = Path(path)
    created = not path.exists()
    ensure_writable_dir(path)
    try:
        yield path
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds when empty
        raise


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` on success.

    The temporary name keeps the target's suffix because some writers (Keras)
    insist on it. On any error the temporary file is removed and `target` is
    left as it was.
    """
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=target.suffix)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; published files get the usual mode
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text)


def write_json(target: Path, obj: object) -> None:
    """Strict JSON: a NaN or inf raises instead of writing invalid `NaN` tokens."""
    write_text(target, json.dumps(obj, indent=2, allow_nan=False) + "\n")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


@contextlib.contextmanager
def folder_lock(folder: Path, name: str, what: str) -> Iterator[None]:
    """Hold `folder/.name.lock` (holding our pid) while the block runs: a second process that
    wants the same lock is refused in one line naming the first, and never touches its files.
    A lock left by a process that no longer exists (kill -9, a reboot) is taken over."""
    lock = folder / f".{name}.lock"
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            text = lock.read_text().strip() if lock.is_file() else ""
            if text.isdigit() and int(text) != os.getpid() and _pid_alive(int(text)):
                raise OutputError(f"another {what} (pid {text}) is using {folder}; wait for it to finish, "
                                  "or pass --output to use another folder") from None  # fmt: skip
            lock.unlink(missing_ok=True)  # its process is gone
    else:
        raise OutputError(f"cannot take {lock}; another {what} may have just started there")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _owner_pid(name: str, prefix: str) -> int | None:
    """The process id in `.staging-<pid>-xxxx`, or None for a name not made by `_hidden_dir`."""
    head = name[len(prefix) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _hidden_dir(parent: Path, prefix: str) -> Path:
    return Path(tempfile.mkdtemp(dir=parent, prefix=f"{prefix}{os.getpid()}-"))


def clean_up(folder: Path) -> None:
    """Undo a publish that a killed process left half done, and remove dead processes' hidden folders."""
    journal = folder / JOURNAL
    if journal.exists():
        try:
            plan = json.loads(journal.read_text())
            pid = int(plan["pid"])
            plan = {"pid": pid, **{k: plan[k] for k in ("staged", "backup", "names", "old")}}
        except (OSError, ValueError, KeyError, TypeError):
            raise OutputError(
                f"{journal} is unreadable; a publish into {folder} was interrupted. Check the folder's files, "
                "then delete that journal"
            ) from None
        if pid != os.getpid() and _pid_alive(pid):
            raise OutputError(f"another fmnist process (pid {pid}) is publishing to {folder}; wait for it to finish")
        try:
            _roll_back(folder, plan)
            journal.unlink()
        except OSError as exc:
            raise OutputError(
                f"could not undo the publish interrupted in {folder} ({os_error_text(exc)}: {exc.filename}); "
                f"its old files are in {folder / plan['backup']}"
            ) from None
    for path in folder.glob(".*"):
        for prefix in (STAGING_PREFIX, BACKUP_PREFIX):
            pid = _owner_pid(path.name, prefix) if path.name.startswith(prefix) else None
            if pid is not None and pid != os.getpid() and not _pid_alive(pid) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
    beside = f".{folder.resolve().name}{NEXT_INFIX}"
    for path in folder.resolve().parent.glob(f"{beside}*"):  # a swap a kill cut short, before or after it
        pid = _owner_pid(path.name, beside)
        if pid is not None and pid != os.getpid() and not _pid_alive(pid) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(parent: Path) -> Iterator[Path]:
    """A hidden folder inside `parent` for a set of files to publish; always removed afterwards."""
    clean_up(parent)
    path = _hidden_dir(parent, STAGING_PREFIX)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _roll_back(folder: Path, plan: dict) -> None:
    """Put the old set back: new files that arrived go back to staging, backed-up ones return."""
    staged, backup = folder / plan["staged"], folder / plan["backup"]
    for name in plan["names"]:
        if staged.is_dir() and not _exists(staged / name) and _exists(folder / name):
            os.replace(folder / name, staged / name)  # it came from staging: send it back
    for name in plan["old"]:
        if _exists(backup / name):
            os.replace(backup / name, folder / name)
    shutil.rmtree(backup, ignore_errors=True)


def publish(
    staged: Path, destination: Path, names: list[str], replaces: Iterable[str] = (), whole_folder: bool = False
) -> None:
    """Move the staged `names` into `destination` as one set.

    Files named in `replaces` (and the old versions of `names`) leave the folder
    with it, so nothing stale from an earlier, wider set remains. Either all of
    that happens, or the folder is left exactly as it was and OutputError says why.
    `whole_folder`: `destination` is ours (a run's or an export's folder), so it may be
    swapped whole, in one step (see the module's docstring).
    """
    replaces = list(replaces)
    _check_staged(staged, destination, names)
    if whole_folder:
        try:
            return _publish_by_exchange(staged, destination, names, replaces)
        except _NoExchange:
            pass
    _publish_by_transaction(staged, destination, names, replaces)


def _check_staged(staged: Path, destination: Path, names: list[str]) -> None:
    missing = [n for n in names if not _exists(staged / n)]
    if missing:
        raise RuntimeError(f"publish: {missing} were never staged")  # a bug, not a user error
    for name in names:
        target = destination / name
        if _exists(target) and target.is_dir() != (staged / name).is_dir():
            raise OutputError(
                f"{target} is a {'folder' if target.is_dir() else 'file'} and the new {name} is not; "
                "move it away or write elsewhere"
            )


def _exchange(first: Path, second: Path) -> None:
    """Swap two folders' names in one system call (Linux renameat2 RENAME_EXCHANGE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    swap = getattr(libc, "renameat2", None)
    if swap is None:
        raise _NoExchange
    if swap(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(second))


def _assemble(destination: Path, staged: Path, names: list[str], drop: set[str]) -> Path:
    """The new folder beside `destination`: every entry we keep hard-linked, the new set moved in."""
    kept = [e for e in os.scandir(destination) if e.name not in drop and e.name != staged.name]
    entries = itertools.islice(destination.rglob("*"), MAX_EXCHANGE_ENTRIES + 1)  # stops early in a large folder
    if sum(1 for _ in entries) > MAX_EXCHANGE_ENTRIES:
        raise _NoExchange
    folder = Path(tempfile.mkdtemp(prefix=f".{destination.name}{NEXT_INFIX}{os.getpid()}-", dir=destination.parent))
    shutil.copystat(destination, folder)
    for entry in kept:
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, folder / entry.name, symlinks=True, copy_function=os.link)
        else:
            os.link(entry.path, folder / entry.name, follow_symlinks=False)
    for name in names:
        os.replace(staged / name, folder / name)
    return folder


def _publish_by_exchange(staged: Path, destination: Path, names: list[str], replaces: list[str]) -> None:
    if sys.platform != "linux" or destination.resolve() == destination.resolve().parent or destination.is_symlink():
        raise _NoExchange
    destination = destination.resolve()
    folder = None
    try:
        folder = _assemble(destination, staged, names, set(names) | set(replaces))
        _exchange(folder, destination)  # the commit point: the one step a reader can see
    except BaseException as exc:
        if folder is not None:
            for name in names:  # the new set goes back to staging, for the transaction or for nothing
                if _exists(folder / name) and not _exists(staged / name):
                    os.replace(folder / name, staged / name)
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(exc, (OSError, _NoExchange)) and not is_disk_full(exc):
            raise _NoExchange from None  # hard links or renameat2 refused here: the transaction instead
        raise
    shutil.rmtree(folder, ignore_errors=True)  # it now holds the old folder


def _publish_by_transaction(staged: Path, destination: Path, names: list[str], replaces: list[str]) -> None:
    old = [n for n in dict.fromkeys([*names, *replaces]) if _exists(destination / n)]
    backup = _hidden_dir(destination, BACKUP_PREFIX)
    plan = {"pid": os.getpid(), "staged": staged.name, "backup": backup.name, "names": names, "old": old}
    write_json(destination / JOURNAL, plan)
    try:
        for name in old:
            os.replace(destination / name, backup / name)
        for name in names:
            os.replace(staged / name, destination / name)
    except BaseException as exc:
        _roll_back(destination, plan)
        (destination / JOURNAL).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            where = exc.filename or destination
            raise OutputError(
                f"could not publish to {destination} ({os_error_text(exc)}: {where}); nothing was changed there"
            ) from None
        raise
    (destination / JOURNAL).unlink()  # the commit point: from here on the new set stands
    shutil.rmtree(backup, ignore_errors=True)


@contextlib.contextmanager
def full_disk_reported(folder: Path, what_now: str) -> Iterator[None]:
    """A full disk while writing into `folder` becomes one OutputError line, not a cascade of tracebacks."""
    try:
        yield
    except Exception as exc:
        if is_disk_full(exc):
            raise OutputError(f"no space left on the device of {folder}; {what_now}") from None
        raise


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, whether raised as OSError or wrapped in TensorFlow's or h5py's text."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text or "File too large" in text
