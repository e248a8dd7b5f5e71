"""This area's `genval` subcommands; `genval.cli` calls `add_commands` with its subparsers."""


def add_commands(subparsers) -> None:
    """Adds this area's subcommands (none yet)."""
