"""Text as a database column holds it. Pure.

NUL (PostgreSQL refuses it) and unpaired surrogates (not encodable as UTF-8) are what no
text column takes; json.loads joins a valid surrogate pair into one character, so any
surrogate left in a decoded string is unpaired. Senders' webhooks carry both.
"""

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def clean_text(text: str) -> str:
    """`text` with what no database column can hold replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text)
