"""Credence's pure core: event validation, signal rules and roll-up maths.

Nothing in this package imports Faust or Kafka, so the same code runs inside the
live workers (``streams/``) and in the offline ``credence replay``.
"""
