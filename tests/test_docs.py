"""The operator's docs say what the code does: tables read from docs/operations.md."""

import re
from pathlib import Path

from plane_integration import statuses

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first table after `heading` in docs/operations.md."""
    text = OPERATIONS.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return [row for row in rows[1:] if not re.fullmatch(r"-+", row[0])]


def test_the_statuses_table_lists_each_status_plane_states_creates_with_its_group():
    rows = table_after("### The statuses on the board")
    documented = {name: (group, means) for name, group, means in rows}
    expected = {
        statuses.DEFAULT_NAMES[key]: (statuses.GROUPS[key], statuses.MEANINGS[key])
        for key in statuses.CREATED_KEYS
    }
    assert documented == expected
