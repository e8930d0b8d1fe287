"""Keep each webhook body as the bytes Plane signed, not as text."""

from django.db import migrations, models


def text_to_bytes(apps, schema_editor):
    deliveries = apps.get_model("plane_integration", "WebhookDelivery")
    for row in deliveries.objects.only("pk", "body_text").iterator(chunk_size=500):
        deliveries.objects.filter(pk=row.pk).update(body=row.body_text.encode("utf-8"))


def bytes_to_text(apps, schema_editor):
    deliveries = apps.get_model("plane_integration", "WebhookDelivery")
    for row in deliveries.objects.only("pk", "body").iterator(chunk_size=500):
        text = bytes(row.body).decode("utf-8", "replace").replace("\x00", "\ufffd")
        deliveries.objects.filter(pk=row.pk).update(body_text=text)


class Migration(migrations.Migration):

    dependencies = [
        ("plane_integration", "0003_guardverdict"),
    ]

    operations = [
        # A text column cannot be cast to bytea on PostgreSQL when it holds backslashes
        # (every JSON escape), so the bodies are copied, not altered in place.
        migrations.RenameField("webhookdelivery", "body", "body_text"),
        migrations.AddField(
            model_name="webhookdelivery",
            name="body",
            field=models.BinaryField(default=b"", help_text="The raw body, exactly as signed"),
            preserve_default=False,
        ),
        migrations.RunPython(text_to_bytes, bytes_to_text, elidable=True),
        migrations.RemoveField("webhookdelivery", "body_text"),
    ]
