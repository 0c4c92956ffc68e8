"""fetch: download (file:// here, no internet), verify, and unpack only the keyword clips, safely and atomically."""

from __future__ import annotations

import hashlib
import io
import logging
import tarfile
from pathlib import Path, PurePosixPath

import pytest
from _audio_util import encode, word_like

from kws import cli, fetch
from kws.audio import load_audio
from kws.dataset import scan
from kws.fetch import FetchError, safe_relpath


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def make_archive(path: Path, escape_to: Path, words: tuple[str, ...] = ("bed", "happy", "cat")) -> Path:
    """A small Speech Commands-like .tar.gz: two clips per word, a decoy word, noise, docs and hostile members."""
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, "./", kind=tarfile.DIRTYPE)
        for i, word in enumerate(words):
            _add(tar, f"./{word}/", kind=tarfile.DIRTYPE)
            for n in range(2):
                _add(tar, f"./{word}/{i:04d}abcd_nohash_{n}.wav", encode(word_like(1.0, seed=10 * i + n)))
        _add(tar, "./dog/0000abcd_nohash_0.wav", encode(word_like(1.0)))  # a word we do not want
        _add(tar, "./_background_noise_/white_noise.wav", encode(word_like(1.0)))
        _add(tar, "./README.md", b"# Speech Commands\n")
        _add(tar, "./LICENSE", b"CC BY 4.0\n")
        _add(tar, "./validation_list.txt", b"bed/0000abcd_nohash_0.wav\n")
        _add(tar, "../evil", b"escaped!")  # path traversal
        _add(tar, "./bed/../../evil2.wav", b"escaped!")
        _add(tar, str(escape_to / "abs_evil.wav"), b"escaped!")  # an absolute path
        _add(tar, "./bed/link.wav", kind=tarfile.SYMTYPE, link="/etc/passwd")
        _add(tar, "./cat/hard.wav", kind=tarfile.LNKTYPE, link="./bed/0000abcd_nohash_0.wav")
    return path


@pytest.fixture
def archive(tmp_path) -> Path:
    return make_archive(tmp_path / "speech_commands_test.tar.gz", escape_to=tmp_path)


def no_escapes(tmp_path: Path) -> None:
    for p in (tmp_path / "evil", tmp_path.parent / "evil", tmp_path / "evil2.wav", tmp_path / "abs_evil.wav"):
        assert not p.exists(), p


def test_installs_only_the_keyword_clips(tmp_path, archive, caplog) -> None:
    dest = tmp_path / "out" / "speech_commands"
    with caplog.at_level(logging.INFO, logger="kws.fetch"):
        counts = fetch.fetch(archive.as_uri(), dest)
    assert counts == {"bed": 2, "happy": 2, "cat": 2}
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert files == sorted(
        ["LICENSE", "README.md"] + [f"{w}/{i:04d}abcd_nohash_{n}.wav" for i, w in enumerate(counts) for n in range(2)]
    )
    assert not any(p.is_symlink() for p in dest.rglob("*"))
    no_escapes(tmp_path)
    assert [p.name for p in dest.parent.iterdir()] == ["speech_commands"]  # no temporary leftovers
    assert len(scan(dest)) == 6
    assert load_audio(next((dest / "cat").glob("*.wav"))).duration == pytest.approx(1.0)
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "downloaded" in messages and "refusing" in messages


def test_sha256_checked(tmp_path, archive) -> None:
    good = hashlib.sha256(archive.read_bytes()).hexdigest()
    assert fetch.fetch(archive.as_uri(), tmp_path / "a", sha256=good.upper())["bed"] == 2
    with pytest.raises(FetchError, match="SHA-256"):
        fetch.fetch(archive.as_uri(), tmp_path / "b", sha256="0" * 64)
    assert not (tmp_path / "b").exists()
    assert not list(tmp_path.glob(".b.fetch-*"))


