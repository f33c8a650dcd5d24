"""Say why no image arrives although a camera is connected (a sender without the DDS profile).

Best-effort images of many UDP fragments are lost whole when a fragment is lost; a camera driver
that does not use the shared-memory profile of config/fastdds_large_images.xml can look connected
while nothing ever arrives. The node asks this watch about every topic once a second.
"""

from __future__ import annotations

HINT = (
    'large images over best-effort UDP are lost whole when the sender does not use '
    'the shared-memory profile: give it FASTDDS_DEFAULT_PROFILES_FILE (Fast DDS 3, Kilted) '
    'or FASTRTPS_DEFAULT_PROFILES_FILE (Fast DDS 2, Humble/Jazzy) = '
    'config/fastdds_large_images.xml of glue_ros (see the README)'
)


class InputWatch:
    """Tracks, per topic, when a publisher appeared and when a message last arrived."""

    def __init__(self, silence_s: float = 5.0):
        self.silence_s = float(silence_s)
        self._since = {}  # topic -> time from which silence counts
        self._received = {}  # topic -> messages received so far

    def check(self, topic: str, now: float, publishers: int, received: int) -> str | None:
        """A warning when `topic` has publishers but no message for silence_s, else None."""
        if publishers == 0:
            self._since.pop(topic, None)
            return None
        if topic not in self._since or received != self._received.get(topic):
            self._since[topic] = now
            self._received[topic] = received
            return None
        silent = now - self._since[topic]
        if silent < self.silence_s:
            return None
        return f'{publishers} publisher(s) on {topic} but no message for {silent:.0f} s: {HINT}'


__all__ = ['InputWatch']
