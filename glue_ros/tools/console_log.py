"""The library's log records on a command-line tool's stderr, prefixed with the tool's name.

The library logs through ``logging`` (the node forwards those records to its ROS log); a tool
shows them the same way it shows its own messages. Lines go through ``tqdm.write`` so that a
progress bar on the same terminal stays whole.
"""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm


class ConsoleHandler(logging.Handler):
    """Writes `<prog>: <message>` lines (with the level above INFO) to stderr."""

    def __init__(self, prog: str) -> None:
        super().__init__(logging.INFO)
        self.prog = prog

    def emit(self, record: logging.LogRecord) -> None:
        """Write one line; a failure to write never stops the tool."""
        try:
            level = '' if record.levelno <= logging.INFO else f'{record.levelname.lower()}: '
            tqdm.write(f'{self.prog}: {level}{record.getMessage()}', file=sys.stderr)
        except Exception:
            self.handleError(record)


def log_to_console(prog: str) -> ConsoleHandler:
    """Show the library's INFO and above on stderr for the rest of the process."""
    library = logging.getLogger('glue_ros')
    for handler in [h for h in library.handlers if isinstance(h, ConsoleHandler)]:
        library.removeHandler(handler)
    handler = ConsoleHandler(prog)
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    library.propagate = False
    return handler