class _ShortResponse:
    """A server that promises more bytes than it sends."""

    def __init__(self, body: bytes, length: int):
        self.body, self.headers = io.BytesIO(body), {"Content-Length": str(length)}

    def read(self, n: int = -1) -> bytes:
        return self.body.read(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def test_short_download_detected(tmp_path, archive, monkeypatch) -> None:
    data = archive.read_bytes()
    monkeypatch.setattr(fetch.urllib.request, "urlopen", lambda *a, **k: _ShortResponse(data[:500], len(data)))
    with pytest.raises(FetchError, match="stopped early"):
        fetch.fetch("https://example.invalid/a.tar.gz", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_existing_destination(tmp_path, archive) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "old.txt").write_text("keep me")
    with pytest.raises(FetchError, match="--force"):
        fetch.fetch(archive.as_uri(), dest)
    assert (dest / "old.txt").read_text() == "keep me"
    fetch.fetch(archive.as_uri(), dest, force=True)
    assert not (dest / "old.txt").exists() and len(scan(dest)) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([archive.name, "dest"])


def test_empty_destination_folder_is_fine(tmp_path, archive) -> None:
    (tmp_path / "dest").mkdir()
    assert sum(fetch.fetch(archive.as_uri(), tmp_path / "dest").values()) == 6


def test_archive_without_our_words(tmp_path) -> None:
    other = make_archive(tmp_path / "other.tar.gz", tmp_path, words=("dog", "go", "yes"))
    with pytest.raises(FetchError, match="no clips of bed, happy, cat"):
        fetch.fetch(other.as_uri(), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("content", [b"not an archive at all" * 100, b"\x1f\x8b\x08\x00garbage-gzip" * 10])
def test_not_an_archive(tmp_path, content: bytes) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(content)
    with pytest.raises(FetchError, match="archive"):
        fetch.fetch(bad.as_uri(), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_archive(tmp_path, archive, keep: float) -> None:
    """Cut inside the members' data (the length check catches cut downloads; this is a cut file)."""
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(FetchError):
        fetch.fetch(cut.as_uri(), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_unreachable_url(tmp_path) -> None:
    with pytest.raises(FetchError, match="download failed"):
        fetch.fetch((tmp_path / "missing.tar.gz").as_uri(), tmp_path / "dest")
    with pytest.raises(FetchError):
        fetch.fetch("nonsense://x", tmp_path / "dest")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("./bed/a.wav", "bed/a.wav"),
        ("bed/a.wav", "bed/a.wav"),
        ("bed//./a.wav", "bed/a.wav"),
        ("../evil", None),
        ("bed/../../evil", None),
        ("/etc/passwd", None),
        ("C:\\evil", None),
        ("bed\\..\\..\\evil", None),
        ("", None),
        ("./", None),
    ],
)
def test_safe_relpath(name: str, expected: str | None) -> None:
    result = safe_relpath(name)
    assert (None if result is None else str(result)) == expected


def test_wanted() -> None:
    words = ("bed", "happy", "cat")
    assert fetch.wanted(PurePosixPath("bed/x.wav"), words)
    assert fetch.wanted(PurePosixPath("README.md"), words)
    assert not fetch.wanted(PurePosixPath("dog/x.wav"), words)
    assert not fetch.wanted(PurePosixPath("bed/x.txt"), words)
    assert not fetch.wanted(PurePosixPath("bed/sub/x.wav"), words)
    assert not fetch.wanted(PurePosixPath("testing_list.txt"), words)


# --- through the command line -----------------------------------------------------------------------------------


def test_cli_fetch(tmp_path, archive, capsys) -> None:
    dest = tmp_path / "cli_dest"
    assert cli.main(["data", "fetch", "--url", archive.as_uri(), "--dest", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "Installed 6 clips" in out and "CC BY 4.0" in out
    assert len(scan(dest)) == 6


def test_cli_fetch_errors_are_one_line(tmp_path, archive, capsys) -> None:
    assert cli.main(["data", "fetch", "--url", (tmp_path / "nope.tgz").as_uri(), "--dest", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    args = ["data", "fetch", "--url", archive.as_uri(), "--dest", str(tmp_path / "d"), "--sha256", "ab" * 32]
    assert cli.main(args) == 2
    assert "SHA-256" in capsys.readouterr().err
