"""Bulk import and export of the AI system inventory as CSV or JSON."""
