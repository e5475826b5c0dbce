"""The command line: pool commands, config show, and one-line errors with the right exit codes."""

import pytest

from monalisa.cli import main
from monalisa.config import load_config

from test_pool import write_pool


@pytest.fixture
def pool_dir(tmp_path):
    return write_pool(tmp_path / "pool", rows=2, cols=3)


def one_error_line(capsys, code, expected_code=1):
    err = capsys.readouterr().err
    assert code == expected_code
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("monalisa: error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_pool_info(pool_dir, capsys):
    assert main(["pool", "info", str(pool_dir)]) == 0
    out = capsys.readouterr().out
    assert "2 row(s) x 3 column(s) = 6 frames" in out and "engine     test" in out


def test_pool_export_sheet_gif(pool_dir, tmp_path, capsys):
    assert main(["pool", "export", str(pool_dir), "--out", str(tmp_path / "frames")]) == 0
    assert len(list((tmp_path / "frames").glob("frame_*.png"))) == 6
    assert main(["pool", "sheet", str(pool_dir), "--out", str(tmp_path / "sheet.png")]) == 0
    assert (tmp_path / "sheet.png").stat().st_size > 0
    assert main(["pool", "gif", str(pool_dir), "--out", str(tmp_path / "sweep.gif")]) == 0
    assert (tmp_path / "sweep.gif").stat().st_size > 0


def test_bad_pool_is_one_line(pool_dir, capsys):
    (pool_dir / "manifest.json").write_text("[")
    line = one_error_line(capsys, main(["pool", "info", str(pool_dir)]))
    assert "manifest.json: bad JSON" in line


def test_usage_error_is_one_line(capsys):
    line = one_error_line(capsys, main(["pool", "info"]), expected_code=2)
    assert "--help" in line
    one_error_line(capsys, main(["precompute", "x.jpg", "--out", "o", "--yaw-steps", "many"]), expected_code=2)


def test_config_show_round_trips(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[gaze]\nmapping = 'linear'\n")
    assert main(["config", "show", "--config", str(cfg)]) == 0
    shown = tmp_path / "shown.toml"
    shown.write_text(capsys.readouterr().out)
    assert load_config(shown).gaze.mapping == "linear"


def test_bad_config_exits_2_naming_the_key(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[camera]\nfps = 'fast'\n")
    line = one_error_line(capsys, main(["config", "show", "--config", str(cfg)]), expected_code=2)
    assert "[camera] fps" in line and "integer" in line


def test_repo_config_toml_documents_every_key():
    from pathlib import Path

    import dataclasses

    from monalisa.config import Config

    path = Path(__file__).resolve().parents[2] / "config.toml"
    text = path.read_text()
    assert load_config(path) == Config()
    for section in dataclasses.fields(Config):
        assert f"[{section.name}]" in text
        for key in dataclasses.fields(getattr(Config(), section.name)):
            assert f"\n{key.name} = " in text, f"config.toml lacks [{section.name}] {key.name}"


def test_output_mistakes_are_one_line(pool_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    one_error_line(capsys, main(["pool", "export", str(pool_dir), "--out", str(blocker / "frames")]))
    line = one_error_line(capsys, main(["pool", "sheet", str(pool_dir), "--out", str(tmp_path / "sheet")]))
    assert "written as .png or .jpg" in line
    one_error_line(capsys, main(["pool", "gif", str(pool_dir), "--out", str(tmp_path / "a.gif"), "--width", "0"]),
                   expected_code=2)
    one_error_line(capsys, main(["config", "show", "--config", str(tmp_path)]), expected_code=2)
    assert not list(tmp_path.glob(".*tmp*"))


def test_doctor_reports_a_bad_config_instead_of_refusing(tmp_path, capsys, monkeypatch):
    from monalisa import doctor

    cfg = tmp_path / "c.toml"
    cfg.write_text("[camera]\nfps = 'fast'\n")
    seen = {}
    monkeypatch.setattr(doctor, "run_doctor", lambda config, path: seen.update(path=path) or 1)
    assert main(["doctor", "--config", str(cfg)]) == 1
    assert seen["path"] == cfg


def test_home_in_config_paths_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = tmp_path / "c.toml"
    cfg.write_text("[pool]\npath = '~/pools/lisa'\n")
    assert load_config(cfg).pool.path == str(tmp_path / "pools" / "lisa")


def test_abbreviated_flags_are_refused(capsys):
    line = one_error_line(capsys, main(["precompute", "x.jpg", "--out", "o", "--pitch", "3"]), expected_code=2)
    assert "--pitch" in line and not line.startswith("monalisa: error: monalisa")


def test_sweep_needs_gif_or_mp4(pool_dir, tmp_path, capsys):
    line = one_error_line(capsys, main(["pool", "gif", str(pool_dir), "--out", str(tmp_path / "x.webm")]))
    assert ".gif or .mp4" in line and not (tmp_path / "x.webm").exists()


def test_termination_signals_interrupt_like_ctrl_c():
    import os
    import signal

    from monalisa.cli import Terminated, _interrupt_on_termination

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        _interrupt_on_termination()
        with pytest.raises(KeyboardInterrupt) as stop:
            os.kill(os.getpid(), signal.SIGTERM)
        assert isinstance(stop.value, Terminated) and stop.value.signum == signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, before[0])
        signal.signal(signal.SIGHUP, before[1])
