"""kws.mic: WebRTC frames in (48 kHz s16 interleaved stereo, as measured), 16 kHz mono clip out."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

av = pytest.importorskip("av")

from kws import mic  # noqa: E402
from kws.audio import EmptyAudioError, TooShortAudioError, load_audio  # noqa: E402

RATE = 48000
FRAME = 960  # 20 ms, as WebRTC delivers it


def webrtc_frames(left: np.ndarray, right: np.ndarray | None = None, rate: int = RATE) -> list[av.AudioFrame]:
    """Float signals in [-1, 1] as WebRTC-style frames: packed s16 stereo, shape (1, 2 * 960) each."""
    right = left if right is None else right
    pcm = np.stack([left, right], axis=1)
    pcm = np.clip(np.round(pcm * 32767), -32768, 32767).astype(np.int16)
    frames = []
    for start in range(0, len(pcm) - FRAME + 1, FRAME):
        frame = av.AudioFrame.from_ndarray(pcm[start : start + FRAME].reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = rate
        frames.append(frame)
    return frames


def tone(seconds: float, freq: float, rate: int = RATE, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(x: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)])


def test_packed_stereo_frame_is_deinterleaved() -> None:
    left, right = np.full(FRAME, 0.25, np.float32), np.full(FRAME, -0.5, np.float32)
    (frame,) = webrtc_frames(left, right)
    assert frame.to_ndarray().shape == (1, 2 * FRAME)
    data = mic.frame_to_array(frame)
    assert data.shape == (FRAME, 2)
    assert np.allclose(data[:, 0] / 32768, 0.25, atol=1e-3) and np.allclose(data[:, 1] / 32768, -0.5, atol=1e-3)


def test_planar_frame() -> None:
    planar = np.stack([np.full(FRAME, 0.1, np.float32), np.full(FRAME, 0.3, np.float32)])
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout="stereo")
    frame.sample_rate = RATE
    data = mic.frame_to_array(frame)
    assert data.shape == (FRAME, 2) and np.allclose(data[:, 1], 0.3)


def test_frames_in_16k_mono_out() -> None:
    buffer = mic.MicBuffer()
    for frame in webrtc_frames(tone(1.0, 440)):
        buffer.add_frame(frame)
    assert buffer.seconds == pytest.approx(1.0)
    clip = buffer.take()
    assert clip.sample_rate == 16000 and clip.samples.ndim == 1 and clip.samples.dtype == np.float32
    assert abs(len(clip.samples) - 16000) <= 2
    assert dominant_freq(clip.samples) == pytest.approx(440, abs=3)
    assert np.abs(clip.samples).max() == pytest.approx(0.5, abs=0.02)  # s16 scaled back to [-1, 1]
    assert clip.source_rate == RATE


def test_stereo_is_down_mixed() -> None:
    buffer = mic.MicBuffer()
    for frame in webrtc_frames(tone(0.5, 440), np.zeros(RATE // 2, np.float32)):
        buffer.add_frame(frame)
    assert np.abs(buffer.take().samples).max() == pytest.approx(0.25, abs=0.02)


def test_queued_callback_keeps_every_frame_and_passes_them_on() -> None:
    buffer = mic.MicBuffer()
    frames = webrtc_frames(tone(0.2, 440))
    assert asyncio.run(buffer.on_frames(frames)) == frames
    assert buffer.seconds == pytest.approx(len(frames) * FRAME / RATE)


def test_take_empties_and_empty_is_an_audio_error() -> None:
    buffer = mic.MicBuffer()
    with pytest.raises(EmptyAudioError):
        buffer.take()
    for frame in webrtc_frames(tone(0.2, 440)):
        buffer.add_frame(frame)
    buffer.take()
    assert buffer.seconds == 0
    with pytest.raises(EmptyAudioError, match="microphone"):
        buffer.take()


def test_a_take_too_short_for_a_word_is_an_audio_error() -> None:
    """START then STOP at once: one 20-ms frame arrived, and no model is asked to name it."""
    buffer = mic.MicBuffer()
    buffer.add_frame(webrtc_frames(tone(0.1, 440))[0])
    with pytest.raises(TooShortAudioError, match="only 20 ms"):
        buffer.take()
    assert buffer.seconds == 0


def test_long_recordings_are_capped_with_a_notice() -> None:
    buffer = mic.MicBuffer(max_seconds=1.0)
    for frame in webrtc_frames(tone(3.0, 440)):
        buffer.add_frame(frame)
    assert buffer.seconds < 1.1  # memory stays bounded
    clip = buffer.take()
    assert clip.duration == pytest.approx(1.0, abs=0.01)
    assert clip.notices and "first 1 s" in clip.notices[0]


def test_rate_change_restarts_the_recording() -> None:
    buffer = mic.MicBuffer()
    buffer.add(np.zeros(480, np.int16), 48000)
    buffer.add(np.full(1600, 0.5, np.float32), 16000)
    clip = buffer.take()
    assert len(clip.samples) == 1600 and clip.source_rate == 16000


def test_step_follows_playing_and_drops_stale_frames() -> None:
    buffer = mic.MicBuffer()
    buffer.add(np.ones(100, np.float32), 16000)  # stray frames from an earlier connection
    assert buffer.step(False) == "idle"
    assert buffer.seconds == 0
    assert buffer.step(True) == "listening"
    buffer.add(np.ones(3200, np.float32), 16000)
    assert buffer.step(True) == "listening"
    assert buffer.step(False) == "stopped"
    assert len(buffer.take().samples) == 3200
    assert buffer.step(False) == "idle"


def test_writer_thread_and_reader_do_not_lose_frames() -> None:
    buffer = mic.MicBuffer()
    frames = webrtc_frames(tone(2.0, 440))

    def produce() -> None:
        for frame in frames:
            buffer.add_frame(frame)

    worker = threading.Thread(target=produce)
    worker.start()
    while worker.is_alive():
        assert buffer.seconds <= 2.0
    worker.join()
    assert buffer.seconds == pytest.approx(len(frames) * FRAME / RATE)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ("", []),
        ('[{"urls": ["stun:stun.example.org:3478"]}]', [{"urls": ["stun:stun.example.org:3478"]}]),
        (
            '{"urls": "turn:t.example.org", "username": "u", "credential": "c"}',
            [{"urls": "turn:t.example.org", "username": "u", "credential": "c"}],
        ),
        ("not json", []),
        ('[{"url": "stun:x"}]', []),
        ('"stun:x"', []),
    ],
)
def test_ice_servers_from_env(monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: list) -> None:
    if raw is None:
        monkeypatch.delenv(mic.ICE_ENV, raising=False)
    else:
        monkeypatch.setenv(mic.ICE_ENV, raw)
    assert mic.ice_servers() == expected
    assert mic.rtc_configuration() == {"iceServers": expected}


def test_media_constraints_turn_off_browser_processing() -> None:
    audio = mic.MEDIA_CONSTRAINTS["audio"]
    assert mic.MEDIA_CONSTRAINTS["video"] is False
    assert not (audio["echoCancellation"] or audio["noiseSuppression"] or audio["autoGainControl"])


def test_known_word_through_the_webrtc_path(predictor, known_clip) -> None:
    """A real test-split word, sent as the browser would (48 kHz s16 stereo frames), is still recognised."""
    import librosa

    path, word = known_clip
    samples = load_audio(path).samples
    padded = np.concatenate([np.zeros(16000, np.float32), samples, np.zeros(24000, np.float32)])
    at48k = librosa.resample(padded, orig_sr=16000, target_sr=RATE)
    buffer = mic.MicBuffer()
    asyncio.run(buffer.on_frames(webrtc_frames(at48k)))
    assert predictor.predict_clip(buffer.take()).summary == f"Most models say: {word}"


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "http://localhost:8501/try_it",
        "http://LOCALHOST:8501",
        "http://kws.localhost:8501",
        "http://127.0.0.1:8501",
        "http://127.1.2.3:8501",
        "http://[::1]:8501/",
        "https://192.0.2.2:8501/try_it",
        "https://kws.example.org",
    ],
)
def test_microphone_allowed_on_secure_or_loopback_pages(url) -> None:
    assert mic.microphone_blocked(url) is None


@pytest.mark.parametrize("url", ["http://192.0.2.2:8501/try_it", "http://kws.example.org", "http://[fd00::2]:8501"])
def test_microphone_blocked_over_plain_http_from_elsewhere_says_why(url) -> None:
    message = mic.microphone_blocked(url)
    origin = url.removesuffix("/try_it")
    assert message and f"at {origin}:" in message and "https" in message and "upload a clip" in message
    assert "\n" not in message and message.endswith(".")


def test_recent_is_the_latest_audio_on_the_takes_clock_past_the_cap() -> None:
    """Spotting reads the last seconds while the take goes on: the tail keeps moving after max_seconds."""
    buffer = mic.MicBuffer(max_seconds=1.0, tail_seconds=0.5)
    assert buffer.recent(0.5) is None
    ramp = np.arange(3 * RATE, dtype=np.float32) / (3 * RATE)  # a value that says where it was in the take
    for start in range(0, ramp.size, FRAME):
        buffer.add(ramp[start : start + FRAME], RATE)
    samples, rate, end_s = buffer.recent(0.25)
    assert rate == RATE and end_s == pytest.approx(3.0)
    np.testing.assert_allclose(samples, ramp[-RATE // 4 :])
    assert buffer.recent(5.0)[0].size < 0.5 * RATE + FRAME  # memory stays bounded by tail_seconds
    assert buffer.seconds <= 1.0 + FRAME / RATE  # the take itself is still capped
    buffer.take()
    assert buffer.recent(0.25) is None  # a new take, a new clock
