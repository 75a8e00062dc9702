"""Scenario files: keys are flag words; every mistake names the file, the key or the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from shrinkcli.config import merge, read_scenario
from shrinkcli.errors import UsageError
from shrinkcli.scenario import Scenario

SCENARIOS = Path(__file__).parent.parent / "scenarios"


def test_the_six_article_scenarios_read_as_documented():
    from conftest import SCENARIOS as ARGS

    files = sorted(SCENARIOS.glob("*.toml"))
    assert [f.stem for f in files] == sorted(ARGS)
    for f in files:
        values = read_scenario(f)
        assert values["name"] == f.stem and values["title"] and values["lesson"]
        sim = {k: v for k, v in values.items() if k not in ("name", "title", "lesson")}
        assert Scenario(**sim) == Scenario(**ARGS[f.stem])


def test_flags_override_file_values(tmp_path):
    p = tmp_path / "s.toml"
    p.write_text('name = "x"\nsd-int = 1.0\nframes = 30\n')
    merged = merge(read_scenario(p), {"sd_int": 2.0, "frames": None, "seed": 5})
    assert merged == {"name": "x", "sd_int": 2.0, "frames": 30, "seed": 5}


def test_data_path_is_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    p = tmp_path / "sub" / "s.toml"
    p.write_text('data = "mine.csv"\n')
    (tmp_path / "sub" / "mine.csv").write_text("y,x,cluster\n")
    assert read_scenario(p)["data"] == str(tmp_path / "sub" / "mine.csv")


@pytest.mark.parametrize(
    "text,parts",
    [
        ("sd_intt = 1\n", ["unknown key 'sd_intt'"]),
        ('sd-int = "big"\n', ["key 'sd-int'", "a number"]),
        ("obs-per-cluster = 2.5\n", ["key 'obs-per-cluster'", "whole number"]),
        ("ellipses = 1\n", ["key 'ellipses'", "true or false"]),
        ("frames = true\n", ["key 'frames'", "whole number"]),
        ("sd-int = nan\n", ["key 'sd-int'", "finite"]),
        ("sd-int = -1\n", ["--sd-int", "[0, 1e+06]"]),
        ("balanced = 2\n", ["--balanced", "(0, 1]"]),
        ('ease = "wobble"\n', ["--ease", "wobble"]),
        ('name = "a"\nsd-int = = 2\n', ["line 2", "syntax"]),
    ],
)
def test_malformed_files_name_file_and_key(tmp_path, text, parts):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(UsageError) as info:
        read_scenario(p)
    message = str(info.value)
    assert str(p) in message
    for part in parts:
        assert part in message


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="no such scenario file"):
        read_scenario(tmp_path / "none.toml")


def test_key_lists_match_the_objects_and_flags_they_mirror():
    import dataclasses

    from shrinkcli.cli import _DATA_FLAGS, _FILE_FLAGS, _MODEL_FLAGS, _PICTURE_FLAGS
    from shrinkcli.config import KEYS
    from shrinkcli.draw import RenderSettings
    from shrinkcli.pipeline import PICTURE_KEYS

    assert set(PICTURE_KEYS) == {f.name for f in dataclasses.fields(RenderSettings)}
    flags = [n for n, _, _ in _DATA_FLAGS + _FILE_FLAGS + _MODEL_FLAGS + _PICTURE_FLAGS]
    assert {k.replace("-", "_") for k in KEYS} - {"name", "title", "lesson"} == set(flags)
