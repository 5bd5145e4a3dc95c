"""``python -m perfstats``: the command-line interface."""

from perfstats.cli import main

main()
