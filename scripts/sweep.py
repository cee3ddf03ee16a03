"""Run run.py once per point of a grid, each point in its own folder; a rerun skips finished points.

    python scripts/sweep.py OUT [--flag VALUE...]... -- FLAGS...

Each `--flag VALUE...` before `--` is a grid axis (a run.py flag and its values); the grid is their
product. A point runs `python -u run.py FLAGS --flag value ... EXTRA_ARGS` (env, split on blanks)
inside OUT/<point>/, where <point> names the axis values (spec_k-3__spec_sigma-0.7), so run.py's
result files of that point collect there, its output in run.log. SWEEP_ARGS (env, `--flag value ...`)
fixes grid axes: an axis it (or EXTRA_ARGS) names shrinks to that value; its other flags are ignored,
so one SWEEP_ARGS can serve sweeps with different axes.

OUT/<point>/point.json (its flags, written for every point at the start) tells the analysis what the
grid is; OUT/<point>/done (its command, written atomically after run.py succeeded) marks it finished. A
point is skipped when its done file holds the same command (the same flag values, in any order); one
never run, interrupted or failed is emptied and runs again. A point finished with another command (other
fixed flags, EXTRA_ARGS) stops the sweep before anything runs, its results kept: sweep into another OUT.
A failed point is reported and the sweep goes on; the exit status is 1 if any point failed. Before
anything runs, every point still to run passes run.py's start-up checks from its folder: a bad flag
stops the sweep with run.py's one-line message and exit status 2. OUT/sweep.lock (the sweep's pid) keeps
a second sweep out of OUT while one runs; Ctrl-C stops the sweep with one line and exit status 130, and
the same command resumes it.
"""
import contextlib
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli.checks.outputs import check_output_folder  # noqa: E402
from cli.parser import parse_flags  # noqa: E402
from cli.validate import validate  # noqa: E402
from utils.atomic import atomic_write_text  # noqa: E402
from utils.failures import UsageError, exit_cleanly, exit_on_usage_error  # noqa: E402
from utils.lock import folder_lock  # noqa: E402

RUN_PY = Path(__file__).resolve().parents[1] / "run.py"
POINT_FILE, DONE_FILE, LOG_FILE, LOCK_FILE = "point.json", "done", "run.log", "sweep.lock"


def flag_words(argv):
    """{flag: (the words after it up to the next flag)} of a run.py command line; the last occurrence wins."""
    words, flag = {}, None
    for token in argv:
        if token.startswith("--"):
            flag = token
            words[flag] = ()
        elif flag is not None:
            words[flag] += (token,)
    return words


def flag_values(argv):
    """{flag: value} of a run.py command line (the last value wins; a bare switch is True)."""
    return {flag: words[0] if words else True for flag, words in flag_words(argv).items()}


def parse_grid(tokens):
    """[(flag, [values])] from `--flag v1 v2 --other w1 ...`."""
    axes = []
    for token in tokens:
        if token.startswith("--"):
            if token in dict(axes):
                raise UsageError(f"grid flag {token} given twice")
            axes.append((token, []))
        elif not axes:
            raise UsageError(f"grid value {token!r} before any grid flag")
        else:
            axes[-1][1].append(token)
    empty = [flag for flag, values in axes if not values]
    if empty:
        raise UsageError(f"grid flag {empty[0]} has no values")
    return axes


def fix_axes(axes, extra):
    """Axes with those set in `extra` reduced to its value."""
    fixed = flag_values(extra)
    return [(flag, [fixed[flag]] if flag in fixed else values) for flag, values in axes]


def point_name(point):
    return "__".join(f"{flag[2:]}-{value}" for flag, value in point) or "single"


def grid_points(axes):
    return [tuple(zip([flag for flag, _ in axes], combo)) for combo in itertools.product(*[v for _, v in axes])]


def point_command(fixed, point, extra):
    return [sys.executable, "-u", str(RUN_PY), *fixed, *[t for pair in point for t in pair], *extra]


def same_command(recorded, command):
    """The same program with the same flag values, in whatever order the flags were written."""
    return recorded[:3] == command[:3] and flag_words(recorded[3:]) == flag_words(command[3:])


def is_done(folder, command):
    done = folder / DONE_FILE
    try:
        return done.is_file() and same_command(shlex.split(done.read_text(encoding="utf-8")), command)
    except ValueError:  # not a command line
        return False


def write_point(folder, axes, command):
    folder.mkdir(parents=True, exist_ok=True)
    record = {"axes": [flag for flag, _ in axes], "flags": flag_values(command[3:]), "command": command}
    atomic_write_text(folder / POINT_FILE, json.dumps(record, indent=1))


