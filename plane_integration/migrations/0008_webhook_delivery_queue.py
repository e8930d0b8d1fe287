from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("plane_integration", "0007_deploy_comments_and_call_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="claimed_until",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="retry_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
