"""Experiment: does ``best`` improve when it also learns from an ensemble of the shipped models (distillation)?

The recipe is ``kws.train``'s defaults, with one change: the loss is
``alpha * cross-entropy(label) + (1 - alpha) * T^2 * KL(teachers_T || student_T)``, where ``teachers_T`` is the
mean of the teachers' probabilities softened at temperature ``T`` (computed for every clean clip once and for
every epoch's augmented variants as they are made) and ``student_T`` the student's softened the same way. The
teachers default to ``cnn2``, ``cnn2_dropout`` and ``lstm`` of ``models/``: three architectures, and not ``best``
itself, so the run can be repeated after its result replaced ``models/best.keras``.

It writes an ordinary model folder, with the teachers (and their files' SHA-256) in ``best.json`` under
``distillation``; compare it with ``python experiments/choose.py models OUT`` (validation only). The results (no
reliable gain; see "What did not help ``best``" in docs/experiments.md) came from this script; it exists so that
anyone can check them. It is an experiment, not a training option of the app.

    python experiments/distil.py OUT [--seed 7] [--temperature 3] [--alpha 0.5] [--teachers cnn2 cnn2_dropout lstm]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kws import config, features, store, train, zoo  # noqa: E402
from kws._tf import keras, tf  # noqa: E402
from kws.inference import load_models  # noqa: E402
from kws.store import ModelStoreError  # noqa: E402


def soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)``: the probabilities a softmax over logits / T would have given."""
    logp = np.log(np.clip(probs, 1e-7, 1.0)) / temperature
    e = np.exp(logp - logp.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def make_loss(temperature: float, alpha: float, n: int):
    """Loss over targets packed as ``[one-hot label | softened teacher probabilities]`` of ``n`` labels."""

    def distil_loss(y_true, y_pred):
        hard, soft = y_true[:, :n], y_true[:, n:]
        log_p = tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0))
        ce = -tf.reduce_sum(hard * log_p, axis=1)
        log_student_t = tf.nn.log_softmax(log_p / temperature)
        kl = tf.reduce_sum(soft * (tf.math.log(tf.clip_by_value(soft, 1e-7, 1.0)) - log_student_t), axis=1)
        return alpha * ce + (1 - alpha) * temperature**2 * kl

    return distil_loss


def record(out: Path, teachers: list, temperature: float, alpha: float) -> dict:
    """Add how ``out/best.keras`` was distilled to its JSON: ``train_config`` alone would read like a plain run.

    Each teacher is named with its file's SHA-256 and creation date, so the exact ensemble can be found again.
    """
    path = Path(out) / "best.json"
    meta = json.loads(path.read_text())
    meta["distillation"] = {
        "script": "experiments/distil.py",
        "temperature": temperature,
        "alpha": alpha,
        "teachers": [
            {
                "name": m.name,
                "sha256": hashlib.sha256(m.info.keras_path.read_bytes()).hexdigest(),
                "created": m.meta.get("created"),
            }
            for m in teachers
        ],
    }
    meta["description"] += f" Distilled from {', '.join(m.name for m in teachers)}."
    store.write_json_atomic(path, meta)
    return meta["distillation"]


def make_accuracy(n: int):
    """Accuracy over the packed targets of ``n`` labels, logged under Keras' usual name."""

    def accuracy(y_true, y_pred):
        return tf.cast(tf.equal(tf.argmax(y_true[:, :n], 1), tf.argmax(y_pred, 1)), tf.float32)

    return accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder to write the distilled best into")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--temperature", type=float, default=3.0)
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the label's cross-entropy")
    parser.add_argument("--teachers", nargs="+", default=["cnn2", "cnn2_dropout", "lstm"])
    parser.add_argument("--teachers-dir", default=str(config.SHIPPED_MODELS_DIR))
    parser.add_argument("--data-dir", help="dataset folder (default: KWS_DATA_DIR)")
    parser.add_argument("--epochs", type=int, default=train.TrainConfig.epochs)
    parser.add_argument("--limit", type=int, help="at most this many clips per split (a quick check)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = features.preset("standard")
    try:
        teachers = [m for m in load_models(args.teachers_dir) if m.name in args.teachers]
    except ModelStoreError as err:
        parser.error(str(err))
    if sorted(m.name for m in teachers) != sorted(args.teachers) or any(m.settings != settings for m in teachers):
        parser.error("every teacher must exist in --teachers-dir and use the standard preset")
    if len({m.labels for m in teachers}) != 1:
        parser.error("every teacher must answer the same labels")
    labels = teachers[0].labels
    n = len(labels)

    def pack(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        probs = np.mean([m.predict_batch(np.asarray(x)) for m in teachers], axis=0)
        return np.concatenate([np.eye(n, dtype=np.float32)[y], soften(probs, args.temperature)], axis=1)

    class DistilBatches(train._EpochBatches):
        """The training batches of ``kws.train``, each label packed beside the teachers' softened answers."""

        def _refresh(self) -> None:
            super()._refresh()
            self.y = pack(self.x, self.y)

    def fit_one(name, data, cfg, settings, listener, shared=None, start_from=None):
        del start_from  # a distilled model starts from random weights
        keras.utils.set_random_seed(cfg.seed)
        shape = features.shapes(settings).input_shape
        model = zoo.build(name, shape, n, data.stats, bands=settings.n_mels)
        model.compile(
            optimizer=keras.optimizers.Adam(cfg.learning_rate),
            loss=make_loss(args.temperature, args.alpha, n),
            metrics=[make_accuracy(n)],
        )
        val = (data.x["validation"], pack(data.x["validation"], data.y["validation"]))
        batches = DistilBatches(data, shared, cfg.seed, cfg.batch_size)
        history = model.fit(
            batches, validation_data=val, epochs=cfg.epochs, verbose=0, callbacks=train.fit_callbacks(cfg, listener)
        )
        return model, dict(history.history)

    cfg = train.TrainConfig(
        models=("best",), seed=args.seed, epochs=args.epochs, limit_per_split=args.limit, other=config.OTHER in labels
    )
    # the rest of kws.train (data, augmentation, saving) is used as it is; the swap ends with the run, so a caller's
    # process (a test) keeps the real fit_one
    with mock.patch.object(train, "fit_one", fit_one):
        train.train(cfg, args.out, data_dir=args.data_dir)
    record(Path(args.out), teachers, args.temperature, args.alpha)
    logging.info("wrote %s/best.keras; compare with: python experiments/choose.py models %s", args.out, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
