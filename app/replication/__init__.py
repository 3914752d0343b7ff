"""Replication of an AI system to another line or site, reusing its evidence (policies/replication.yaml)."""
