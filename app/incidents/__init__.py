"""Incidents of AI systems: AI Act Art. 73 reporting deadlines and the release suspension they cause."""
