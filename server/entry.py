"""The `fieldvisit` console script: the CLI, with configuration errors as one clear line.

A bad setting (a default SECRET_KEY in production, SYNC_MAX_BATCH=abc...) raises
SettingsError while the app is built; shown as a traceback, the one line that matters —
which variable, and why — is easy to miss. Here it is printed alone, exit status 2.
"""

from __future__ import annotations

import sys

from config.settings import SettingsError


def main() -> None:
    """Run `server.cli.main`; a SettingsError ends the process with its message only."""
    from server.cli import main as cli_main

    try:
        cli_main()
    except SettingsError as exc:
        print(f"fieldvisit: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
