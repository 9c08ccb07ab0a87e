"""The ``mdsessions`` command line: a thin shell over the public API.

Imports: :mod:`mdsessions` (the public API) only.
"""

from mdsessions.cli.main import cli, main

__all__ = ["cli", "main"]
