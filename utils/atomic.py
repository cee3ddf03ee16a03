"""The one way files are replaced: written beside their place, then renamed over it in one step, so a reader
sees the old file or the new one, never half of one."""
import glob
import os
import tempfile
from pathlib import Path

from utils.failures import RunFailure

PARTIAL_PREFIX = ".partial-"


def atomic_write(path, write):
    """Create `path` by write(temporary path) in the same folder, then one rename. A writer killed mid-save
    leaves `.partial-<name>-*`, which the next save of <name> removes. An OSError or RuntimeError of the write
    (a full disk: torch.save reports it as a RuntimeError) becomes a RunFailure saying what was kept; any other
    error of `write` is raised as it is, the temporary file removed."""
    folder, name = os.path.split(path)
    folder = folder or "."
    os.makedirs(folder, exist_ok=True)
    for stale in glob.glob(os.path.join(glob.escape(folder), f"{PARTIAL_PREFIX}{glob.escape(name)}-*")):
        os.remove(stale)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f"{PARTIAL_PREFIX}{name}-")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; written files are shared like any result
        os.replace(tmp, path)
    except BaseException as error:
        os.remove(tmp)
        if isinstance(error, (OSError, RuntimeError)):
            raise RunFailure(f"could not write {path} ({first_line(error)}); "
                             f"{'the previous file is kept' if os.path.exists(path) else 'nothing was written'}") from None
        raise


def atomic_write_text(path, text):
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
