"""Start the test OpenID Connect provider: migrate its SQLite database, register Numpay as a client, create
its users, then serve HTTP on 127.0.0.1.

``python -m tests.oidc_provider.serve PORT`` with ``OIDC_TEST_DB``, ``OIDC_TEST_PRIVATE_KEY`` and
``OIDC_TEST_SETUP`` (JSON: ``{"client_id", "client_secret", "redirect_uris": [...], "users": [{"email",
"password", "email_verified"}]}``) in the environment.
"""

from __future__ import annotations

import json
import os
import sys


def main(port: int) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.oidc_provider.settings"
    import django

    django.setup()
    from allauth.account.models import EmailAddress
    from allauth.idp.oidc.models import Client
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.core.servers.basehttp import run
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0, interactive=False)
    setup = json.loads(os.environ["OIDC_TEST_SETUP"])
    client = Client(id=setup["client_id"], name="Numpay (test)", type=Client.Type.CONFIDENTIAL)
    client.set_secret(setup["client_secret"])
    client.set_scopes(["openid", "profile", "email"])
    client.set_default_scopes(["openid", "profile", "email"])
    client.set_redirect_uris(setup["redirect_uris"])
    client.save()
    user_model = get_user_model()
    for index, spec in enumerate(setup["users"]):
        user = user_model.objects.create_user(username=f"idp-user-{index}", email=spec["email"],
                                              password=spec["password"])
        EmailAddress.objects.create(user=user, email=spec["email"], primary=True, verified=spec["email_verified"])
    print("ready", flush=True)  # noqa: T201 - the fixture waits for this line
    run("127.0.0.1", port, get_wsgi_application(), threading=True)


if __name__ == "__main__":
    main(int(sys.argv[1]))
