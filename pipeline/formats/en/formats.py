"""Dates and times as Stageboard shows them (settings.FORMAT_MODULE_PATH): with seconds and
the time zone (settings.TIME_ZONE), so a time read off a page can be put beside a log line."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
TIME_FORMAT = "H:i:s"
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s T"
