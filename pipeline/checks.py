from django.conf import settings
from django.core.checks import Error, register


@register()
def secret_key_is_set(app_configs, **kwargs):
    """Refuse to run a non-debug deployment on the well-known development key."""
    if settings.DEBUG or settings.SECRET_KEY != settings.INSECURE_SECRET_KEY:
        return []
    return [
        Error(
            "DJANGO_SECRET_KEY is not set.",
            hint="Set DJANGO_SECRET_KEY (see .env.example), or DJANGO_DEBUG=true for a "
            "local development run. `python3 dev.py up` writes a .env with a fresh key.",
            id="stageboard.E001",
        )
    ]
