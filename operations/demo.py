"""What of the local demo (`dev.py up` without a real Plane) a real install must not keep.

The demo runs against the Plane stand-in (its fixed API key) and makes the superuser
`admin` with the password `admin` and the stand-in's demo project. On a real install
these are an open door and a project Plane never heard of.
"""

from django.conf import settings
from django.contrib.auth import get_user_model

STANDIN_KEY = "plane_api_standin"  # dev.py STANDIN_KEY
DEMO_PROJECT_ID = "0de00000-0000-4000-8000-000000000001"  # plane_standin.world
DEMO_USER = "admin"
REMOVE_COMMAND = "manage.py remove_demo"


def demo_mode() -> bool:
    """No Plane configured, or the stand-in's: a local demo."""
    return not (settings.PLANE_API_URL and settings.PLANE_API_KEY) or (
        settings.PLANE_API_KEY == STANDIN_KEY
    )


def demo_account():
    """The demo's account if it is still as the demo made it (password `admin`), else None."""
    user = get_user_model().objects.filter(username=DEMO_USER).first()
    return user if user is not None and user.check_password(DEMO_USER) else None


def leftovers() -> list[str]:
    """What of the demo is in the database, in words (empty: nothing)."""
    from plane_integration.models import PlaneProject

    found = []
    if demo_account() is not None:
        found.append(f"the demo account {DEMO_USER}/{DEMO_USER}")
    if PlaneProject.objects.filter(project_id=DEMO_PROJECT_ID).exists():
        found.append(f"the demo project {DEMO_PROJECT_ID}")
    return found
