"""A full disk names itself in one line (``no space left on device writing OUT``), exit 2, and keeps what was
finished: renders into a real 300 KiB tmpfs (root only; skipped where it cannot be mounted)."""

from __future__ import annotations

import errno
import hashlib
import subprocess
from pathlib import Path

import pytest

from dreamreel.cli.commands import main
from dreamreel.errors import os_error_message
from dreamreel.io import ffmpeg

TINY = ["--size", "160", "--steps", "1", "--octaves", "1", "-q"]
ZOOM = [*TINY, "--first-octaves", "1"]


@pytest.fixture()
def small_disk(tmp_path):
    """A 300 KiB tmpfs at tmp_path/disk: a few frames fit, a long render does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _fails_in_one_line(argv, capsys, name: str) -> None:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err == f"dreamreel: error: no space left on device writing {name!r}", err


@pytest.mark.parametrize("command, out, extra", [
    ("zoom", "z.mp4", ["--frames", "200", "--crf", "0"]),
    ("zoom", "z.gif", ["--frames", "200"]),
    ("zoom", "frames/", ["--frames", "200"]),
    ("dream", "o.png", ["--size", "700"]),
])
def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(command, out, extra, small_disk, data_dir,
                                                                       capsys, monkeypatch):
    monkeypatch.chdir(small_disk)
    argv = [command, data_dir / "chelsea.png", "-o", out, *(ZOOM if command == "zoom" else TINY), *extra]
    _fails_in_one_line(argv, capsys, out.rstrip("/"))
    assert _hashes(small_disk) == {}  # no temp file, no half-written output, no lock


def test_a_full_disk_keeps_the_finished_output_and_its_sidecar(small_disk, data_dir, capsys, monkeypatch):
    monkeypatch.chdir(small_disk)
    out = Path("z.mp4")
    assert main(["zoom", str(data_dir / "chelsea.png"), "-o", str(out), *ZOOM, "--frames", "3"]) == 0
    capsys.readouterr()
    before = _hashes(small_disk)
    assert set(before) == {"z.mp4", "z.json"}
    code = main(["zoom", str(data_dir / "chelsea.png"), "-o", str(out), *ZOOM, "--frames", "200", "--crf", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err == "dreamreel: error: no space left on device writing 'z.mp4'", err  # not its checkpoint's partial
    assert _hashes(small_disk) == before  # the finished render is untouched (the new one went to its checkpoint)


def test_ffmpeg_failures_on_a_full_disk_are_oserrors():
    assert isinstance(ffmpeg.failure("encode the MP4", 1, b"[out] Error: No space left on device\n"), OSError)
    exc = ffmpeg.failure("encode the MP4", 228, "")  # AVERROR(ENOSPC) as an exit status
    assert isinstance(exc, OSError) and exc.errno == errno.ENOSPC
    other = ffmpeg.failure("encode the MP4", 1, "Invalid argument\n")
    assert isinstance(other, RuntimeError) and "Invalid argument" in str(other)
    assert os_error_message(OSError(errno.ENOSPC, "No space left on device", "a/b.mp4")) == \
        "no space left on device writing 'a/b.mp4'"
    assert os_error_message(OSError(errno.EACCES, "Permission denied", "x")) == "Permission denied: 'x'"
