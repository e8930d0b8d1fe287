"""The stage engine's hook points. Other layers listen; the engine imports none of them.

`stage_entered` is sent inside the engine's transaction, after the new stage is saved
and recorded. A receiver's database writes commit or roll back with the change itself,
and an exception from it refuses the whole change. The post-deploy monitor arms its
window here, so the window is active before the board is told.
Arguments: `task` (locked, already saved), `change` (the StageChange row).

`task_changed` is sent after the transaction commits, for a new task and for every
change of stage, deploy phase or approval, with `send_robust`: a failing receiver is
logged and never undoes the truth. Board indication listens here. Arguments: `task`,
`change` (None for a new task).

`deployment_settled` is sent after commit once a deployment's outcome is final (see
`pipeline.deployments`), with `send_robust`. The work item's comment and the
notifications listen. Arguments: `deployment` (its task selected).
"""

from django.dispatch import Signal

stage_entered = Signal()
task_changed = Signal()
deployment_settled = Signal()
