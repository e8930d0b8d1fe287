"""Stageboard's version: `pyproject.toml`'s, the one place it is written."""

import functools
import importlib.metadata
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@functools.cache
def version() -> str:
    """The running code's version: its checkout's pyproject.toml, else the installed
    package's metadata, else "unknown"."""
    try:
        return tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        pass
    try:
        return importlib.metadata.version("stageboard")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
