"""Where the data the project does not ship is looked for."""

from pathlib import Path

from glue_ros.core import data_files


def test_the_folder_is_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv(data_files.ENV, str(tmp_path))
    assert data_files.data_file('weights/x.pt') == tmp_path / 'weights' / 'x.pt'
    reason = data_files.missing_reason(data_files.COARSE_LOFTR_WEIGHTS)
    assert str(tmp_path) in reason and 'Coarse_LoFTR_TRT' in reason


def test_the_default_is_the_user_cache_not_a_path_beside_the_code(monkeypatch, tmp_path):
    monkeypatch.delenv(data_files.ENV, raising=False)
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert data_files.shared_dir() == tmp_path / 'glue_ros'
    monkeypatch.delenv('XDG_CACHE_HOME')
    assert data_files.shared_dir() == Path.home() / '.cache' / 'glue_ros'
    package = Path(data_files.__file__).resolve().parents[2]
    assert package not in data_files.shared_dir().parents
