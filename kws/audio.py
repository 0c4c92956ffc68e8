"""Audio in: decode any file or bytes soundfile understands, check it, and bring it to 16 kHz mono.

Every failure is an :class:`AudioError` whose message is one sentence a user understands; the app shows it
with ``st.error`` and the CLI prints it and exits 2.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

logger = logging.getLogger(__name__)

TARGET_RATE = 16000
#: Longer recordings are cut to this many seconds (with a notice): the work per clip stays bounded.
MAX_SECONDS = 30.0
#: Refuse inputs larger than this before decoding anything (a 30 s 48 kHz 32-bit stereo WAV is ~11 MB).
MAX_BYTES = 50 * 1024 * 1024
#: Shorter input cannot hold a word (the dataset's shortest clip is 0.47 s): an error, not a guess (a model
#: names any loud click as some word).
MIN_SECONDS = 0.1


class AudioError(ValueError):
    """Input that cannot be used as audio; ``str(err)`` is one sentence for the user."""


class EmptyAudioError(AudioError):
    """The input holds no bytes or no samples."""


class NotAudioError(AudioError):
    """The bytes are not in any audio format we can read."""


class CorruptAudioError(AudioError):
    """A readable header but broken, truncated or non-finite sample data."""


class TooLargeAudioError(AudioError):
    """The input is over :data:`MAX_BYTES`."""


class TooShortAudioError(AudioError):
    """The input lasts less than :data:`MIN_SECONDS`."""


def _check_long_enough(frames: int, rate: int) -> None:
    if frames < MIN_SECONDS * rate:
        raise TooShortAudioError(
            f"The recording lasts only {1000 * frames / rate:.0f} ms; a spoken word needs at least {MIN_SECONDS:g} s."
        )


@dataclass(frozen=True)
class Clip:
    """Decoded audio: float32 mono samples in [-1, 1] at :data:`TARGET_RATE`."""

    samples: np.ndarray
    sample_rate: int = TARGET_RATE
    source_rate: int = TARGET_RATE
    source_channels: int = 1
    notices: tuple[str, ...] = field(default=())

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def resample(data: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 ``data`` at ``sample_rate`` resampled to :data:`TARGET_RATE` by soxr's high-quality filter, to
    ``ceil(n * ratio)`` samples: what ``librosa.resample(res_type="soxr_hq")`` gives (a test checks it), without
    importing librosa's signal stack on the way to an answer."""
    out = soxr.resample(data, sample_rate, TARGET_RATE, quality="soxr_hq")
    n = int(np.ceil(data.size * TARGET_RATE / sample_rate))
    if out.size < n:
        out = np.pad(out, (0, n - out.size))
    return np.asarray(out[:n], dtype=np.float32)


