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
