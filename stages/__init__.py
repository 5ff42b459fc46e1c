"""The shell: one Typer command per DVC stage. See ``stages/cli.py``."""
