"""The VIO evaluation's report for people: tables on stdout and a plot (:mod:`.vio` runs it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from glue_ros.evaluation.vio import LENGTH_BINS, POSE_GAP


def print_report(report: dict) -> None:
    """Two tables: tracks per pipeline and sequence; hard stretches and relative poses."""
    print(
        f'\nVIO evaluation ({report["threads"]} threads); sequences: '
        + ', '.join(
            f'{name} {s["frames"]} frames, {s["motion_px_mean"]:.1f} px/frame'
            for name, s in report['sequences'].items()
        )
    )
    print(
        f'{"pipeline":<8} {"sequence":<17} {"FPS":>6} {"cpu ms":>6} {"learned":>7} '
        f'{"ms L/F":>11} {"consist.":>8} '
        f'{"offset":>6} {">3px":>5} {"mean len":>8} {"median":>6} {"10+":>5} '
        f'{"tracked":>7} {"cover":>5}'
    )
    for name, by_sequence in report['pipelines'].items():
        for sequence, r in by_sequence.items():
            learned = r['learned_share']
            split = '/'.join(
                '-' if r[key] is None else f'{r[key]:.0f}'
                for key in ('ms_learned_frame', 'ms_flow_frame')
            )
            print(
                f'{name:<8} {sequence:<17} {r["fps"]:>6.1f} {r["cpu_ms_per_frame"]:>6.0f} '
                f'{"-" if learned is None else format(learned, ".0%"):>7} {split:>11} '
                f'{r["consistency"]:>8.3f} {r["offset_median"]:>6.2f} '
                f'{r["offset_over_3px"]:>5.1%} {r["mean_length"]:>8.1f} '
                f'{r["median_length"]:>6.0f} {r["tracks_10_frames"]:>5} '
                f'{r["matches_per_frame"]:>7.0f} {r["coverage"]:>5.2f}'
            )
    print(
        '(cpu ms: process CPU time a frame, all threads; ms L/F: median wall time of a '
        'learned / a flow frame; offset: median distance of an observation from its '
        "track's first, by the truth; >3px: share of observations farther)"
    )
    print(
        f'\n{"pipeline":<8} {"sequence":<17} {"rot° med":>8} {"trans° med":>10} '
        f'{"no pose":>7}  tracks alive after each hard stretch (wrong id)'
    )
    for name, by_sequence in report['pipelines'].items():
        for sequence, r in by_sequence.items():
            pose = r.get('pose')
            if pose is None and not r['stretches']:
                continue

            def angle(key: str, pose: dict = pose) -> str:
                value = pose[key]
                return 'fail' if value is None else f'{value:.2f}'

            stretches = '  '.join(
                f'{s["kind"]} {s["alive_after"]}/{s["before"]} ({s["wrong_after"]})'
                for s in r['stretches']
            )
            poses = (
                f'{"-":>8} {"-":>10} {"-":>7}'
                if pose is None
                else f'{angle("rotation_median"):>8} {angle("translation_median"):>10} '
                f'{pose["failures"]:>7.0%}'
            )
            print(f'{name:<8} {sequence:<17} {poses}  {stretches}')
    print(f'(poses: from the tracks shared by frames {POSE_GAP} apart, against the truth)')
    print_targets(report.get('targets', []))


def plot(report: dict, path: Path) -> None:
    """Tracked points per frame and track-length distribution, camera rate against hard."""
    import matplotlib  # optional: only the plot needs it

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 8))
    colours = {'klt': 'tab:gray', 'learned': 'tab:blue', 'hybrid': 'tab:orange'}
    styles = {'middlebury': '-', 'photo': '--'}
    for column, regime in enumerate(('camera', 'hard')):
        top, bottom = axes[0, column], axes[1, column]
        for name, by_sequence in report['pipelines'].items():
            for sequence, r in by_sequence.items():
                info = report['sequences'][sequence]
                if info['regime'] != regime:
                    continue
                style = dict(
                    color=colours.get(name),
                    linestyle=styles.get(info['scene'], ':'),
                    label=f'{name}, {info["scene"]}',
                )
                top.plot(r['tracked_per_frame'], **style)
                histogram = np.array(r['length_histogram'], np.float64)
                lengths = np.arange(len(histogram))
                # share of tracks at least this long (from 2 observations)
                total = histogram[2:].sum()
                if total > 0:
                    at_least = histogram[::-1].cumsum()[::-1] / total
                    bottom.plot(lengths[2:], at_least[2:], **style)
        if regime == 'hard':
            first = next((s for s in report['sequences'].values() if s['regime'] == 'hard'), None)
            for stretch in (first or {}).get('stretches', []):
                top.axvspan(stretch['first'] - 0.5, stretch['last'] + 0.5, color='red', alpha=0.1)
        longest = max(
            (s['frames'] for s in report['sequences'].values() if s['regime'] == regime),
            default=LENGTH_BINS,
        )
        bottom.set_xlim(2, longest)
        title = 'camera rate' if regime == 'camera' else 'hard (stretches shaded)'
        top.set(xlabel='frame', ylabel='tracked points', title=f'{title}: tracked points')
        bottom.set(
            xlabel='track length (frames)',
            ylabel='share of tracks at least this long',
            title=f'{title}: track lengths',
            yscale='log',
        )
        top.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def print_targets(rows: list) -> None:
    """The targets, met or missed."""
    if not rows:
        return
    print(f'\ntargets: {sum(r["ok"] for r in rows)} of {len(rows)} met')

    def show(value: object) -> str:
        return (
            'fail'
            if value is None
            else (f'{value:.3g}' if isinstance(value, float) else str(value))
        )

    for r in rows:
        print(
            f'  {"met " if r["ok"] else "MISS"} {r["pipeline"]:<8} {r["sequence"]:<17} '
            f'{r["target"]}: {show(r["value"])} (goal {show(r["goal"])})'
        )


__all__ = ['print_report', 'plot', 'print_targets']
