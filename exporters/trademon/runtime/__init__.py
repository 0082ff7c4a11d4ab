"""What every trademon process runs on: the HTTP service, its guard, JSON logs and redaction."""
