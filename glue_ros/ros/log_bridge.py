"""The library logs through ``logging``; in a node those records belong in the node's log.

Without this, a long engine build or export reports to an unconfigured stdlib logger: nothing
reaches the terminal of ``ros2 launch`` or /rosout. The bridge hands each record of the
``glue_ros`` logger tree to the node's rclpy logger at the matching severity.
"""
from __future__ import annotations

import logging
from typing import Any

LIBRARY_LOGGER = 'glue_ros'


class NodeLogHandler(logging.Handler):
    """Forwards stdlib records to an rclpy logger (``node.get_logger()``)."""

    def __init__(self, node_logger: Any) -> None:
        super().__init__(logging.DEBUG)
        self.node_logger = node_logger

    def emit(self, record: logging.LogRecord) -> None:
        """Log the record at its severity, named by its library logger."""
        try:
            text = f'{record.name}: {record.getMessage()}'
            if record.levelno >= logging.CRITICAL:
                self.node_logger.fatal(text)
            elif record.levelno >= logging.ERROR:
                self.node_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self.node_logger.warning(text)
            elif record.levelno >= logging.INFO:
                self.node_logger.info(text)
            else:
                self.node_logger.debug(text)
        except Exception:  # a log line must never take the node down
            self.handleError(record)


def forward_library_logs(node_logger: Any) -> NodeLogHandler:
    """Send the library's records to the node's logger; returns the handler to remove later."""
    handler = NodeLogHandler(node_logger)
    library = logging.getLogger(LIBRARY_LOGGER)
    library.addHandler(handler)
    if library.level == logging.NOTSET or library.level > logging.INFO:
        library.setLevel(logging.INFO)
    library.propagate = False
    return handler


def stop_forwarding(handler: NodeLogHandler) -> None:
    """Undo :func:`forward_library_logs` (the node is going away)."""
    library = logging.getLogger(LIBRARY_LOGGER)
    library.removeHandler(handler)
    if not any(isinstance(h, NodeLogHandler) for h in library.handlers):
        library.propagate = True
