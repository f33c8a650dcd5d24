"""The stream verdict published on /diagnostics: rates over a window, drops, latency, levels."""

import pytest

from glue_ros.core.health import ERROR, OK, WARN, StreamHealth


def feed(health, start, seconds, rate, dropped_each=0, latency_ms=100.0):
    """`rate` frames a second for `seconds`, each processed after `dropped_each` drops."""
    n = int(seconds * rate)
    for k in range(n):
        t = start + k / rate
        health.add(t, 'received', 1 + dropped_each)
        health.add(t, 'dropped', dropped_each)
        health.add(t, 'processed')
        health.add(t, 'latency_ms', latency_ms)
    return start + seconds


def test_rates_and_ratio_over_the_window():
    health = StreamHealth(window_s=5.0)
    now = feed(health, 0.0, 5.0, rate=10, dropped_each=2)
    report = health.report(now, 'active', {'name': 'lightglue/xfeat', 'early_exit': True})
    assert report.level == WARN  # 67% dropped against the default 50%
    v = report.values
    assert float(v['input rate (images/s)']) == pytest.approx(30.0)
    assert float(v['processed rate (frames/s)']) == pytest.approx(10.0)
    assert float(v['drop ratio (frames)']) == pytest.approx(2 / 3, abs=1e-3)
    assert v['matcher'] == 'lightglue/xfeat' and v['early_exit'] == 'True'
    assert v['total processed'] == '50' and v['total dropped'] == '100'


def test_warn_on_drops_or_latency_then_recover_when_the_window_moves_on():
    health = StreamHealth(window_s=5.0)
    now = feed(health, 0.0, 5.0, rate=10, dropped_each=2)
    report = health.report(now, 'active', max_drop_ratio=0.5)
    assert report.level == WARN and 'dropping 67%' in report.message
    assert health.report(now, 'active', max_drop_ratio=0.7).level == OK
    slow = health.report(now, 'active', max_drop_ratio=0.7, max_latency_ms=50.0)
    assert slow.level == WARN and 'latency 100 ms' in slow.message
    # Later, a healthy stream: the old drops have left the window.
    now = feed(health, now + 1.0, 6.0, rate=10, latency_ms=20.0)
    report = health.report(now, 'active', max_drop_ratio=0.5, max_latency_ms=50.0)
    assert report.level == OK and report.values['drop ratio (frames)'] == '0.000'


def test_stereo_rates_name_images_in_and_pairs_out():
    """One pair a second is two images in and one pair processed, and says so."""
    health = StreamHealth(window_s=5.0)
    for k in range(5):
        health.add(float(k), 'received', 2)
        health.add(float(k), 'processed')
    v = health.report(5.0, 'active', unit='pairs').values
    assert float(v['input rate (images/s)']) == pytest.approx(2.0)
    assert float(v['processed rate (pairs/s)']) == pytest.approx(1.0)
    assert 'processed rate (frames/s)' not in v and 'drop ratio (pairs)' in v


def test_failed_load_is_an_error_and_idle_states_are_ok():
    health = StreamHealth()
    report = health.report(10.0, 'unconfigured', error='WeightsError: no SuperPoint file')
    assert report.level == ERROR and 'matcher failed to load' in report.message
    assert health.report(10.0, 'inactive').level == OK
    assert 'waiting for images' in health.report(10.0, 'active').message


def test_events_from_several_threads_while_reports_are_read():
    """Image callbacks and the worker add while the diagnostics timer reports."""
    import threading
    import time

    health, stop, errors = StreamHealth(window_s=1e9), threading.Event(), []

    def add():
        t = 0.0
        while not stop.is_set():
            t += 1e-4
            health.add(t, 'received')
            health.add(t, 'latency_ms', 1.0)

    def read():
        try:
            while not stop.is_set():
                health.report(1.0, 'active')
        except RuntimeError as exc:  # e.g. 'deque mutated during iteration'
            errors.append(exc)

    threads = [threading.Thread(target=add) for _ in range(2)] + [threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert health.totals['received'] > 0