def to_mono_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Down-mix (frames x channels, or 1-D) to mono and resample to 16 kHz; the one converter at the edge."""
    data = np.asarray(samples)
    if data.dtype.kind in "iu":
        # integer PCM (e.g. WebRTC's s16 frames): scale to [-1, 1]
        data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data[:, 0] if data.shape[1] == 1 else data.mean(axis=1)
    elif data.ndim != 1:
        raise AudioError("The audio has an unexpected shape; expected mono or multi-channel samples.")
    if sample_rate <= 0:
        raise CorruptAudioError("The file reports a sample rate of zero.")
    if sample_rate != TARGET_RATE and data.size:
        data = resample(data, sample_rate)
    return np.ascontiguousarray(data, dtype=np.float32)


def _open(source: str | os.PathLike[str] | bytes | BinaryIO) -> tuple[BinaryIO | str, int]:
    """Turn a path, bytes or file object into something soundfile reads, plus its size in bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(source)), len(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise NotAudioError(f"{path} is a folder, not an audio file.")
        if not path.exists():
            raise EmptyAudioError(f"There is no file at {path}.")
        if not path.is_file():  # a pipe or device: reading it could block or never end
            raise NotAudioError(f"{path} is not a regular file (a pipe or a device), so it is not read.")
        return str(path), path.stat().st_size
    data = source.read()
    return io.BytesIO(data), len(data)


def _wav_truncated(head: bytes, size: int) -> bool:
    """True when a RIFF/WAVE header promises more sample bytes than the file holds (a cut-off download).

    libsndfile quietly shortens such files to what is there, so the lie has to be read from the header itself.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return False
    pos = 12
    while pos + 8 <= len(head):
        chunk, length = head[pos : pos + 4], int.from_bytes(head[pos + 4 : pos + 8], "little")
        if chunk == b"data":
            if length in (0, 0xFFFFFFFF):  # zero samples, or a streaming writer that left the size open
                return False
            return size - (pos + 8) < 0.9 * length
        pos += 8 + length + (length & 1)
    return False


def _head(handle: BinaryIO | str, n: int = 65536) -> bytes:
    """The first ``n`` bytes of a path or an in-memory file, leaving the file position at 0."""
    if isinstance(handle, str):
        with open(handle, "rb") as f:
            return f.read(n)
    head = handle.read(n)
    handle.seek(0)
    return head


def load_audio(source: str | os.PathLike[str] | bytes | BinaryIO, max_seconds: float = MAX_SECONDS) -> Clip:
    """Decode, check and convert audio to 16 kHz mono float32.

    Anything longer than ``max_seconds`` is cut (a notice says so) and never read whole into memory.
    Raises :class:`AudioError` subclasses with a user-facing sentence.
    """
    handle, size = _open(source)
    if size == 0:
        raise EmptyAudioError("The file is empty.")
    if size > MAX_BYTES:
        raise TooLargeAudioError(f"The file is {size / 1e6:.0f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB.")
    if _wav_truncated(_head(handle), size):
        raise CorruptAudioError("The audio file is truncated: its header promises more samples than it holds.")
    try:
        with sf.SoundFile(handle) as f:
            rate, channels, frames = f.samplerate, f.channels, f.frames
            if rate <= 0:
                raise CorruptAudioError("The file reports a sample rate of zero.")
            limit = int(max_seconds * rate)
            notices: list[str] = []
            if frames > limit:
                notices.append(
                    f"The recording is {frames / rate:.1f} s long; only the first {max_seconds:g} s were used."
                )
            data = f.read(frames=min(frames, limit) if frames > 0 else limit, dtype="float32", always_2d=True)
    except AudioError:
        raise
    except sf.LibsndfileError as err:
        text = str(err).lower()
        if "format" in text or "recogni" in text or "unknown" in text:
            raise NotAudioError("This is not an audio file we can read (WAV, FLAC, OGG or MP3).") from err
        raise CorruptAudioError("The audio file is damaged and could not be decoded.") from err
    except (RuntimeError, ValueError, EOFError) as err:
        raise CorruptAudioError("The audio file is damaged and could not be decoded.") from err
    if frames > 0 and len(data) < min(frames, limit) * 0.9:
        raise CorruptAudioError("The audio file is truncated: its header promises more samples than it holds.")
    if len(data) == 0:
        raise EmptyAudioError("The file holds no audio samples.")
    if not np.isfinite(data).all():
        raise CorruptAudioError("The audio holds invalid samples (NaN or infinity).")
    _check_long_enough(len(data), rate)
    samples = to_mono_16k(data, rate)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak > 1.0:
        # float files may exceed full scale; scale down rather than clip so the shape survives
        samples = samples / peak
    logger.debug("decoded %s frames at %d Hz x %d ch", len(data), rate, channels)
    return Clip(samples=samples, source_rate=rate, source_channels=channels, notices=tuple(notices))


def clip_from_array(samples: np.ndarray, sample_rate: int, max_seconds: float = MAX_SECONDS) -> Clip:
    """The same checks as :func:`load_audio` for samples already in memory (microphone, tests)."""
    data = np.asarray(samples)
    if data.size == 0:
        raise EmptyAudioError("The recording holds no audio samples.")
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise CorruptAudioError("The audio holds invalid samples (NaN or infinity).")
    _check_long_enough(data.shape[0], sample_rate)
    notices: list[str] = []
    limit = int(max_seconds * sample_rate)
    if data.shape[0] > limit:
        notices.append(
            f"The recording is {data.shape[0] / sample_rate:.1f} s long; only the first {max_seconds:g} s were used."
        )
        data = data[:limit]
    mono = to_mono_16k(data, sample_rate)
    peak = float(np.abs(mono).max())
    if peak > 1.0:
        mono = mono / peak
    return Clip(
        samples=mono,
        source_rate=sample_rate,
        source_channels=1 if data.ndim == 1 else data.shape[1],
        notices=tuple(notices),
    )


def to_wav_bytes(samples: np.ndarray, sample_rate: int = TARGET_RATE) -> bytes:
    """Encode float samples as a 16-bit WAV, for players and downloads."""
    buf = io.BytesIO()
    sf.write(buf, np.clip(samples, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
