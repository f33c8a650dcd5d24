"""How a matching stream is doing, for the operator: rates, drops, latency, and a verdict.

The node feeds events in and publishes :meth:`StreamHealth.report` on /diagnostics about once a
second; the rules live here, without ROS, so they are tested directly. Rates and ratios cover a
sliding window (5 s by default), so a node that fell behind a minute ago reads healthy again.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The levels of diagnostic_msgs/DiagnosticStatus.
OK, WARN, ERROR = 0, 1, 2


@dataclass
class HealthReport:
    """One verdict: a level, a one-line message and the figures behind it (as strings)."""

    level: int
    message: str
    values: dict[str, str] = field(default_factory=dict)


class StreamHealth:
    """Counts frames received, processed, dropped, bad and published, with latencies.

    The node's one frame account: the totals are what it logs when it stops. Events come from
    several threads (image callbacks, the worker) while the diagnostics timer reads them.
    """

    KINDS = ('received', 'processed', 'dropped', 'bad', 'published')

    def __init__(self, window_s: float = 5.0):
        self.window_s = float(window_s)
        self._events: deque[tuple[float, str, float]] = deque()  # (time, kind, amount)
        self._lock = threading.Lock()
        self.totals = dict.fromkeys(self.KINDS, 0)

    def add(self, now: float, kind: str, amount: float = 1.0) -> None:
        """Record `amount` of `kind` (one of KINDS, or latency_ms with the latency)."""
        with self._lock:
            self._events.append((now, kind, amount))
            if kind in self.totals:
                self.totals[kind] += int(amount)

    def _window(self, now: float) -> dict[str, Any]:
        with self._lock:
            while self._events and self._events[0][0] < now - self.window_s:
                self._events.popleft()
            events = list(self._events)
        counts: dict[str, float] = dict.fromkeys(self.KINDS, 0)
        latencies: list[float] = []
        for _, kind, amount in events:
            if kind == 'latency_ms':
                latencies.append(amount)
            else:
                counts[kind] += amount
        return {**counts, 'latencies': latencies}

    def report(
        self,
        now: float,
        state: str,
        describe: Mapping[str, object] | None = None,
        error: str | None = None,
        max_drop_ratio: float = 0.5,
        max_latency_ms: float = 1000.0,
        unit: str = 'frames',
    ) -> HealthReport:
        """The verdict at `now` for a node in lifecycle `state` ('active', 'inactive', ...).

        `unit` names what the worker processes and drops: 'frames', or 'pairs' in stereo mode,
        where two images make one pair; the input rate always counts images.

        ERROR when the matcher failed to load; WARN when the window's drop ratio or mean latency
        passes its threshold; OK otherwise (an inactive node is OK and says so).
        """
        w = self._window(now)
        handled = w['processed'] + w['dropped']
        drop_ratio = w['dropped'] / handled if handled else 0.0
        latency = sum(w['latencies']) / len(w['latencies']) if w['latencies'] else 0.0
        values = {
            'state': state,
            'input rate (images/s)': f'{w["received"] / self.window_s:.2f}',
            f'processed rate ({unit}/s)': f'{w["processed"] / self.window_s:.2f}',
            f'drop ratio ({unit})': f'{drop_ratio:.3f}',
            'mean latency (ms)': f'{latency:.1f}',
            'bad frames': str(int(w['bad'])),
            **{f'total {k}': str(v) for k, v in self.totals.items()},
        }
        for key in ('name', 'backend', 'device', 'precision', 'early_exit'):
            if describe and key in describe:
                values['matcher' if key == 'name' else key] = str(describe[key])
        if error:
            return HealthReport(ERROR, f'matcher failed to load: {error}', values)
        if state == 'configuring':
            return HealthReport(OK, 'configuring: loading the matcher', values)
        if state != 'active':
            return HealthReport(OK, f'{state}: not processing', values)
        problems = []
        if drop_ratio > max_drop_ratio:
            problems.append(f'dropping {drop_ratio:.0%} of {unit} (limit {max_drop_ratio:.0%})')
        if latency > max_latency_ms:
            problems.append(f'latency {latency:.0f} ms (limit {max_latency_ms:.0f} ms)')
        if problems:
            return HealthReport(WARN, '; '.join(problems), values)
        if w['received'] == 0:
            return HealthReport(OK, 'active, waiting for images', values)
        return HealthReport(OK, 'matching', values)


__all__ = ['StreamHealth', 'HealthReport', 'OK', 'WARN', 'ERROR']
