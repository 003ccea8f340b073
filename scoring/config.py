"""Time units the scoring core counts in. Rule parameters live in the signal
catalogue (``rules.yaml``, :mod:`scoring.signal_catalogue`)."""

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
