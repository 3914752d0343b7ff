"""The governance pack: the organisation's AI policy and a RACI matrix, generated from ``policies/``."""
