"""Sub-commands of the `heroagent` command line, one module per area."""
