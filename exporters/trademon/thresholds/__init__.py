"""Thresholds at run time: monitoring/config.yml rendered into recording rules (one series per
threshold, one more per account that overrides it), and the service that keeps Prometheus's
copy current (``trademon thresholds --watch``)."""
