"""The browser microphone through streamlit-webrtc: a per-session frame buffer and the WebRTC settings.

WebRTC delivers 20 ms ``av.AudioFrame`` objects (measured: 48 kHz, packed ``s16`` stereo, ``(1, 1920)``) on the
component's own thread. :class:`MicBuffer` collects them behind a lock and turns them into a 16 kHz mono
:class:`kws.audio.Clip` when the script asks. The component's ``audio_receiver`` is gone once the user presses
STOP, so the buffer (one per browser session, kept in ``st.session_state``) is what survives to be analysed.
Nothing here calls Streamlit: callbacks run outside the script thread, where ``st.*`` must not be used.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import logging
import os
import threading
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from kws.audio import MAX_SECONDS, Clip, EmptyAudioError, clip_from_array
from kws.spotter import FEED_SECONDS

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

#: Env var holding the ICE servers as JSON, e.g. ``[{"urls": ["stun:stun.l.google.com:19302"]}]``.
ICE_ENV = "KWS_ICE_SERVERS"

#: Send-only audio without the browser's echo cancellation, noise suppression and auto-gain: measured, they
#: distort the word (correlation with the source fell from 0.98 to 0.80).
MEDIA_CONSTRAINTS: dict[str, Any] = {
    "audio": {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": False},
    "video": False,
}


@lru_cache(maxsize=8)
def _parse_ice(raw: str) -> tuple[dict[str, Any], ...]:
    if not raw.strip():
        return ()
    try:
        servers = json.loads(raw)
    except json.JSONDecodeError as err:
        logger.warning("ignoring %s: not JSON (%s)", ICE_ENV, err)
        return ()
    if isinstance(servers, dict):  # a single server is accepted as well as a list
        servers = [servers]
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        logger.warning('ignoring %s: expected a list of {"urls": ...} objects', ICE_ENV)
        return ()
    return tuple(servers)


def ice_servers() -> list[dict[str, Any]]:
    """ICE servers from ``KWS_ICE_SERVERS`` (JSON); fallback ``[]``.

    ``[]`` works when browser and server share a machine with a non-loopback interface; a deployed server
    needs STUN and usually TURN, so deployments set the variable.
    """
    return [dict(s) for s in _parse_ice(os.environ.get(ICE_ENV, ""))]


def rtc_configuration() -> dict[str, Any]:
    """The ``rtc_configuration`` for ``webrtc_streamer`` (browser and server side alike)."""
    return {"iceServers": ice_servers()}


def frame_to_array(frame: av.AudioFrame) -> np.ndarray:
    """One frame as ``(samples, channels)``: packed formats come interleaved in one row, planar ones per row."""
    data = frame.to_ndarray()
    channels = max(1, len(frame.layout.channels))
    if frame.format.is_planar:
        return np.ascontiguousarray(data.T)
    return data.reshape(-1, channels)


def microphone_blocked(url: str | None) -> str | None:
    """Why the browser will refuse this page its microphone, in one sentence; ``None`` when it will not.

    Browsers give ``getUserMedia`` only to secure contexts: https pages, and http ones on a loopback host
    (``localhost``, ``*.localhost``, 127.0.0.0/8, ``[::1]``). A teacher who opens ``http://<server>:8501``
    from another machine got a START button that did nothing (measured in Chromium: no
    ``navigator.mediaDevices`` at all there). ``url`` is the page's address as the browser sent it
    (``st.context.url``); an unknown address (``None``, as under AppTest) is given the benefit of the doubt.
    """
    if not url:
        return None
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass  # a host name, not an address
    origin = f"{parts.scheme}://{parts.netloc}"
    return (
        f"Browsers give the microphone only to https pages or to pages on localhost, and this one is at {origin}: "
        "upload a clip or try an example here, or serve the app over https (README: Microphone from another "
        "machine)."
    )


class MicBuffer:
    """Audio of one recording, written by the WebRTC thread and read by the script thread.

    Frames are down-mixed to mono at their own rate as they arrive (cheap); resampling to 16 kHz happens once,
    in :meth:`take`. At most ``max_seconds`` (plus one frame, so that the "cut" notice still appears) is kept, so
    a forgotten STOP cannot fill the server's memory.
    """

    def __init__(self, max_seconds: float = MAX_SECONDS, tail_seconds: float = FEED_SECONDS) -> None:
        self.max_seconds = max_seconds
        self.tail_seconds = tail_seconds
        self._lock = threading.Lock()
        self._was_playing = False
        self._reset(None)

    def _reset(self, rate: int | None) -> None:
        """Start a new take (the caller holds the lock, or is ``__init__``)."""
        self._chunks: list[np.ndarray] = []
        self._count = 0
        self._rate = rate
        # the latest audio, kept past max_seconds too, for spotting words while the take goes on
        self._tail: collections.deque[np.ndarray] = collections.deque()
        self._tail_count = 0
        self._heard = 0  # samples received since the take began: the take's clock

    def step(self, playing: bool) -> str:
        """Follow the component's ``state.playing`` once per script run.

        Returns ``"listening"`` while playing, ``"stopped"`` on the first run after playing ended (analyse now:
        the component's own receiver is already gone), else ``"idle"``, which also drops stray late frames so a
        new recording starts empty.
        """
        was, self._was_playing = self._was_playing, playing
        if playing:
            return "listening"
        if was:
            return "stopped"
        self.clear()
        return "idle"

    def add(self, samples: np.ndarray, sample_rate: int) -> None:
        """Append ``(samples, channels)`` or 1-D samples; integer PCM is scaled to [-1, 1]."""
        data = np.asarray(samples)
        if data.dtype.kind in "iu":
            data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
        data = data.astype(np.float32, copy=False)
        mono = data.mean(axis=1) if data.ndim == 2 else data.reshape(-1)
        with self._lock:
            if self._rate is not None and sample_rate != self._rate:
                # a new device mid-recording: keep the newer stream rather than mixing rates
                logger.info("sample rate changed from %s to %s Hz; restarting the buffer", self._rate, sample_rate)
                self._reset(sample_rate)
            self._rate = sample_rate
            self._tail.append(mono)
            self._tail_count += mono.size
            self._heard += mono.size
            while self._tail_count - self._tail[0].size >= self.tail_seconds * sample_rate:
                self._tail_count -= self._tail.popleft().size
            if self._count > self.max_seconds * sample_rate:
                return
            self._chunks.append(mono)
            self._count += mono.size

    def add_frame(self, frame: av.AudioFrame) -> None:
        """Append one WebRTC frame."""
        self.add(frame_to_array(frame), frame.sample_rate)

    async def on_frames(self, frames: list[av.AudioFrame]) -> list[av.AudioFrame]:
        """``queued_audio_frames_callback``: runs on the WebRTC thread, so it only stores (never ``st.*``)."""
        for frame in frames:
            self.add_frame(frame)
        return frames

    @property
    def seconds(self) -> float:
        """How much audio is held."""
        with self._lock:
            return self._count / self._rate if self._rate else 0.0

    def recent(self, seconds: float) -> tuple[np.ndarray, int, float] | None:
        """The last ``seconds`` heard (mono, at the stream's own rate), that rate, and where it ends on the take's
        clock (seconds since the take began); ``None`` before any audio. The buffer is left as it is: words are
        spotted in it while the take goes on, past ``max_seconds`` too (up to ``tail_seconds`` back)."""
        with self._lock:
            if self._rate is None or not self._tail:
                return None
            samples, rate, heard = np.concatenate(self._tail), self._rate, self._heard
        return samples[-int(seconds * rate) :], rate, heard / rate

    def clear(self) -> None:
        """Drop everything (before a new recording)."""
        with self._lock:
            self._reset(None)

    def take(self) -> Clip:
        """The recording so far as a 16 kHz mono clip, and an empty buffer; raises ``AudioError`` if empty."""
        with self._lock:
            chunks, rate = self._chunks, self._rate
            self._reset(None)
        if not chunks or rate is None:
            raise EmptyAudioError("No audio arrived from the microphone; check that the browser may use it.")
        return clip_from_array(np.concatenate(chunks), rate, max_seconds=self.max_seconds)
