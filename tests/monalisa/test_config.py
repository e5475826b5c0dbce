"""Config validation: every key of every section rejects wrong types and ranges with one clear line."""

import dataclasses
import json
from pathlib import Path

import pytest

from monalisa.config import RANGE_PAIRS, Config, config_from_dict, load_config, to_toml
from monalisa.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DESCRIBE = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}


def all_keys():
    """(section, field) for every key of every section."""
    for section in dataclasses.fields(Config):
        for f in dataclasses.fields(section.default_factory()):
            yield section.name, f


def kind(f) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def wrong_values(f) -> list:
    """Values of the wrong type for this key."""
    return {"str": [5, True, 1.5], "int": ["5", 1.5, True], "float": ["1.0", True],
            "bool": ["true", 1, 0.0]}[kind(f)]


def toml_value(value) -> str:
    """A Python value as a TOML literal (json is close enough for str/int/float; bools differ)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def load_text(tmp_path, text: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def error_of(tmp_path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    error = info.value
    assert error.exit_code == 2
    assert "\n" not in str(error), "a config error must be one line"
    assert str(error).startswith(str(tmp_path / "config.toml") + ": ")  # names the file
    return error


KEYS = [pytest.param(section, f, id=f"{section}.{f.name}") for section, f in all_keys()]
LIMITED_KEYS = [pytest.param(section, f, id=f"{section}.{f.name}") for section, f in all_keys()
                if f.metadata["min"] is not None or f.metadata["max"] is not None
                or f.metadata["choices"] or f.metadata["pattern"]]


@pytest.mark.parametrize("section, f", KEYS)
def test_wrong_type_names_the_key_and_what_is_allowed(tmp_path, section, f):
    for value in wrong_values(f):
        message = str(error_of(tmp_path, f"[{section}]\n{f.name} = {toml_value(value)}\n"))
        assert f"[{section}] {f.name} must be " in message
        if f.metadata["choices"]:
            assert "one of " + ", ".join(repr(c) for c in f.metadata["choices"]) in message
        else:
            assert DESCRIBE[kind(f)] in message
        assert f"got {value!r}" in message


@pytest.mark.parametrize("section, f", LIMITED_KEYS)
def test_out_of_range_values_are_rejected(tmp_path, section, f):
    meta = f.metadata
    bad = []
    step = 1 if kind(f) == "int" else 0.001
    if meta["min"] is not None:
        bad.append(meta["min"] - step)
    if meta["max"] is not None:
        bad.append(meta["max"] + step)
    if meta["choices"]:
        bad.append("no-such-choice")
    if f.name == "background":
        bad += ["red", "#12345", "#12345g"]
    if f.name == "fourcc":
        bad += ["MJPEG", "MJ"]
    for value in bad:
        if kind(f) == "int":
            value = int(value) if not isinstance(value, str) else value
        message = str(error_of(tmp_path, f"[{section}]\n{f.name} = {toml_value(value)}\n"))
        assert f"[{section}] {f.name} must be" in message
        if meta["min"] is not None and meta["max"] is not None and not meta["choices"]:
            assert f"from {meta['min']} to {meta['max']}" in message


@pytest.mark.parametrize("section, f", [k for k in LIMITED_KEYS if not k.values[1].metadata["pattern"]])
def test_the_limits_themselves_are_accepted(tmp_path, section, f):
    meta = f.metadata
    values = [v for v in (meta["min"], meta["max"]) if v is not None] + list(meta["choices"] or ())
    for value in values:
        if kind(f) == "int":
            value = int(value)
        if any(section == s and f.name in pair for s, *pair in RANGE_PAIRS):
            continue  # tied together: the longest >= the shortest, tested below
        config = load_text(tmp_path, f"[{section}]\n{f.name} = {toml_value(value)}\n")
        assert getattr(getattr(config, section), f.name) == value


def test_floats_accept_integers_and_store_floats(tmp_path):
    config = load_text(tmp_path, "[viewer]\nhold_s = 2\n")
    assert config.viewer.hold_s == 2.0 and isinstance(config.viewer.hold_s, float)


def test_unknown_key_is_named_with_the_known_ones(tmp_path):
    message = str(error_of(tmp_path, "[camera]\nfsp = 30\n"))
    assert "unknown key [camera] fsp" in message and "fps" in message


def test_unknown_section_is_named_with_the_known_ones(tmp_path):
    message = str(error_of(tmp_path, "[camrea]\nfps = 30\n"))
    assert "unknown section [camrea]" in message and "camera" in message


def test_a_section_must_be_a_table(tmp_path):
    message = str(error_of(tmp_path, "camera = 5\n"))
    assert "'camera' must be a [section] table" in message and "[detector]" in message


def test_a_key_outside_any_section_names_its_section(tmp_path):
    assert "'source' is not inside a [section]; did you mean [camera] source?" in str(
        error_of(tmp_path, 'source = "1"\n'))
    assert "[gaze]" in str(error_of(tmp_path, 'nonsense = 1\n'))  # lists the sections


def test_a_key_outside_any_section_is_one_line_with_cli_overrides(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("camera = 3\n")  # used to crash merging the CLI's [camera] overrides
    with pytest.raises(ConfigError, match="'camera' must be a \\[section\\] table"):
        load_config(path, {"camera": {"source": None, "loop": None}})


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("section, key", [("viewer", "min_cutoff"), ("gaze", "eye_distance_mm"),
                                          ("warp", "head_follow")])
def test_non_finite_numbers_are_rejected(tmp_path, text, section, key):
    message = str(error_of(tmp_path, f"[{section}]\n{key} = {text}\n"))
    assert f"[{section}] {key} must be a number from" in message


def test_every_float_key_rejects_nan():
    from monalisa.config import check_value

    for section, f in all_keys():
        if kind(f) == "float":
            with pytest.raises(ConfigError, match=rf"\[{section}\] {f.name}"):
                check_value(section, f, float("nan"))


def test_relative_paths_in_a_file_are_taken_from_its_folder(tmp_path, monkeypatch):
    folder = tmp_path / "kiosk"
    folder.mkdir()
    (folder / "config.toml").write_text('[pool]\npath = "pools/mona"\n[log]\nfile = "logs/k.log"\n'
                                        '[camera]\nsource = "clips/walk.mp4"\n')
    monkeypatch.chdir(tmp_path)  # elsewhere, like systemd's cwd /
    config = load_config(Path("kiosk/config.toml"))
    assert config.pool.path == str(folder / "pools" / "mona")
    assert config.log.file == str(folder / "logs" / "k.log")
    assert config.camera.source == str(folder / "clips" / "walk.mp4")


def test_paths_that_stay_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    path = tmp_path / "config.toml"
    path.write_text('[pool]\npath = "~/pools/a"\n[log]\nfile = ""\n[camera]\nsource = "2"\n')
    config = load_config(path)
    assert config.pool.path == str(tmp_path / "home" / "pools" / "a")  # ~ expanded, not joined
    assert config.log.file == "" and config.camera.source == "2"  # empty and camera indices untouched
    path.write_text('[camera]\nsource = "/dev/v4l/by-id/cam"\n')
    assert load_config(path).camera.source == "/dev/v4l/by-id/cam"


def test_cli_override_paths_stay_relative_to_the_cwd(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[camera]\nsource = "a.mp4"\n')
    assert load_config(path, {"camera": {"source": "b.mp4"}}).camera.source == "b.mp4"


def test_override_errors_name_the_flag(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("")
    with pytest.raises(ConfigError, match=r"^--head-follow: \[warp\] head_follow must be a number from 0 to 1"):
        load_config(path, {"warp": {"head_follow": 2.0}}, {"warp.head_follow": "--head-follow"})


def test_path_keys_say_how_relative_paths_are_read():
    from monalisa.config import RELATIVE_HELP

    for section, f in all_keys():
        assert (RELATIVE_HELP in f.metadata["help"]) == f.metadata["path"], f"[{section}] {f.name}"


def test_bad_toml_is_one_line(tmp_path):
    assert "not valid TOML" in str(error_of(tmp_path, "[camera\nfps = 30\n"))
    assert "not valid TOML" in str(error_of(tmp_path, "[camera]\nfps = \n"))


def test_not_utf8_is_a_config_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"[camera]\nsource = \"\xff\xfe\"\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_reopen_max_must_not_be_below_reopen_min(tmp_path):
    message = str(error_of(tmp_path, "[camera]\nreopen_min_s = 3.0\nreopen_max_s = 1.0\n"))
    assert "[camera] reopen_max_s must be >= reopen_min_s" in message


def test_a_life_range_must_not_be_upside_down(tmp_path):
    message = str(error_of(tmp_path, "[life]\nblink_min_s = 0.5\n"))
    assert "[life] blink_max_s must be >= blink_min_s (0.5)" in message
    message = str(error_of(tmp_path, "[life]\nglance_pause_max_s = 1.0\n"))
    assert "[life] glance_pause_max_s must be >= glance_pause_min_s" in message


def test_cli_overrides_are_validated_and_none_means_not_given(tmp_path):
    config = load_config(None, {"camera": {"source": "/dev/video2", "fps": None}})
    assert config.camera.source == "/dev/video2" and config.camera.fps == 30
    with pytest.raises(ConfigError, match=r"^config: \[camera\] fps must be an integer"):
        load_config(None, {"camera": {"fps": "fast"}})


def test_overrides_win_over_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[camera]\nsource = \"1\"\n[render]\nfullscreen = false\n")
    config = load_config(path, {"render": {"fullscreen": True}})
    assert config.camera.source == "1" and config.render.fullscreen is True


def test_defaults_round_trip_through_to_toml(tmp_path):
    assert load_text(tmp_path, to_toml(Config())) == Config()


def other_value(f, value):
    """A valid value different from the default, to prove every key round-trips."""
    meta = f.metadata
    if meta["choices"]:
        return next(c for c in meta["choices"] if c != value)
    if kind(f) == "bool":
        return not value
    if kind(f) == "str":
        return {"background": "#a0b1c2", "fourcc": "YUYV"}.get(f.name, f"/srv/kiosk/{f.name} value")
    if meta["max"] is not None:
        return type(value)(meta["max"])
    return value + 1


def test_every_key_round_trips_through_to_toml(tmp_path):
    config = Config()
    for section, f in all_keys():
        part = getattr(config, section)
        setattr(part, f.name, other_value(f, getattr(part, f.name)))
    assert config != Config()
    assert load_text(tmp_path, to_toml(config)) == config


def test_strings_with_quotes_and_backslashes_round_trip(tmp_path):
    config = Config()
    config.camera.source = '/srv/C:\\videos\\"gallery" test.mp4'
    assert load_text(tmp_path, to_toml(config)) == config


def test_to_toml_documents_every_key():
    text = to_toml(Config())
    for section, f in all_keys():
        assert f"[{section}]" in text
        assert f"\n{f.name} = " in text and f.metadata["help"] in text


def test_repo_config_toml_is_valid_and_complete():
    path = REPO / "config.toml"
    if not path.is_file():
        pytest.skip("config.toml not written yet")
    load_config(path)
    text = path.read_text()
    missing = [f"[{s}] {f.name}" for s, f in all_keys() if f"{f.name} =" not in text]
    assert not missing, f"config.toml does not document {missing}"


def test_config_from_dict_names_its_origin():
    with pytest.raises(ConfigError, match=r"^flags: \[render\] max_fps must be an integer from 1 to 500"):
        config_from_dict({"render": {"max_fps": 0}}, origin="flags")


def test_renamed_key_is_accepted_with_a_warning(tmp_path, caplog):
    path = tmp_path / "old.toml"
    path.write_text("[viewer]\nidle_after = 2.5\n")
    with caplog.at_level("WARNING", logger="monalisa.config"):
        config = load_config(path)
    assert config.viewer.idle_after_s == 2.5
    assert "idle_after is now called idle_after_s" in caplog.text


def test_old_and_new_name_together_is_an_error(tmp_path):
    path = tmp_path / "both.toml"
    path.write_text("[viewer]\nidle_after = 2.5\nidle_after_s = 3\n")
    with pytest.raises(ConfigError, match="old name of idle_after_s"):
        load_config(path)
