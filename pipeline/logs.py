"""One way to write a structured log line."""

import logging


def log_event(logger: logging.Logger, level: int, fields: dict) -> None:
    """Log `fields` as `key=value` pairs in the message (for text logs) and as record
    attributes (for LOG_FORMAT=json, where they become keys)."""
    logger.log(level, " ".join(f"{k}={v!r}" for k, v in fields.items()), extra=fields)
