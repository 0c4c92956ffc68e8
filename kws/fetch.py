"""Fetch the dataset: download the official Speech Commands archive and unpack only our three words, safely.

The archive (about 1.4 GB) is streamed to a temporary file beside the destination and checked (length, and a
SHA-256 when one is given), then read once from start to end. Only regular files ``<word>/*.wav`` of the
keywords and the README/LICENSE are kept. Every member passes ``tarfile.data_filter`` first, which refuses
paths that leave the destination, links that point out of it, and devices, and drops unsafe permission bits.
Everything is unpacked into a temporary folder beside the destination and renamed into place at the end, so an
interrupted fetch never leaves half a dataset where the app looks for one.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from kws import config

logger = logging.getLogger(__name__)

#: Top-level files of the archive worth keeping beside the clips (attribution and license).
KEEP_FILES = frozenset({"README", "README.md", "README.txt", "LICENSE", "LICENSE.txt"})
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A download or archive problem; ``str(err)`` is one sentence for the user."""


class _Reporter:
    """Logs download progress every 10% (or every 10 s when the size is unknown), not every chunk."""

    def __init__(self, total: int | None):
        self.total, self.next_step, self.last = total, 10, time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if self.total:
            percent = 100 * done // self.total
            if percent >= self.next_step or done == self.total:
                logger.info("downloaded %.0f of %.0f MB (%d%%)", done / 1e6, self.total / 1e6, percent)
                self.next_step = percent - percent % 10 + 10
        elif now - self.last >= 10:
            logger.info("downloaded %.0f MB", done / 1e6)
            self.last = now


def download(url: str, target: Path, sha256: str | None = None, timeout: float = 60.0) -> int:
    """Stream ``url`` (http, https or file) into ``target``; check its length and SHA-256. Returns the size."""
    request = urllib.request.Request(url, headers={"User-Agent": "keyword-studio"})
    digest = hashlib.sha256()
    done = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(target, "wb") as out:
            logger.info("downloading %s", url)
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.strip().isdigit() else None
            report = _Reporter(total)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                report(done)
    except urllib.error.HTTPError as err:
        raise FetchError(f"The download failed: {url} answered {err.code} {err.reason}.") from err
    except urllib.error.URLError as err:
        raise FetchError(f"The download failed: {err.reason}.") from err
    except (OSError, ValueError, http.client.HTTPException) as err:
        raise FetchError(f"The download failed: {err or type(err).__name__}.") from err
    if total is not None and done != total:
        raise FetchError(f"The download stopped early: {done} of {total} bytes arrived.")
    if sha256 and digest.hexdigest().lower() != sha256.strip().lower():
        raise FetchError(f"The archive's SHA-256 is {digest.hexdigest()}, not the expected {sha256.strip()}.")
    return done


def safe_relpath(name: str) -> PurePosixPath | None:
    """A member's name as a clean path relative to the archive root, or None for one that is not (absolute, with
    ``..``, a backslash or a drive): such a name is never one to keep, on any system the dataset lands on."""
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\0" in name:
        return None
    path = PurePosixPath(name)
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts or any(p == ".." or ":" in p for p in parts):
        return None
    return PurePosixPath(*parts)


def wanted(rel: PurePosixPath, words: Sequence[str]) -> bool:
    """``<word>/<clip>.wav`` of a keyword, or a README/LICENSE at the top."""
    if len(rel.parts) == 2:
        return rel.parts[0] in words and rel.suffix.lower() == ".wav"
    return len(rel.parts) == 1 and rel.name in KEEP_FILES


def extract(archive: Path, into: Path, words: Sequence[str] = config.LABELS) -> Counter[str]:
    """Unpack the wanted regular files of a (compressed) tar into ``into`` in one pass; counts clips per word."""
    counts: Counter[str] = Counter()
    refused = 0
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                try:
                    member = tarfile.data_filter(member, str(into))
                except tarfile.FilterError as err:
                    refused += 1
                    logger.warning("refusing archive member %r: %s", member.name, err)
                    continue
                rel = safe_relpath(member.name)
                if rel is None or not wanted(rel, words):
                    continue
                if not member.isfile():  # a link or a device is never a clip, even inside the destination
                    refused += 1
                    logger.warning("refusing archive member %r: not a regular file", member.name)
                    continue
                tar.extract(member, into, set_attrs=False, filter="data")
                counts[rel.parts[0] if len(rel.parts) == 2 else "_files"] += 1
    except (tarfile.TarError, EOFError, zlib.error) as err:
        raise FetchError(f"The archive is damaged or not a tar archive ({err}).") from err
    except OSError as err:  # gzip.BadGzipFile is an OSError too
        raise FetchError(f"The archive could not be unpacked ({err}).") from err
    if refused:
        logger.warning("refused %d unsafe archive member(s)", refused)
    return counts


def _install(staged: Path, dest: Path, aside: Path, force: bool) -> None:
    """Rename ``staged`` to ``dest``; an existing ``dest`` is moved to ``aside`` first (restored on failure)."""
    if dest.is_dir() and not any(dest.iterdir()):
        dest.rmdir()
    if not dest.exists():
        os.rename(staged, dest)
        return
    if not force:
        raise FetchError(f"{dest} already holds files; pass --force to replace them.")
    os.rename(dest, aside)
    try:
        os.rename(staged, dest)
    except OSError:
        os.rename(aside, dest)
        raise


def fetch(
    url: str = config.DATASET_URL,
    dest: str | Path | None = None,
    sha256: str | None = None,
    words: Sequence[str] = config.LABELS,
    force: bool = False,
) -> dict[str, int]:
    """Download the archive at ``url`` and install the clips of ``words`` at ``dest`` (default: the data dir).

    Returns clips per word. Raises :class:`FetchError`; on any failure ``dest`` is left as it was.
    """
    dest = Path(dest) if dest is not None else config.data_dir()
    dest = dest.absolute()
    if dest.exists() and not dest.is_dir():
        raise FetchError(f"{dest} exists and is not a folder.")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise FetchError(f"{dest} already holds files; pass --force to replace them.")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.fetch-"))
    except OSError as err:
        raise FetchError(f"Cannot write beside {dest}: {err.strerror or err}.") from err
    try:
        archive = work / "archive.tar.gz"
        download(url, archive, sha256)
        staged = work / "data"
        staged.mkdir()
        logger.info("unpacking %s", ", ".join(words))
        counts = extract(archive, staged, words)
        archive.unlink()  # free the space before the swap
        missing = [w for w in words if not counts.get(w)]
        if missing:
            raise FetchError(f"The archive holds no clips of {', '.join(missing)}; is it the Speech Commands archive?")
        _install(staged, dest, work / "old", force)
    except OSError as err:
        raise FetchError(f"Could not install the dataset at {dest}: {err.strerror or err}.") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)
    clips = {w: counts[w] for w in words}
    logger.info("installed %d clips at %s", sum(clips.values()), dest)
    return clips
