"""The ``mdsessions`` command line: a thin shell over the public API.

Each command parses its options, makes one public call and formats the result (``--json``
on every command that reports). The layout:

* :mod:`.app`: the ``mdsessions`` group, its one error mapping, the shared options;
* :mod:`.args` and :mod:`.output`: arguments in, text and JSON out;
* :mod:`.schemas`: the models of the ``--json`` documents the CLI composes, the JSON Schema of
  every command's document, and docs/json.md made from them;
* one module per command group: :mod:`.sessions`, :mod:`.phases`, :mod:`.run`,
  :mod:`.review`, :mod:`.serve` (the review desk, imported by its command only),
  :mod:`.lifecycle`, :mod:`.transcripts`, :mod:`.query`, :mod:`.versions`,
  :mod:`.exchange`, :mod:`.retention`, :mod:`.backup`, :mod:`.remote`, :mod:`.maintenance`
  (:mod:`.history` lists the commands of the last six);
* :mod:`.completion`: shell completion of session names;
* this module adds every command to the group, in ``--help`` order. The command modules
  import :mod:`.app`, never this module, so nothing imports in a cycle.

Imports: the public API (:mod:`mdsessions`, :mod:`mdsessions.history`), inside the commands,
so ``mdsessions --help`` does not load GitPython, Jinja, YAML or pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

from mdsessions.cli import history
from mdsessions.cli.app import cli
from mdsessions.cli.completion import complete_sessions_everywhere
from mdsessions.cli.lifecycle import (
    end_command,
    meta_command,
    pause_command,
    resume_command,
    tag_group,
)
from mdsessions.cli.logs import add_output_options
from mdsessions.cli.phases import checkpoint_command, feedback_command, output_command
from mdsessions.cli.query import search_command, stats_command
from mdsessions.cli.review import (
    edits_command,
    inbox_command,
    record_command,
    review_command,
    watch_command,
)
from mdsessions.cli.run import run_command
from mdsessions.cli.scan import scan_command
from mdsessions.cli.serve import serve_command
from mdsessions.cli.sessions import (
    init_command,
    list_command,
    new_command,
    show_command,
    status_command,
    validate_command,
)
from mdsessions.cli.transcripts import transcript_group
from mdsessions.cli.versions import log_command

__all__ = ["COMMANDS", "cli", "main"]

COMMANDS: tuple[click.Command, ...] = (
    init_command,
    new_command,
    list_command,
    search_command,
    stats_command,
    status_command,
    checkpoint_command,
    output_command,
    feedback_command,
    log_command,
    show_command,
    validate_command,
    pause_command,
    resume_command,
    end_command,
    tag_group,
    meta_command,
    run_command,
    edits_command,
    record_command,
    inbox_command,
    review_command,
    watch_command,
    serve_command,
    transcript_group,
    *history.COMMANDS,
    scan_command,
)
"""Every top-level command, in the order ``mdsessions --help`` lists them."""

for _command in COMMANDS:
    cli.add_command(_command)
complete_sessions_everywhere(cli)  # SESSION arguments complete session names
add_output_options([cli])  # -q/-v, --log-json, --color/--no-color on the group and every command


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the ``mdsessions`` console script and ``python -m mdsessions``).

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).
    """
    cli.main(args=list(argv) if argv is not None else None, prog_name="mdsessions")
