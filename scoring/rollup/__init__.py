"""Roll-up maths: customer scores, procurement alerts, team credibility, the heat map.

Pure functions and small state classes, shared by the live team agent and replay.
"""
