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
