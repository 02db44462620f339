"""The command line: thin Typer commands. The only place that prints or exits."""
