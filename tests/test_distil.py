"""experiments/distil.py: the distillation loss is what its docstring says, and a tiny run writes a usable model."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from _audio_util import bench_script, have_shipped_models, make_dataset

from kws import config

pytestmark = pytest.mark.slow  # training, conversion or fresh interpreters: not in the fast lane

pytest.importorskip("kws.train")  # loads TensorFlow


def _module():
    return bench_script("distil", "experiments")


def test_soften_matches_a_softmax_over_scaled_logits() -> None:
    logits = np.array([[2.0, 0.5, -1.0], [0.0, 3.0, 1.0]])
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = 3.0
    expected = np.exp(logits / t) / np.exp(logits / t).sum(1, keepdims=True)
    np.testing.assert_allclose(_module().soften(probs, t), expected, rtol=1e-5)


def test_loss_is_cross_entropy_plus_scaled_kl() -> None:
    distil = _module()
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], np.float32)
    teacher = distil.soften(np.array([[0.5, 0.4, 0.1], [0.2, 0.2, 0.6]]), 2.0)
    hard = np.eye(3, dtype=np.float32)[[0, 2]]
    y_true = np.concatenate([hard, teacher], axis=1)
    got = distil.make_loss(2.0, 0.25, 3)(y_true, p).numpy()
    student = distil.soften(p, 2.0)
    ce = -np.log(p[[0, 1], [0, 2]])
    kl = (teacher * np.log(teacher / student)).sum(1)
    np.testing.assert_allclose(got, 0.25 * ce + 0.75 * 4.0 * kl, rtol=1e-4)
    # a student that already matches its teachers pays only the label's share
    same = np.concatenate([hard, distil.soften(p, 2.0)], axis=1)
    np.testing.assert_allclose(distil.make_loss(2.0, 0.25, 3)(same, p).numpy(), 0.25 * ce, rtol=1e-4)


@pytest.mark.skipif(not have_shipped_models(), reason="needs the shipped teachers")
def test_a_tiny_run_writes_a_model_that_choose_can_read(tmp_path) -> None:
    make_dataset(tmp_path / "data", per_split=2)
    out = tmp_path / "out"
    distil = _module()
    real_fit_one = distil.train.fit_one
    assert distil.main([str(out), "--data-dir", str(tmp_path / "data"), "--epochs", "2", "--limit", "6"]) == 0
    assert distil.train.fit_one is real_fit_one  # its distilling fit_one was swapped in for the run only
    meta = json.loads((out / "best.json").read_text())
    assert meta["name"] == "best" and meta["epochs_run"] == 2
    assert len(meta["history"]["accuracy"]) == 2  # the packed-target accuracy is logged under the usual name
    record = meta["distillation"]
    assert [t["name"] for t in record["teachers"]] == ["cnn2", "cnn2_dropout", "lstm"]
    shipped = {t["name"]: (config.SHIPPED_MODELS_DIR / f"{t['name']}.keras").read_bytes() for t in record["teachers"]}
    assert all(t["sha256"] == hashlib.sha256(shipped[t["name"]]).hexdigest() for t in record["teachers"])
    assert (record["temperature"], record["alpha"]) == (3.0, 0.5)
    assert meta["description"].endswith("Distilled from cnn2, cnn2_dropout, lstm.")


def test_a_missing_teacher_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(SystemExit) as err:
        _module().main([str(tmp_path / "out"), "--teachers", "cnn2", "--teachers-dir", str(tmp_path)])
    assert err.value.code == 2
