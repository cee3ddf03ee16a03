"""The command line of run.py and of the scripts: the flags, their checks, and the paths they name."""
