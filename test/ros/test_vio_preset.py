"""config/vio.yaml in the node: hybrid tracking over DDS, learned and flow frames, one id space.

The node as its own process with `--params-file config/vio.yaml`, fed a camera-rate sequence
(real photograph, known homographies) one frame at a time.
"""

from pathlib import Path

import numpy as np
from ros_helpers import require_ros

require_ros()

from glue_ros.evaluation import metrics  # noqa: E402
from glue_ros.ros.messages import matches_arrays  # noqa: E402
from glue_ros.testing import real_images  # noqa: E402
from glue_ros.testing.harness import MatcherProcess  # noqa: E402

PRESET = Path(__file__).resolve().parents[2] / 'config' / 'vio.yaml'
FRAMES = 14


def test_vio_preset_runs_hybrid_tracking_in_the_node(tmp_path):
    seq = real_images.homography_sequence(
        'astronaut', FRAMES, roll_per_frame=0.2, zoom_per_frame=0.002
    )
    node = MatcherProcess(
        tmp_path, {}, reliable_images=True, node_args=['--params-file', str(PRESET)]
    )
    try:
        node.wait_connected(120)
        node.publish_in_turn('image', seq.frames, [100 + k / 30 for k in range(FRAMES)])
    finally:
        node.close()
    msgs = node.matches
    learned = [m.learned for m in msgs]
    assert learned[0] and not all(learned) and sum(learned) <= FRAMES // 2, learned
    rows, errors = [], []
    for k, msg in enumerate(msgs, start=1):
        a = matches_arrays(msg)
        reference = round(
            (msg.reference_header.stamp.sec - 100 + msg.reference_header.stamp.nanosec * 1e-9) * 30
        )
        truth = seq.relative(k, reference)
        errors.append(
            real_images.homography_errors(truth, a['query_points'], a['reference_points'])
        )
        rows.append((k, a['query_points'], a['track_ids']))
        if not msg.learned:
            assert reference == k - 1 and (a['query_indices'] == -1).all()
    errors = np.concatenate(errors)
    assert np.mean(errors < 3.0) >= 0.99, np.percentile(errors, [50, 99])
    report = metrics.track_metrics(rows, seq, (640, 480))
    assert report['consistency'] >= 0.99 and report['mean_length'] > 5, report
