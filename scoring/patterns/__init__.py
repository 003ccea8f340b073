"""The pattern kinds of the signal catalogue, registered in one place: a new kind is
one module and one line here."""

from __future__ import annotations

from scoring.patterns.all_of import AllOf
from scoring.patterns.base import Pattern
from scoring.patterns.first_per import FirstPer
from scoring.patterns.silence import Silence
from scoring.patterns.streak import Streak

#: ``pattern:`` of a signal entry -> its kind
KINDS: dict[str, type[Pattern]] = {
    "streak": Streak,
    "all_of": AllOf,
    "first_per": FirstPer,
    "silence": Silence,
}
