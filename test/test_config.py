"""The shipped parameter files and the one settings schema agree; the schema checks values."""

import argparse
import re
from pathlib import Path

import pytest
import yaml

from glue_ros import settings
from glue_ros.matcher import MatcherConfig
from glue_ros.tools import docs

CONFIG = Path(__file__).resolve().parents[1] / 'config'


def parameters(name):
    data = yaml.safe_load((CONFIG / name).read_text())
    (node,) = data.values()
    return node['ros__parameters']


def test_matcher_yaml_lists_every_parameter_with_its_default():
    values = parameters('matcher.yaml')
    assert set(values) == set(settings.SETTINGS)
    for name, setting in settings.SETTINGS.items():
        assert values[name] == setting.default, name


def test_yaml_marks_exactly_the_live_parameters():
    text = (CONFIG / 'matcher.yaml').read_text()
    marked = {line.split(':')[0].strip() for line in text.splitlines() if line.endswith('# live')}
    assert marked == {n for n, s in settings.SETTINGS.items() if s.live}


@pytest.mark.parametrize('name', sorted(p.name for p in CONFIG.glob('*.yaml')))
def test_yaml_files_are_made_from_the_schema(name):
    """Every parameter file's comments are the schema's descriptions, in the schema's order.

    After a change of the schema: python -m glue_ros.settings config/*.yaml
    """
    text = (CONFIG / name).read_text()
    header, values = settings.read_parameters_file(text)
    assert text == settings.parameters_yaml(values, header), (
        f'{name} differs from the schema: run python -m glue_ros.settings config/{name}'
    )


def test_every_default_comes_from_the_schema():
    """The config classes, the track manager and the coarse LoFTR runtime read the schema."""
    import inspect

    from glue_ros.backends.coarse_loftr_runtime import CoarseLoFTRRuntime
    from glue_ros.frontend.frontend import SETTING_FIELDS, FrontendConfig
    from glue_ros.frontend.tracks import TrackManager

    assert MatcherConfig().values() == {n: settings.default(n) for n in settings.MATCHER_FLAGS}
    frontend = FrontendConfig()
    assert {n: getattr(frontend, n) for n in SETTING_FIELDS} == {
        n: settings.default(n) for n in SETTING_FIELDS
    }
    tracks = TrackManager()
    assert (
        tracks.max_age,
        tracks.max_tracks,
        tracks.min_distance,
        tracks.keyframe_min_matches,
    ) == (
        settings.default('track_max_age'),
        settings.default('max_tracks'),
        settings.default('min_track_distance'),
        settings.default('keyframe_min_matches'),
    )
    runtime = inspect.signature(CoarseLoFTRRuntime).parameters
    assert runtime['backend'].default == settings.default('backend')
    assert list(runtime['input_size'].default) == settings.default('input_size')
    assert runtime['device'].default == settings.default('device')
    assert runtime['precision'].default == settings.default('precision')


def test_every_check_is_the_schemas():
    """The configs and the track manager refuse values with the schema's own words."""
    from glue_ros.frontend.frontend import FrontendConfig
    from glue_ros.frontend.tracks import TrackManager

    with pytest.raises(ValueError, match="'max_keypoints' is 0; expected >= 1"):
        MatcherConfig(max_keypoints=0).validate()
    with pytest.raises(ValueError, match="'tracking' is 'flow'; expected 'match' in stereo"):
        FrontendConfig(mode='stereo', tracking='flow').validate()
    with pytest.raises(ValueError, match="'track_max_age' is -1; expected >= 0"):
        TrackManager(max_age=-1)


def test_vio_preset_is_complete_and_valid():
    """config/vio.yaml lists every parameter (usable alone as --params-file), all valid."""
    values = parameters('vio.yaml')
    assert set(values) == set(settings.SETTINGS)
    settings.validate({k: list(v) if isinstance(v, list) else v for k, v in values.items()})
    assert values['tracking'] == 'flow' and values['mode'] == 'sequential'


@pytest.mark.parametrize('name', ['stereo.yaml', 'jetson_coarse_loftr.yaml', 'vio.yaml'])
def test_presets_set_only_known_and_valid_parameters(name):
    values = parameters(name)
    assert set(values) <= set(settings.SETTINGS)
    if 'input_size' in values:
        values['input_size'] = list(values['input_size'])
    settings.validate(values)


def test_schema_defaults_are_the_configs_defaults():
    assert settings.matcher_config(settings.defaults()) == MatcherConfig().validate()
    settings.validate(settings.defaults())


@pytest.mark.parametrize(
    'name, value, words',
    [
        ('mode', 'sideways', "'mode' is 'sideways'; expected one of sequential, stereo"),
        ('depth_confidence', 3.0, '<= 1.0'),
        ('depth_confidence', 0.0, 'in (0, 1], or -1'),
        ('max_keypoints', 0, '>= 1'),
        ('max_keypoints', 2.5, 'of type int'),
        ('input_size', [640, 470], 'multiples of 16'),
        ('ransac_threshold', 0.0, '>= 0.01'),
        ('backend', 'jax', 'one of torch'),
    ],
)
def test_bad_values_are_named(name, value, words):
    with pytest.raises(ValueError) as info:
        settings.validate({name: value})
    assert name in str(info.value) and words in str(info.value)


