"""How a run ends when what it was asked is wrong (a UsageError at start-up, exit status 2), when it cannot go on
after start-up (a diverged loss, a full disk) or when it is stopped by Ctrl-C: one line on stderr, no traceback."""
import contextlib
import sys

INTERRUPTED = 130  # 128 + SIGINT, the status a shell reports for Ctrl-C


class UsageError(Exception):
    """A mistake in what the user asked for (not a bug): reported as one line, exit status 2."""


class RunFailure(Exception):
    """The run stopped after start-up; the message says why and what was kept. Exit status 1."""


def print_error(message):
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)  # one line, whatever the message holds


@contextlib.contextmanager
def exit_on_usage_error():
    """A UsageError raised inside becomes one line on stderr and exit status 2."""
    try:
        yield
    except UsageError as error:
        print_error(error)
        sys.exit(2)


@contextlib.contextmanager
def exit_cleanly(kept):
    """A RunFailure raised inside becomes one line and exit status 1; Ctrl-C one line saying what is `kept` and
    exit status 130."""
    try:
        yield
    except RunFailure as failure:
        print_error(failure)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"interrupted (Ctrl-C): {kept}", file=sys.stderr)
        sys.exit(INTERRUPTED)
