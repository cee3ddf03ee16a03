"""A lock file that holds its owner's pid, so that two runs cannot write into one folder at once; a lock whose
process is gone (killed, or on a crashed machine) is stale and taken over."""
import contextlib
import os

from utils.failures import UsageError


def holder(path):
    """The pid in the lock file at path if that process is still running, else None."""
    try:
        pid = int(open(path, encoding="utf-8").read().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):  # no file, no pid in it, or no such process
        return None
    return pid


@contextlib.contextmanager
def folder_lock(folder, lock_name, what):
    """Hold folder/lock_name while inside; another live holder is a UsageError naming it and `what` it does."""
    path = os.path.join(folder, lock_name)
    os.makedirs(folder, exist_ok=True)
    pid = holder(path)
    if pid is not None and pid != os.getpid():
        raise UsageError(f"{folder} is in use: process {pid} is {what} into it (lock {path}); wait for it to end, "
                         f"or delete the lock if that process is not this program")
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)  # stale: its process is gone
    try:
        with open(path, "x", encoding="utf-8") as lock:  # "x": of two runs starting at once, one fails here
            lock.write(f"{os.getpid()}\n")
    except FileExistsError:
        raise UsageError(f"{folder} is in use: another process took its lock {path} just now") from None
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
