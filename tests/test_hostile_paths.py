"""Hostile output paths (issue 11, items 2, 3, 5, 12b): symbolic links (dangling or not),
devices and FIFOs, the input itself (directly or through a link), directories, missing or
read-only directories and names at the file system's length limit.

Every CLI case asserts: exit status 2, one line on stderr, no traceback, the directory's
entries unchanged (no output, no hidden ``.NAME.tmp-*`` file), every file's sha256 unchanged
(the input's included) and links still pointing where they pointed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from conftest import pattern_frames, write_video

import vidcam.models.open
import vidcam.video.explain_pass
from vidcam.cli import main
from vidcam.errors import VidcamError
from vidcam.paths import AtomicFile, check_output, write_text


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("paths") / "in.mkv", pattern_frames(12, 32, 48))


@pytest.fixture(autouse=True)
def no_model(monkeypatch):
    """Path refusals come before any work: loading the model fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the paths were refused")

    monkeypatch.setattr(vidcam.models.open, "open_model", refuse)  # where the CLI opens it
    monkeypatch.setattr(vidcam.video.explain_pass, "open_model", refuse)


def _state(d: Path) -> dict[str, str]:
    """Every entry of ``d``: a file's sha256, a link's target, or the kind of entry."""
    out = {}
    for p in sorted(d.iterdir()):
        if p.is_symlink():
            out[p.name] = "-> " + os.readlink(p)
        elif p.is_file():
            out[p.name] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[p.name] = "dir" if p.is_dir() else "special"
    return out


def _refused(capsys, d: Path, clip: Path, *args: str) -> str:
    before, src = _state(d), _state(clip.parent)
    capsys.readouterr()
    rc = main(["explain", *args, "--model", "sample", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcam explain: error: "), err
    assert _state(d) == before and _state(clip.parent) == src
    return lines[0]


@pytest.mark.parametrize("overwrite", [False, True])
def test_dangling_symlink_output_is_never_replaced(clip, tmp_path, capsys, overwrite):
    link = tmp_path / "o.mp4"
    link.symlink_to(tmp_path / "nowhere" / "x.mp4")
    flag = ["--overwrite"] if overwrite else []
    line = _refused(capsys, tmp_path, clip, str(clip), "-o", str(link), *flag)
    assert "is a symbolic link" in line, line
    assert link.is_symlink() and not link.exists()


@pytest.mark.parametrize("option", ["-o", "--json", "--preview"])
def test_symlink_to_a_file_is_not_replaced_even_with_overwrite(clip, tmp_path, capsys, option):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    name = {"-o": "o.mp4", "--json": "o.json", "--preview": "o.png"}[option]
    (tmp_path / name).symlink_to(target)
    args = [str(clip), "-o", str(tmp_path / "v.mp4")] if option != "-o" else [str(clip)]
    line = _refused(capsys, tmp_path, clip, *args, option, str(tmp_path / name), "--overwrite")
    assert "symbolic link" in line, line
    assert target.read_text() == "keep me"


def test_fifo_output_is_refused_even_with_overwrite(clip, tmp_path, capsys):
    fifo = tmp_path / "o.json"
    os.mkfifo(fifo)
    line = _refused(
        capsys, tmp_path, clip, str(clip), "-o", str(tmp_path / "v.mp4"),
        "--json", str(fifo), "--overwrite",
    )  # fmt: skip
    assert "not a regular file" in line, line


def test_device_output_is_refused():
    with pytest.raises(VidcamError, match="not a regular file"):
        check_output("--json", "/dev/null", overwrite=True)  # checked only: never written


@pytest.mark.parametrize("through_link", [False, True])
@pytest.mark.parametrize("option", ["-o", "--json"])
def test_the_input_is_never_an_output(tmp_path, capsys, option, through_link):
    src = write_video(tmp_path / "in.mp4", pattern_frames(6, 16, 16), codec="libx264")
    out = src
    if through_link:
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / "alias.mp4"
        os.link(src, out)  # a hard link: the same file under another name
    args = (
        [str(src), "-o", str(out)] if option == "-o" else [str(src), "-o", str(tmp_path / "v.mp4")]
    )
    if option == "--json":
        args += ["--json", str(out)]
    line = _refused(capsys, tmp_path, src, *args, "--overwrite")
    assert "is the input file" in line, line


def test_directory_missing_or_read_only(clip, tmp_path, capsys):
    (tmp_path / "d.mp4").mkdir()
    assert "is a directory" in _refused(
        capsys, tmp_path, clip, str(clip), "-o", str(tmp_path / "d.mp4")
    )
    assert "does not exist" in _refused(
        capsys, tmp_path, clip, str(clip), "-o", str(tmp_path / "missing" / "o.mp4")
    )
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as root: a read-only directory is still writable")
        assert "not writable" in _refused(
            capsys, tmp_path, clip, str(clip), "-o", str(ro / "o.mp4")
        )
    finally:
        ro.chmod(0o755)


@pytest.mark.parametrize("length", [242, 300, 5000])
def test_names_too_long_are_one_line_errors(clip, tmp_path, capsys, length):
    name = "n" * (length - 4) + ".mp4"
    line = _refused(capsys, tmp_path, clip, str(clip), "-o", str(tmp_path / name))
    assert "choose a shorter name" in line or "too long" in line.lower(), line


def test_existing_file_needs_overwrite(clip, tmp_path, capsys):
    (tmp_path / "o.mp4").write_bytes(b"old")
    line = _refused(capsys, tmp_path, clip, str(clip), "-o", str(tmp_path / "o.mp4"))
    assert "already exists; pass --overwrite" in line, line


def test_commit_never_replaces_a_link_that_appeared_meanwhile(tmp_path):
    """check_output passed, then a symlink took the name before the rename: not replaced."""
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    final = tmp_path / "o.json"
    for overwrite in (True, False):
        f = AtomicFile(final, overwrite=overwrite)
        f.tmp.write_text("new")
        final.symlink_to(target)
        with pytest.raises(VidcamError, match="not replaced"):
            f.commit()
        assert final.is_symlink() and target.read_text() == "keep me"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["o.json", "precious.txt"]
        final.unlink()
    write_text(final, "ok")  # a regular file (or none) is replaced as before
    write_text(final, "again")
    assert final.read_text() == "again"
