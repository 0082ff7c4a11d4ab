"""alert-sink: Alertmanager's file-based webhook receiver (``trademon alert-sink``)."""
