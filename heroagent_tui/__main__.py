"""Allows `python -m heroagent_tui` as another way to run the `heroagent` command."""

from heroagent_tui.cli import main

main()