def run_point(folder, axes, command):
    """Run one point in an emptied folder; True when run.py succeeded (then `done` is written)."""
    shutil.rmtree(folder, ignore_errors=True)
    write_point(folder, axes, command)
    with open(folder / LOG_FILE, "w", encoding="utf-8") as log:
        status = subprocess.run(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT).returncode
    if status == 0:
        atomic_write_text(folder / DONE_FILE, shlex.join(command))
    return status == 0


def log_tail(folder, n=15):
    return "\n".join((folder / LOG_FILE).read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


def split_argv(argv):
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        sys.exit(0)
    if len(argv) < 2 or "--" not in argv or argv[0].startswith("--"):
        raise UsageError("usage: sweep.py OUT [--flag VALUE...]... -- FLAGS... (see --help)")
    cut = argv.index("--")
    return Path(argv[0]), argv[1:cut], argv[cut + 1:]


@contextlib.contextmanager
def inside(folder):
    """Work in folder (made for the while if missing), as run.py does when a point runs there."""
    created = next((p for p in [*reversed(folder.parents), folder] if not p.exists()), None)
    folder.mkdir(parents=True, exist_ok=True)
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)
        if created is not None:
            shutil.rmtree(created)


def differences(done_text, command):
    """What differs between the command a done file records and `command`, for a message."""
    try:
        before = flag_values(shlex.split(done_text)[3:])
    except ValueError:  # not a command line
        return "an unreadable command"
    now = flag_values(command[3:])
    return ", ".join(f"{flag} {before.get(flag, '(not given)')} then, {now.get(flag, '(not given)')} now"
                     for flag in sorted(set(before) | set(now)) if before.get(flag) != now.get(flag)) or "its program"


def check_points(out, commands):
    """No finished point would be redone with other flags; run.py's start-up checks of every point still to run,
    from its folder (relative paths resolve there)."""
    for point, command in commands.items():
        folder = out / point_name(point)
        if is_done(folder, command):
            continue
        if (folder / DONE_FILE).is_file():
            done_text = (folder / DONE_FILE).read_text(encoding="utf-8", errors="replace")
            raise UsageError(f"point {folder} finished with other flags ({differences(done_text, command)}); its "
                             f"results are kept: sweep into another OUT folder, or delete that point to redo it")
        with inside(folder):
            try:
                validate(parse_flags(command[3:]))
            except UsageError as error:
                raise UsageError(f"point {folder.name}: {error}") from None


def announce(out, axes, commands, extra):
    """Print the grid and what is left of it; put every unfinished point's point.json on disk."""
    grid = " x ".join(f"{flag} {{{', '.join(values)}}}" for flag, values in axes) or "one point"
    print(f"sweep into {out}: {grid} = {len(commands)} runs"
          + (f"; appended to every run: {shlex.join(extra)}" if extra else ""))
    todo = [point for point, command in commands.items() if not is_done(out / point_name(point), command)]
    print(f"{len(commands) - len(todo)} of them finished before, {len(todo)} to run", flush=True)
    for point in todo:
        write_point(out / point_name(point), axes, commands[point])


def run_all(out, axes, commands):
    """Run the unfinished points in grid order; returns the folders of those that failed."""
    failed = []
    for point, command in tqdm(commands.items(), desc="sweep points", file=sys.stdout):
        folder = out / point_name(point)
        if is_done(folder, command):
            tqdm.write(f"skip {folder}: done")
        elif run_point(folder, axes, command):
            tqdm.write(f"done {folder}")
        else:
            failed.append(folder)
            tqdm.write(f"FAILED {folder} (end of {LOG_FILE}):\n{log_tail(folder)}")
    return failed


def main(argv=None):
    with exit_cleanly("finished points are kept; the same command resumes the sweep"):
        with exit_on_usage_error():
            out, grid_tokens, fixed = split_argv(sys.argv[1:] if argv is None else argv)
            check_output_folder("OUT", out)
            extra = os.environ.get("EXTRA_ARGS", "").split()
            axes = fix_axes(parse_grid(grid_tokens), extra + os.environ.get("SWEEP_ARGS", "").split())
            commands = {point: point_command(fixed, point, extra) for point in grid_points(axes)}
            check_points(out, commands)
        with exit_on_usage_error(), folder_lock(out, LOCK_FILE, "sweeping"):
            announce(out, axes, commands, extra)
            failed = run_all(out, axes, commands)
    print(f"{len(commands) - len(failed)} of {len(commands)} points finished in {out}"
          + (f"; failed: {', '.join(f.name for f in failed)}" if failed else ""))
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
