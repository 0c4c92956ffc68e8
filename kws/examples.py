"""Example clips for "Try it" and grading a prediction against a known word.

Examples come only from the dataset's test split: the models never trained or tuned on those speakers, so an
example shows what a stranger's voice gets, not a memorised clip.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kws.dataset import scan

if TYPE_CHECKING:
    from kws.inference import Prediction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Example:
    """A test-split clip and the word it holds."""

    path: Path
    word: str

    @property
    def name(self) -> str:
        """``word/file.wav``: enough to find the clip again in the dataset."""
        return f"{self.path.parent.name}/{self.path.name}"


def split_examples(directory: str | Path | None = None, split: str = "test") -> list[Example]:
    """Every clip of ``split``, sorted by path; raises ``DatasetMissingError`` without a dataset."""
    return [Example(item.path, item.label) for item in scan(directory) if item.split == split]


def pick(examples: list[Example], rng: random.Random | None = None) -> Example:
    """One example at random (``rng`` makes it repeatable in tests)."""
    if not examples:
        raise ValueError("no examples to pick from")
    return (rng or random).choice(examples)


def graded(prediction: Prediction, true_word: str) -> dict[str, bool]:
    """Model name -> whether it named ``true_word``; with no speech detected no model is counted right."""
    return {a.name: (not prediction.no_speech and a.word == true_word) for a in prediction.answers}
