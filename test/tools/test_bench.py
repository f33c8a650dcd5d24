"""The benchmark's roofline: attention measured against the CPU's matrix-multiply rate."""

import pytest

from glue_ros.tools import bench


def test_roofline_measures_attention_and_the_full_depth_floor(capsys):
    r = bench.roofline(keypoints=256, threads=1, repeat=3)
    assert r['attention_ms'] > 0 and r['gemm_gflops'] > 0
    flop = 2 * 2 * 2 * 256 * 256 * 96
    assert r['attention_gflops'] == pytest.approx(flop / r['attention_ms'] / 1e6)
    assert r['full_depth_attention_ms'] == pytest.approx(12 * r['attention_ms'])
    assert r['isa'] in ('DEFAULT', 'AVX2', 'AVX512', 'ZVECTOR', 'VSX', 'SVE256')
    # With a reference row, the 2.5x frame budget is printed beside the attention floor.
    bench.print_roofline(r, [{'pipeline': 'ref-lighterglue-xfeat', 'frame_ms': 500.0}])
    out = capsys.readouterr().out
    assert 'a 2.5x frame is 200 ms' in out and 'GFLOP/s' in out


def test_soak_patterns_and_summary():
    """The soak's cameras, and the figures it reports: memory ratios, stream against one frame."""
    import numpy as np

    from glue_ros.tools import soak

    panning = soak.pattern_frames('back-and-forth')
    views = [panning(k, k / 60) for k in range(3)]
    assert views[0].shape == (480, 640, 3)
    assert not np.array_equal(views[0], views[1]) and not np.array_equal(views[1], views[2])
    still = soak.pattern_frames('still')
    assert np.array_equal(still(0, 0.0), still(500, 9.0))
    cycle = soak.pattern_frames('cycle')
    assert np.array_equal(cycle(3, 0.0), cycle(33, 9.0))
    with pytest.raises(ValueError, match='unknown soak pattern'):
        soak.pattern_frames('sideways')
    result = {
        'rss': [(0, 300.0), (60, 400.0), (120, 420.0)],
        'rss_anon': [
            (0, 200.0),
            (50, 240.0),
            (60, 250.0),
            (70, 300.0),
            (110, 260.0),
            (120, 280.0),
            (123, 150.0),
        ],
        'node': {'received': 100, 'processed': 10, 'dropped': 89, 'bad': 1},
        'sent': 103,
        'work_ms': 520.0,
        'single_work_ms': 400.0,
        'single_latency_ms': 500.0,
        'published_in_stream': 180,
        'stream_s': 120.0,
    }
    s = soak.summarise(result)
    # Medians of 45-75 s and of the stream's last minute (60-120 s, not the sample after it).
    assert s['anon_1min_mb'] == 250.0 and s['anon_last_min_mb'] == 270.0
    assert s['anon_growth'] == pytest.approx(1.08) and s['anon_end_mb'] == 150.0
    assert s['work_ratio'] == pytest.approx(1.3) and s['rate_ratio'] == pytest.approx(0.75)
    assert s['accounted'] and s['lost_in_transport'] == 3 and s['within_15pct']
