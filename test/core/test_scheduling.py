"""The node's ROS-free scheduling: the lock served in turn."""

import threading
import time

from glue_ros.core.scheduling import TurnLock


def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'condition not reached'
        time.sleep(0.001)


def test_turn_lock_serves_in_request_order():
    """A thread that releases and asks again goes after the one already waiting."""
    lock, order = TurnLock(), []

    def waiter(name):
        with lock:
            order.append(name)

    with lock:
        other = threading.Thread(target=waiter, args=('waiting',))
        other.start()
        wait_until(lambda: lock.waiting == 1)  # `other` has taken its ticket
    with lock:  # released above, asked again at once
        order.append('again')
    other.join(5)
    assert order == ['waiting', 'again']
    assert lock.waiting == 0
