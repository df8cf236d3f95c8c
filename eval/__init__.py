"""Evaluation: metrics and latency in numpy alone (host and device), and `edge eval` / `edge bench`."""
