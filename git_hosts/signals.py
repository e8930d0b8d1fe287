"""What the Git hosts tell the layers above them (operations notifies a person)."""

from django.dispatch import Signal

# A deploy event the approval gate (or another gate) refused: sent after commit with
# `event` (the GitEvent, outcome refused, its detail saying why).
deploy_refused = Signal()
