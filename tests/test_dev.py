"""dev.py: the demo's settings in .env, and a clear stop when a port is taken."""

import socket

import pytest

import dev


def test_the_demo_block_is_rewritten_and_never_taken_for_a_real_plane(tmp_path, monkeypatch):
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.delenv("PLANE_API_URL", raising=False)
    (tmp_path / ".env").write_text("DJANGO_SECRET_KEY=abc\nDJANGO_DEBUG=true\n")
    dev.write_demo_block(dev.demo_settings())
    dev.write_demo_block({**dev.demo_settings(), "PLANE_API_URL": "http://127.0.0.1:18001"})
    text = (tmp_path / ".env").read_text()
    assert text.startswith("DJANGO_SECRET_KEY=abc\nDJANGO_DEBUG=true\n")
    assert text.count(dev.DEMO_BEGIN) == 1 and "PLANE_API_URL=http://127.0.0.1:18001" in text
    assert not dev.plane_configured()
    (tmp_path / ".env").write_text(text + "PLANE_API_URL=https://plane.example.com\n")
    assert dev.plane_configured()


def test_a_port_in_use_stops_the_start_naming_the_variable(monkeypatch):
    with socket.socket() as taken:
        taken.bind((dev.HOST, 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(SystemExit) as stopped:
            dev.check_ports({"STAGEBOARD_PLANE_STANDIN_PORT": port})
    message = str(stopped.value)
    assert f"port {port}" in message and "in use" in message
    assert f"STAGEBOARD_PLANE_STANDIN_PORT={int(port) + 100}" in message


def test_up_names_a_child_that_died_and_its_exit_code_then_stops_the_rest(capsys):
    import subprocess
    import sys

    children = {
        "the q cluster": subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"]),
        "the web server": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
    }
    assert dev.supervise(children) == 3
    assert "the q cluster stopped: exit code 3; stopping the rest." in capsys.readouterr().out
    assert children["the web server"].returncode is not None  # stopped with the rest


def test_a_signal_is_named_as_one():
    assert dev.how_it_ended(-9) == "killed by SIGKILL"
    assert dev.how_it_ended(0) == "exit code 0"


def test_pip_is_quiet_unless_it_fails(monkeypatch, capsys):
    import sys

    monkeypatch.setattr(dev, "PYTHON", sys.executable)
    dev.pip("--version")
    assert capsys.readouterr() == ("", "")
    with pytest.raises(SystemExit) as stopped:
        dev.pip("install", "--no-index", "stageboard-no-such-package")
    assert "pip install --no-index stageboard-no-such-package failed" in str(stopped.value)
    assert "stageboard-no-such-package" in capsys.readouterr().err  # pip's own words, kept


def test_the_standin_keeps_its_board_across_restarts(tmp_path):
    import json
    import signal
    import subprocess
    import sys
    import urllib.parse
    import urllib.request

    from tests.processes import ROOT, free_port

    state = tmp_path / "plane-standin.json"
    port = free_port()

    def start():
        command = [
            sys.executable,
            "-m",
            "plane_standin",
            "--port",
            str(port),
            "--state",
            str(state),
        ]
        standin = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        # It listens once it says so (after "board restored from ..." on a restart).
        for line in iter(standin.stdout.readline, ""):
            if line.startswith("Plane stand-in at"):
                return standin
        pytest.fail(f"the stand-in stopped: exit code {standin.wait()}")

    def board() -> dict:
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/board.json").read())

    standin = start()
    moved = board()["work_items"][0]["id"]
    form = urllib.parse.urlencode({"item": moved}).encode()
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/board/delete", form))
    assert moved not in [i["id"] for i in board()["work_items"]]
    standin.send_signal(signal.SIGTERM)
    standin.communicate(timeout=10)
    standin = start()
    try:
        assert moved not in [i["id"] for i in board()["work_items"]]
    finally:
        standin.send_signal(signal.SIGTERM)
        standin.communicate(timeout=10)
