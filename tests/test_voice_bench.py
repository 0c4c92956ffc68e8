"""bench/voice.py: the figures behind the voice check, end to end on a tiny generated dataset."""

from __future__ import annotations

import json

from _audio_util import bench_script, make_dataset


def test_voice_bench_counts_words_refused_and_noise_let_through(tmp_path, capsys) -> None:
    voice = bench_script("voice")
    make_dataset(tmp_path / "data")
    out = tmp_path / "voice.json"
    args = ["--data-dir", str(tmp_path / "data"), "--no-models", "--noises", "6", "--copies", "1"]
    assert voice.main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["words"]) == {"train", "validation", "validation, 1 variants each", "test"}
    for split in ("train", "validation", "test"):  # the generated words are pitched, like every real one
        assert result["words"][split]["clips"] == 6 and result["words"][split]["no_voice"] == 0
    claps = result["noise"]["clap (dies in 20 ms)"]
    assert claps["clips"] == 6 and claps["no_voice"] == 6 and "named_without_check" not in claps
    assert result["threshold"] == voice.VOICE_THRESHOLD and result["cost_ms"]["aperiodicity"] > 0
    assert "| clap (dies in 20 ms) | 6 | 0 | 6 (100.00%) |" in capsys.readouterr().out
