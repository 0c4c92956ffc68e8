"""Keyword spotting in a running take: each look at the latest audio, smoothed into words said once each.

The models answer one window at a time; deciding that a word *was said* is a separate step with its own rules,
kept outside the models as TensorFlow's speech-commands recognizer keeps its averaging and thresholds:

- a look covers the last :data:`LOOK_SECONDS`, and the models hear its loudest second (:func:`find_window`);
- a word counts only once it is over: its window must not touch the newest :data:`EDGE_SECONDS` of the look
  (a word still being said sits at that edge), nor the oldest (a word half gone);
- more than half of the models must name it, as for "Most models say" on a single clip;
- looks overlap, so the same word is seen several times: a window starting within :data:`SAME_WORD_SECONDS`
  of the last word reported is that word again.

With looks every half second, a word's window has 1.2 s in which it fits a look's allowed span, so at least
one look sees every word.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from kws.audio import AudioError, clip_from_array

logger = logging.getLogger(__name__)

#: Seconds of the latest audio each look covers: a 1-s window with room to be wholly inside.
LOOK_SECONDS = 2.4
#: A window this close to either end of the look is a word cut off, not a word said.
EDGE_SECONDS = 0.1
#: Windows starting this close together are the same word seen by overlapping looks.
SAME_WORD_SECONDS = 0.5


@dataclass(frozen=True)
class Spotted:
    """One word said: what, where its window starts and ends on the take's clock, and how many models named it."""

    word: str
    at_s: float
    end_s: float
    votes: int
    models: int
    confidence: float  # the mean confidence of the models that named it


@dataclass
class Spotter:
    """The words spotted so far in one take (one per browser session; a new take starts a new one)."""

    spotted: list[Spotted] = field(default_factory=list)
    looks: int = 0

    def look(self, predictor, samples: np.ndarray, rate: int, end_s: float) -> Spotted | None:
        """Answer the latest audio (``samples`` at ``rate``, ending at ``end_s`` on the take's clock); the word
        if one was just said, after the rules above, else ``None``."""
        self.looks += 1
        if samples.size < rate * LOOK_SECONDS * 0.5:
            return None  # the take has only just begun
        try:
            prediction = predictor.predict_clip(clip_from_array(samples, rate))
        except AudioError as err:
            logger.debug("not a look: %s", err)
            return None
        word, window = prediction.majority, prediction.window
        duration = prediction.clip.duration
        if word is None or window.start_s < EDGE_SECONDS or window.end_s > duration - EDGE_SECONDS:
            return None
        named = [a for a in prediction.answers if a.word == word]
        if 2 * len(named) <= len(prediction.answers):
            return None
        at_s = end_s - duration + window.start_s
        if self.spotted and abs(at_s - self.spotted[-1].at_s) < SAME_WORD_SECONDS:
            return None
        found = Spotted(
            word,
            at_s,
            at_s + window.end_s - window.start_s,
            len(named),
            len(prediction.answers),
            float(np.mean([a.confidence for a in named])),
        )
        self.spotted.append(found)
        return found
