"""Two groups with the right permissions: `operators` (view, drive, approve, decide on
post-deploy windows) and `pipelines` (view, create, drive; never approve: nobody approves
their own deploy). `manage.py pipeline_token NAME` puts a CI user in `pipelines`."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    "operators": [
        ("pipeline", "view_task"),
        ("pipeline", "change_task"),
        ("pipeline", "approve_deploy"),
        ("pipeline", "view_deployment"),
        ("pipeline", "view_switchboard"),
        ("pipeline", "view_switchboardchange"),
        ("monitoring", "view_monitorwindow"),
        ("monitoring", "change_monitorwindow"),
        ("monitoring", "view_monitoredrepo"),
    ],
    "pipelines": [
        ("pipeline", "view_task"),
        ("pipeline", "add_task"),
        ("pipeline", "change_task"),
    ],
}


def create_groups(apps, schema_editor):
    # Permissions are made after migrations (post_migrate): on a fresh database make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, perms in GROUPS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        for app_label, codename in perms:
            group.permissions.add(
                permission_model.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0001_notification"),
        ("pipeline", "0007_switchboard_change_reason"),
        ("monitoring", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