def test_cross_setting_rules_come_from_the_configs():
    with pytest.raises(ValueError, match='precision'):
        settings.validate({'precision': 'bf16', 'device': 'cuda'})


def test_cli_flags_are_generated_from_the_schema():
    parser = argparse.ArgumentParser()
    settings.add_arguments(parser, settings.MATCHER_FLAGS + settings.VERIFY_FLAGS)
    args = parser.parse_args(
        [
            '--depth-confidence',
            '-1',
            '--input-size',
            '320',
            '240',
            '--geometric-check',
            'homography',
        ]
    )
    values = settings.values_from_args(args, settings.MATCHER_FLAGS + settings.VERIFY_FLAGS)
    config = settings.matcher_config(values)
    assert config.depth_confidence == -1 and config.input_size == (320, 240)
    assert settings.frontend_config(values).geometric_check == 'homography'
    with pytest.raises(SystemExit):  # choices are enforced by the parser
        parser.parse_args(['--features', 'sift'])
    help_text = parser.format_help()
    for name in settings.MATCHER_FLAGS:
        assert '--' + name.replace('_', '-') in help_text


def test_parameters_page_is_generated_from_the_schema():
    """docs/parameters.md is the generator's output: a schema change needs `make docs`."""
    page = CONFIG.parent / 'docs' / 'parameters.md'
    assert page.exists() and page.read_text() == docs.render(), (
        'docs/parameters.md does not match glue_ros/settings.py: run `make docs`'
    )
    for name in settings.SETTINGS:
        assert f'| `{name}` |' in page.read_text(), name


def test_parameters_page_shows_type_default_range_and_live():
    row = next(
        line for line in docs.render().splitlines() if line.startswith('| `depth_confidence` |')
    )
    assert row.split(' | ')[1:5] == ['float', '`0.95`', '[-1.0, 1.0]', 'yes']
    row = next(line for line in docs.render().splitlines() if line.startswith('| `mode` |'))
    assert "`'sequential'`, `'stereo'`" in row


def anchors(page: Path) -> set:
    """GitHub's anchors of a Markdown page's headings."""
    text = re.sub(r'```.*?```', '', page.read_text(), flags=re.S)
    titles = re.findall(r'^#{1,6} (.+)$', text, flags=re.M)
    return {re.sub(r'[^\w\- ]', '', t.strip().lower()).replace(' ', '-') for t in titles}


@pytest.mark.parametrize(
    'name', ['README.md'] + sorted('docs/' + p.name for p in (CONFIG.parent / 'docs').glob('*.md'))
)
def test_relative_links_lead_to_files_that_exist(name):
    page = CONFIG.parent / name
    links = re.findall(r'\]\(([^)\s]+)\)', page.read_text())
    local = [link for link in links if '://' not in link and not link.startswith('mailto:')]
    missing = []
    for link in local:
        path, _, anchor = link.partition('#')
        target = (page.parent / path) if path else page
        if not target.exists() or (
            anchor and target.suffix == '.md' and anchor not in anchors(target)
        ):
            missing.append(link)
    assert not missing, f'{name} links to missing files or headings: {missing}'
    if name == 'README.md':
        assert any(link.startswith('docs/') for link in local)


def test_readme_python_example_runs(capsys):
    """The README's Python example works as printed: it matches and verifies two images."""
    readme = (CONFIG.parent / 'README.md').read_text()
    (code,) = re.findall(r'^```python\n(.*?)^```', readme, flags=re.S | re.M)
    exec(compile(code, 'README.md', 'exec'), {})
    words = capsys.readouterr().out.split()
    assert words[1:2] == ['matches,'] and int(words[0]) > 100 and words[-1] == 'ok'


def test_choices_named_elsewhere_are_the_schemas():
    """Modules that name a setting's choices for their own checks use the schema's."""
    from glue_ros.core import schema
    from glue_ros.frontend import vins

    assert tuple(vins.VELOCITY_UNITS) == schema.SETTINGS['vins_velocity_units'].choices


def test_model_defaults_are_the_schemas():
    """match_threshold -1 stands for the models' own thresholds, which the schema names."""
    from glue_ros.core import schema
    from glue_ros.matcher import COARSE_LOFTR_THRESHOLD
    from glue_ros.models.lightglue.network import LightGlue

    assert LightGlue.default_conf['filter_threshold'] == schema.MODEL_MATCH_THRESHOLD['lightglue']
    assert COARSE_LOFTR_THRESHOLD == schema.MODEL_MATCH_THRESHOLD['coarse_loftr']
    for name in ('depth_confidence', 'width_confidence'):
        assert LightGlue.default_conf[name] == schema.default(name)
