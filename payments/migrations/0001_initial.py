# The payment models, moved from the ``wallets`` app with their tables and data (state only), and their
# content types renamed so admin permissions and log entries follow them.

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models

MODELS = ("payment", "paymentattempt", "paymentevent")


def rename_content_types(apps, schema_editor, source="wallets", target="payments"):
    content_type = apps.get_model("contenttypes", "ContentType")
    db = schema_editor.connection.alias
    for model in MODELS:
        if not content_type.objects.using(db).filter(app_label=target, model=model).exists():
            content_type.objects.using(db).filter(app_label=source, model=model).update(app_label=target)


def restore_content_types(apps, schema_editor):
    rename_content_types(apps, schema_editor, source="payments", target="wallets")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("wallets", "0003_move_payments_to_payments_app"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Payment",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ("recipient_input", models.CharField(help_text="What the sender typed: an email or an address.", max_length=254)),
                        ("recipient_address", models.CharField(max_length=44)),
                        ("amount", models.PositiveBigIntegerField()),
                        ("memo", models.CharField(blank=True, default="", max_length=200)),
                        ("status", models.CharField(choices=[("created", "Created"), ("awaiting_approval", "Awaiting approval"), ("approved", "Approved"), ("submitted", "Submitted"), ("confirmed", "Confirmed"), ("failed", "Failed"), ("rejected", "Rejected"), ("expired", "Expired")], db_index=True, default="created", max_length=20)),
                        ("signature", models.CharField(blank=True, db_index=True, default="", max_length=88)),
                        ("slot", models.PositiveBigIntegerField(blank=True, null=True)),
                        ("error_code", models.CharField(blank=True, default="", max_length=64)),
                        ("error_message", models.CharField(blank=True, default="", max_length=300)),
                        ("error_detail", models.JSONField(blank=True, null=True)),
                        ("creates_recipient_token_account", models.BooleanField(default=False)),
                        ("sponsored_lamports", models.PositiveBigIntegerField(default=0)),
                        ("idempotency_key", models.CharField(blank=True, max_length=255, null=True)),
                        ("request_fingerprint", models.CharField(blank=True, default="", max_length=64)),
                        ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        ("updated_at", models.DateTimeField(auto_now=True)),
                        ("approved_at", models.DateTimeField(blank=True, null=True)),
                        ("submitted_at", models.DateTimeField(blank=True, null=True)),
                        ("confirmed_at", models.DateTimeField(blank=True, null=True)),
                        ("failed_at", models.DateTimeField(blank=True, null=True)),
                        ("recipient_wallet", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="payments_received", to="wallets.wallet")),
                        ("sender", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="payments_sent", to=settings.AUTH_USER_MODEL)),
                        ("token", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="payments", to="wallets.token")),
                        ("wallet", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="payments_sent", to="wallets.wallet")),
                    ],
                    options={
                        "db_table": "wallets_payment",
                        "ordering": ("-created_at",),
                        "indexes": [models.Index(fields=["wallet", "token", "status"], name="wallets_pay_open_idx")],
                        "constraints": [models.UniqueConstraint(condition=models.Q(("idempotency_key__isnull", False)), fields=("sender", "idempotency_key"), name="wallets_payment_sender_idempotency_key_unique")],
                    },
                ),
                migrations.CreateModel(
                    name="PaymentAttempt",
                    fields=[
                        ("id", models.BigAutoField(primary_key=True, serialize=False)),
                        ("number", models.PositiveSmallIntegerField()),
                        ("signed_transaction", models.BinaryField()),
                        ("signature", models.CharField(max_length=88, unique=True)),
                        ("blockhash", models.CharField(max_length=44)),
                        ("last_valid_block_height", models.PositiveBigIntegerField()),
                        ("status", models.CharField(choices=[("pending", "Pending (stored, not sent)"), ("sent", "Sent"), ("landed", "Landed"), ("expired", "Expired (blockhash too old, never landed)"), ("failed", "Failed")], default="pending", max_length=10)),
                        ("send_count", models.PositiveIntegerField(default=0)),
                        ("last_sent_at", models.DateTimeField(blank=True, null=True)),
                        ("error_detail", models.JSONField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("payment", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="attempts", to="payments.payment")),
                    ],
                    options={
                        "db_table": "wallets_paymentattempt",
                        "ordering": ("payment", "number"),
                        "constraints": [models.UniqueConstraint(fields=("payment", "number"), name="wallets_attempt_number_unique")],
                    },
                ),
                migrations.CreateModel(
                    name="PaymentEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("from_status", models.CharField(blank=True, default="", max_length=20)),
                        ("to_status", models.CharField(max_length=20)),
                        ("note", models.CharField(blank=True, default="", max_length=300)),
                        ("at", models.DateTimeField(auto_now_add=True)),
                        ("payment", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="events", to="payments.payment")),
                    ],
                    options={
                        "db_table": "wallets_paymentevent",
                        "ordering": ("at", "id"),
                    },
                ),
            ],
        ),
        migrations.RunPython(rename_content_types, restore_content_types),
    ]
