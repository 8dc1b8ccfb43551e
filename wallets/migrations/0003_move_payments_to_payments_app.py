# Payment, PaymentAttempt and PaymentEvent moved to the ``payments`` app. State only: the tables stay as they
# are (the new models keep them with ``db_table``) and so does every row.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("wallets", "0002_payment_paymentattempt_paymentevent_depositcursor_and_more"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="PaymentEvent"),
                migrations.DeleteModel(name="PaymentAttempt"),
                migrations.DeleteModel(name="Payment"),
            ],
            database_operations=[],
        ),
    ]
