"""Operating AI at scale: monitoring, deployments, incidents, reviews, replication, KPIs, bulk inventory."""
