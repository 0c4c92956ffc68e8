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
one look sees every word. The looks are spaced on the take's clock, not by when the page asks (:meth:`Spotter.feed`):
a busy server that runs the page's timer once in three seconds makes the looks it missed then, so the same audio
gives the same words however loaded the machine is.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from kws import config
from kws.audio import AudioError, clip_from_array

logger = logging.getLogger(__name__)

#: Seconds of the latest audio each look covers: a 1-s window with room to be wholly inside.
LOOK_SECONDS = 2.4
#: A window this close to either end of the look is a word cut off, not a word said.
EDGE_SECONDS = 0.1
#: Windows starting this close together are the same word seen by overlapping looks.
SAME_WORD_SECONDS = 0.5
#: Looks are this far apart on the take's clock.
LOOK_EVERY_SECONDS = 0.5
#: How far back a late page catches up; audio older than this is not looked at again (a stalled server).
MAX_BEHIND_SECONDS = 6.0
#: The audio :meth:`Spotter.feed` should be given: the latest look and all it may have to catch up.
FEED_SECONDS = LOOK_SECONDS + MAX_BEHIND_SECONDS


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
    next_look_s: float = LOOK_EVERY_SECONDS  # where on the take's clock the next look ends

    def feed(self, predictor, samples: np.ndarray, rate: int, end_s: float, final: bool = False) -> list[Spotted]:
        """Make every look due by ``end_s`` on the take's clock, one per :data:`LOOK_EVERY_SECONDS`, and return
        the words they found. ``samples`` (at ``rate``) end at ``end_s`` and go back up to :data:`FEED_SECONDS`.

        ``final``: the take is over, so one more look ends at ``end_s`` itself (a word finished since the last
        look due would otherwise be lost).
        """
        start_s = end_s - samples.size / rate
        if self.next_look_s < end_s - MAX_BEHIND_SECONDS:  # skip whole steps: the looks keep their places
            logger.info("word spotting fell %.1f s behind the take; skipping ahead", end_s - self.next_look_s)
            steps = math.ceil((end_s - MAX_BEHIND_SECONDS - self.next_look_s) / LOOK_EVERY_SECONDS)
            self.next_look_s += steps * LOOK_EVERY_SECONDS
        ends = []
        while self.next_look_s <= end_s:
            ends.append(self.next_look_s)
            self.next_look_s += LOOK_EVERY_SECONDS
        if final and (not ends or ends[-1] < end_s):
            ends.append(end_s)
        found = []
        for look_end in ends:
            stop = min(samples.size, round((look_end - start_s) * rate))
            said = self.look(predictor, samples[max(0, stop - round(LOOK_SECONDS * rate)) : stop], rate, look_end)
            if said is not None:
                found.append(said)
        return found

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
        if (
            word is None
            or word == config.OTHER
            or window.start_s < EDGE_SECONDS
            or window.end_s > duration - EDGE_SECONDS
        ):
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
