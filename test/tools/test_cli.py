"""The command-line tools, run as users run them (subprocesses), on real images."""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import onnx
import pytest

from glue_ros.core import data_files
from glue_ros.testing import real_images

pytestmark = pytest.mark.slow  # each test runs a tool as a subprocess, exports included

COARSE_LOFTR = data_files.data_file(data_files.COARSE_LOFTR_WEIGHTS)
COARSE_LOFTR_MISSING = data_files.missing_reason(data_files.COARSE_LOFTR_WEIGHTS)


def cli(module, *args):
    return subprocess.run(
        [sys.executable, '-m', module, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope='module')
def pair_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp('pair')
    image0, image1, H = real_images.homography_pair('rocket', roll_deg=8, zoom=1.1)
    for name, image in (('a.png', image0), ('b.png', image1)):
        cv2.imwrite(str(folder / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder / 'a.png', folder / 'b.png', H


def test_match_cli_json_and_picture(pair_files, tmp_path):
    a, b, H = pair_files
    out, viz = tmp_path / 'm.json', tmp_path / 'm.png'
    proc = cli(
        'glue_ros.tools.match_cli',
        a,
        b,
        '--max-keypoints',
        1024,
        '--repeat',
        2,
        '--json',
        out,
        '--viz',
        viz,
        '--threads',
        2,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    for key in (
        'points0',
        'points1',
        'scores',
        'num_keypoints0',
        'num_keypoints1',
        'layers_used',
        'layers_total',
        'timing_ms',
    ):
        assert key in report
    assert set(report['timing_ms']) == {'extract', 'match', 'verify_track', 'total'}
    # a homography pair: no parallax for a fundamental matrix, the homography's inliers kept
    assert (report['geometric_model'], report['geometric_status']) == (
        'fundamental',
        'degenerate_rotation',
    )
    assert report['num_outliers'] > 0 and report['rotation'] is None
    assert len(report['points0']) == len(report['points1']) == len(report['scores']) > 100
    assert report['num_keypoints0'] <= 1024 and report['layers_used'] <= report['layers_total']
    errors = real_images.homography_errors(
        H, np.array(report['points0']), np.array(report['points1'])
    )
    assert np.mean(errors < 3.0) > 0.97  # verified: outliers removed
    picture = cv2.imread(str(viz))
    assert picture.shape[1] == 2 * 640 and 'matches' in proc.stdout


def test_match_cli_relative_pose_with_intrinsics(tmp_path):
    """--camera: the essential matrix gives the Middlebury rig's pose (a sideways baseline)."""
    pair = real_images.middlebury_stereo((640, 480))
    files = []
    for name, image in (('left.png', pair.left), ('right.png', pair.right)):
        files.append(tmp_path / name)
        cv2.imwrite(str(files[-1]), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    out = tmp_path / 'pose.json'
    proc = cli('glue_ros.tools.match_cli', *files, '--camera', 500, 500, 320, 240, '--json', out)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert (report['geometric_model'], report['geometric_status']) == ('essential', 'ok')
    # rectified rig: no rotation, the reference (right) camera sits along +x of the left one
    angle = np.degrees(np.arccos(np.clip((np.trace(report['rotation']) - 1) / 2, -1, 1)))
    assert angle < 1.0 and abs(report['translation'][0]) > 0.99, report['translation']


def test_match_cli_errors_are_clear(tmp_path, pair_files):
    a, _, _ = pair_files
    proc = cli('glue_ros.tools.match_cli', a, tmp_path / 'missing.png')
    assert proc.returncode == 2 and 'cannot read image' in proc.stderr
    proc = cli('glue_ros.tools.match_cli', a, a, '--features', 'superpoint')
    assert proc.returncode == 2 and 'SuperPoint' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_match_cli_coarse_loftr_onnxruntime(tmp_path):
    if COARSE_LOFTR_MISSING:
        pytest.skip(COARSE_LOFTR_MISSING)
    pair = real_images.middlebury_stereo((640, 480))
    a, b = tmp_path / 'left.png', tmp_path / 'right.png'
    cv2.imwrite(str(a), cv2.cvtColor(pair.left, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(b), cv2.cvtColor(pair.right, cv2.COLOR_RGB2BGR))
    out = tmp_path / 'c.json'
    env_cache = tmp_path / 'cache'
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'glue_ros.tools.match_cli',
            str(a),
            str(b),
            '--matcher',
            'coarse_loftr',
            '--weights',
            str(COARSE_LOFTR),
            '--backend',
            'onnxruntime',
            '--json',
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, 'XDG_CACHE_HOME': str(env_cache)},
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report['grid_step'] == 16.0 and report['layers_used'] == report['layers_total']
    errors = real_images.disparity_errors(
        pair, np.array(report['points0']), np.array(report['points1'])
    )
    known = np.isfinite(errors)
    assert len(errors) > 100 and np.mean(errors[known] < 16.0) > 0.8


def test_export_cli_writes_valid_onnx(tmp_path):
    out = tmp_path / 'lg.onnx'
    proc = cli('glue_ros.tools.export_cli', 'lightglue', '--out', out, '--num-keypoints', 256)
    assert proc.returncode == 0, proc.stderr
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert [i.name for i in model.graph.input][:2] == ['kpts0', 'desc0']
    proc = cli('glue_ros.tools.export_cli', 'coarse_loftr', '--out', tmp_path / 'x.onnx')
    assert proc.returncode == 2 and '--weights' in proc.stderr


@pytest.mark.skipif(bool(COARSE_LOFTR_MISSING), reason=COARSE_LOFTR_MISSING)
def test_export_cli_writes_valid_coarse_loftr_onnx(tmp_path):
    out = tmp_path / 'cl.onnx'
    proc = cli(
        'glue_ros.tools.export_cli',
        'coarse_loftr',
        '--weights',
        COARSE_LOFTR,
        '--out',
        out,
        '--input-size',
        320,
        240,
    )
    assert proc.returncode == 0, proc.stderr
    onnx.checker.check_model(onnx.load(str(out)))


# Flags named as a setting whose meaning is the tool's own: glue-ros-bag's --mode defaults to
# what the topics given say (stereo with --left-topic/--right-topic).
TOOL_OWN = {('bag_process', 'mode')}


def _setting_flags(parser):
    """{setting name: argparse action} of the parser's flags that are settings."""
    from glue_ros import settings

    return {
        a.dest: a
        for a in parser._actions
        if a.dest in settings.SETTINGS and settings.flag(a.dest) in a.option_strings
    }


@pytest.mark.parametrize('tool', ['match_cli', 'export_cli', 'bench', 'bag_process'])
def test_tool_flags_of_settings_come_from_the_schema(tool):
    """Same names, defaults and descriptions in every tool; no tool spells a setting its way."""
    import importlib

    from glue_ros import settings

    parser = importlib.import_module(f'glue_ros.tools.{tool}').build_parser()
    flags = _setting_flags(parser)
    assert flags, tool
    for name, action in flags.items():
        if (tool, name) in TOOL_OWN:
            continue
        assert action.default == settings.default(name), (tool, name)
        assert action.help.startswith(settings.SETTINGS[name].description), (tool, name)
    by_option = {o: a for a in parser._actions for o in a.option_strings}
    for name, aliases in settings.ALIASES.items():  # an older spelling is the same flag
        for alias in aliases:
            if alias in by_option:
                assert by_option[alias].dest == name, (tool, alias)


def test_bench_and_export_take_the_schema_spellings_and_the_old_ones():
    from glue_ros import settings
    from glue_ros.tools import bench, export_cli

    parser = bench.cli.build_parser()
    assert parser.parse_args([]).max_keypoints == settings.default('max_keypoints')
    assert parser.parse_args(['--keypoints', '512']).max_keypoints == 512
    assert parser.parse_args(['--max-keypoints', '256']).max_keypoints == 256
    parser = export_cli.build_parser()
    args = parser.parse_args(
        ['lightglue', '--out', 'x.onnx', '--num-keypoints', '128', '--cache-dir', 'c']
    )
    assert (args.max_keypoints, args.engine_cache_dir) == (128, 'c')
    assert parser.parse_args(['lightglue', '--out', 'x.onnx']).max_keypoints == 2048
    with pytest.raises(SystemExit):  # bf16 is an eager mode: no export of it
        parser.parse_args(['lightglue', '--out', 'x.onnx', '--precision', 'bf16'])
