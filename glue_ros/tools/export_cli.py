"""glue-ros-export {coarse_loftr,lightglue}: ONNX files (and TensorRT engines) of our networks.

coarse_loftr: two grey images of a fixed size -> the coarse confidence matrix; match selection
(threshold, mutual nearest neighbour, border) runs outside the graph on every backend.
lightglue: a fixed number of keypoints per image, padded, with a validity mask; the graph runs
all layers (a static graph has no early exit or pruning: those exist only in eager PyTorch).
--features, --max-keypoints, --input-size, --weights, --precision and --engine-cache-dir are the
node's settings (the same names, defaults and meanings); --num-keypoints and --cache-dir are
accepted as their older spellings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from glue_ros import settings
from glue_ros.backends.coarse_loftr_tensorrt import CoarseLoFTRTensorRT
from glue_ros.core.errors import GlueRosError
from glue_ros.models import coarse_loftr, lightglue
from glue_ros.tools.console_log import log_to_console

# The node's settings an export takes; precision without 'bf16' (an eager CPU mode only).
EXPORT_SETTINGS = (
    'features',
    'max_keypoints',
    'input_size',
    'weights',
    'precision',
    'engine_cache_dir',
)
EXPORT_PRECISIONS = ('auto', 'fp16', 'fp32')


def export_coarse_loftr(args: argparse.Namespace) -> Path:
    """Write the coarse LoFTR ONNX file; returns its path."""
    if not args.weights:
        raise GlueRosError('coarse_loftr needs --weights (the LoFTR_teacher.pt checkpoint)')
    model = coarse_loftr.CoarseLoFTR.from_checkpoint(args.weights).eval()
    return coarse_loftr.export_onnx(model, args.out, tuple(args.input_size), opset=args.opset)


def export_lightglue(args: argparse.Namespace) -> Path:
    """Write the full-depth LightGlue ONNX file; returns its path."""
    model = lightglue.LightGlue.for_features(args.features, weights=args.weights or None).eval()
    return lightglue.export_onnx(model, args.out, args.max_keypoints, opset=args.opset)


def build_engine(onnx_path: Path, args: argparse.Namespace) -> Path:
    """Build (or reuse) the cached TensorRT engine of an ONNX file; returns the engine path."""
    cache = Path(args.engine_cache_dir) / 'engines' if args.engine_cache_dir else None
    backend = CoarseLoFTRTensorRT(onnx_path, precision=args.precision, cache_dir=cache)
    print(f'TensorRT engine {backend.how}: {backend.engine_path} ({backend.precision})')
    return backend.engine_path


def build_parser() -> argparse.ArgumentParser:
    """The flags of glue-ros-export (those of settings from the settings schema)."""
    parser = argparse.ArgumentParser(
        prog='glue-ros-export',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('model', choices=('coarse_loftr', 'lightglue'))
    parser.add_argument('--out', type=Path, required=True, help='ONNX file to write')
    settings.add_arguments(parser, EXPORT_SETTINGS, choices={'precision': EXPORT_PRECISIONS})
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument(
        '--engine',
        action='store_true',
        help='also build the TensorRT engine (needs TensorRT and a GPU)',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of glue-ros-export."""
    log_to_console('glue-ros-export')
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings.values_from_args(args, EXPORT_SETTINGS)  # the schema's checks
        args.out.parent.mkdir(parents=True, exist_ok=True)
        path = (export_coarse_loftr if args.model == 'coarse_loftr' else export_lightglue)(args)
        print(f'wrote {path} ({path.stat().st_size / 1e6:.1f} MB)')
        if args.engine:
            build_engine(path, args)
    except (GlueRosError, ValueError, OSError) as exc:
        print(f'glue-ros-export: error: {exc}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
