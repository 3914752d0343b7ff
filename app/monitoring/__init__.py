"""Monitoring of AI systems in operation (AI Act Art. 72) and the deployments of their versions."""
