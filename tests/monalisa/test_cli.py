"""The command line: pool commands, config show, and one-line errors with the right exit codes."""

import pytest

from monalisa.cli import main
from monalisa.config import load_config
from monalisa.testing.pools import write_pool


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


def test_pool_info_says_when_frames_reach_less_than_the_grid(tmp_path, capsys):
    from monalisa.pool.format import PoolWriter
    from monalisa.testing.pools import PATCH, cell_patch, portrait_image

    yaws = [-30.0, 0.0, 30.0]
    with PoolWriter(tmp_path / "p", portrait_image(), "ab" * 32, PATCH, yaws, [0.0], "test", {}, "p.png") as w:
        w.add(0, 0, cell_patch(0, 0), shows=(-17.4, 0.0))
        w.add(0, 1, cell_patch(0, 1))
        w.add(0, 2, cell_patch(0, 2))
    assert main(["pool", "info", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "-30.0 .. +30.0 deg (the frames reach -17.4 .. +30.0" in out
    assert "pitch      +0.0 .. +0.0 deg\n" in out


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
    import dataclasses
    from pathlib import Path

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
    from monalisa.ops import doctor

    cfg = tmp_path / "c.toml"
    cfg.write_text("[camera]\nfps = 'fast'\n")
    seen = {}
    monkeypatch.setattr(doctor, "run_doctor", lambda config, path, pool=None: seen.update(path=path) or 1)
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


def unwritable_log_config(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[log]\nfile = "{blocker}/k.log"\n')
    return cfg


def test_unwritable_log_file_does_not_stop_config_show(tmp_path, capsys):
    cfg = unwritable_log_config(tmp_path)
    assert main(["config", "show", "--config", str(cfg)]) == 0
    captured = capsys.readouterr()
    assert "[log]" in captured.out
    warnings = [line for line in captured.err.splitlines() if line.strip()]
    assert len(warnings) == 1 and "[log] file: cannot write" in warnings[0] and "stderr only" in warnings[0]


def test_unwritable_log_file_is_a_doctor_fail_row_not_a_refusal(tmp_path, capsys, monkeypatch):
    from monalisa.ops import doctor

    cfg = unwritable_log_config(tmp_path)
    seen = {}
    monkeypatch.setattr(doctor, "run_doctor", lambda config, path, pool=None: seen.update(
        rows=doctor.check_log_file(config.log)) or 1)
    assert main(["doctor", "--config", str(cfg)]) == 1
    (row,) = seen["rows"]
    assert row.status == doctor.FAIL and "k.log" in row.detail and "[log] file" in row.fix
    assert capsys.readouterr().err == ""  # the row says it; no extra warning


def test_unwritable_log_file_still_starts_the_kiosk(tmp_path, capsys, monkeypatch):
    from monalisa import cli

    cfg = unwritable_log_config(tmp_path)
    monkeypatch.setitem(cli.COMMANDS, "run", lambda args, config: 0)
    assert main(["run", "--headless", "--config", str(cfg)]) == 0
    assert "[log] file: cannot write" in capsys.readouterr().err


def test_flag_errors_name_the_flag(capsys):
    line = one_error_line(capsys, main(["precompute", "x.jpg", "--out", "o", "--head-follow", "2"]), 2)
    assert "--head-follow: [warp] head_follow must be a number from 0 to 1" in line


@pytest.mark.parametrize("flag, value", [("--head-follow", "nan"), ("--max-yaw", "inf"),
                                         ("--max-pitch", "nan"), ("--eyes", "1,2,nan,4")])
def test_non_finite_float_flags_are_usage_errors(capsys, flag, value):
    line = one_error_line(capsys, main(["precompute", "x.jpg", "--out", "o", flag, value]), 2)
    assert flag in line and repr(value) in line


def test_non_finite_seconds_are_refused(capsys):
    line = one_error_line(capsys, main(["run", "--headless", "--max-seconds", "inf"]), 2)
    assert "--max-seconds" in line


def test_unwritable_trace_is_one_line_naming_the_flag(tmp_path, capsys):
    trace = tmp_path / "nonexist" / "t.jsonl"
    line = one_error_line(capsys, main(["run", "--headless", "--trace", str(trace)]), 2)
    assert f"--trace: cannot write {trace}" in line and "Errno" not in line


def test_broken_pipe_exits_quietly(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "MONALISA_CONFIG"} | {"XDG_CONFIG_HOME": str(tmp_path)}
    script = "import sys; from monalisa.cli import main; sys.exit(main(['config', 'show']))"
    proc = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before the first line, like `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err


def test_eyes_help_says_they_replace_detection():
    from monalisa.cli import build_parser

    pre = build_parser()._subparsers._group_actions[0].choices["precompute"]
    text = " ".join(pre.format_help().split())
    assert "replace FaceMesh detection for the whole portrait" in text and "--faces" in text


def test_doctor_pool_flag_reaches_the_doctor(tmp_path, monkeypatch):
    from monalisa.ops import doctor

    seen = {}
    monkeypatch.setattr(doctor, "run_doctor", lambda config, path, pool=None: seen.update(pool=pool) or 0)
    assert main(["doctor", "--pool", str(tmp_path / "p")]) == 0
    assert seen["pool"] == str(tmp_path / "p")
