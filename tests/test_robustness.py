"""Accuracy against background noise (kws/robustness.py): clean matches evaluate, stored and found again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kws import config, robustness
from kws.evaluate import evaluate
from kws.noise import NOISE_FOLDER
from tests._audio_util import env_without, have_shipped_models, make_noisy_dataset

pytestmark = pytest.mark.skipif(not have_shipped_models(), reason="no shipped models")


@pytest.fixture
def tiny_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny dataset with two generated noise clips (a hiss and a hum), and a cache folder of its own."""
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    return make_noisy_dataset(tmp_path / "data")


def test_clean_accuracy_is_evaluates_and_the_result_is_stored(tiny_data: Path) -> None:
    result = robustness.measure(config.SHIPPED_MODELS_DIR, tiny_data, snrs=robustness.SNRS)
    assert result["snrs"] == ["clean", *robustness.SNRS]
    assert result["clips"] == 6 and result["noise_clips"] == 2 and result["seed"] == 0
    opens = evaluate(config.SHIPPED_MODELS_DIR, tiny_data, "test").open
    assert list(result["accuracy"]) == list(opens) == list(result["false_accepts"])
    for name, values in result["accuracy"].items():
        assert len(values) == len(result["snrs"])
        assert values[0] == pytest.approx(opens[name].keyword_accuracy)
        assert all(0.0 <= v <= 1.0 for v in values)
    assert robustness.load(config.SHIPPED_MODELS_DIR, tiny_data) == result
    assert robustness.measure(config.SHIPPED_MODELS_DIR, tiny_data) == result  # the seed makes it repeatable


def test_false_accepts_of_other_words_clean_are_evaluates_and_move_with_the_noise(tiny_data: Path) -> None:
    """With other words in the test split, each model's false accepts at every SNR, clean ones as ``evaluate``
    counts them (at the app's operating point)."""
    import soundfile as sf

    from tests._audio_util import tone

    (tiny_data / "yes").mkdir()
    for i, path in enumerate(sorted((tiny_data / "bed").glob("*.wav"))):
        clip = np.zeros(16000, np.float32)
        clip[4000:12000] = tone(0.5, freq=1900.0 + 150 * i, amp=0.3)  # no keyword's pitch
        sf.write(tiny_data / "yes" / path.name, clip, 16000, subtype="PCM_16")
    result = robustness.measure(config.SHIPPED_MODELS_DIR, tiny_data, snrs=(20, 0))
    opens = evaluate(config.SHIPPED_MODELS_DIR, tiny_data, "test").open
    assert result["other_clips"] == next(iter(opens.values())).other_clips > 0
    for name, values in result["false_accepts"].items():
        assert len(values) == 3 and all(0.0 <= v <= 1.0 for v in values)
        assert values[0] == pytest.approx(opens[name].false_accept_rate), name


def test_a_changed_model_set_misses_the_stored_result(tiny_data: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(config.SHIPPED_MODELS_DIR, models)
    robustness.measure(models, tiny_data, snrs=(10,))
    assert robustness.load(models, tiny_data, snrs=(10,)) is not None
    (models / "cnn1.json").write_text((models / "cnn1.json").read_text().replace('"params"', '"params" ', 1))
    assert robustness.load(models, tiny_data, snrs=(10,)) is None


def test_the_job_runs_in_a_thread_and_stores_the_result(tiny_data: Path) -> None:
    job = robustness.start(config.SHIPPED_MODELS_DIR, tiny_data)
    assert robustness.start(config.SHIPPED_MODELS_DIR, tiny_data) is job  # one job per key
    job.thread.join(120)
    assert job.error is None and job.fraction == 1.0
    assert robustness.load(config.SHIPPED_MODELS_DIR, tiny_data) == job.result


def test_the_cli_prints_a_table_and_fails_in_one_line_without_noise(tiny_data: Path, tmp_path: Path) -> None:
    def run(data: Path) -> subprocess.CompletedProcess:
        args = ["robustness", "--models-dir", str(config.SHIPPED_MODELS_DIR), "--data-dir", str(data)]
        return subprocess.run(
            [sys.executable, "-m", "kws", *args], capture_output=True, text=True, env=env_without(), timeout=300
        )

    done = run(tiny_data)
    assert done.returncode == 0, done.stderr
    words = " ".join(done.stdout.split())  # the table's cells, whatever padding aligns its columns
    assert words.startswith("Keyword accuracy: | Model | clean | 30 dB |") and "| best |" in words
    shutil.rmtree(tiny_data / NOISE_FOLDER)
    failed = run(tiny_data)
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1 and "noise" in failed.stderr
    missing = run(tmp_path / "nowhere")
    assert missing.returncode == 2 and missing.stderr.startswith("error:")
