"""A web process for tests/test_failover.py: one store write a request.

``python -m tests.failover_writer HOSTS PORTS PREFIX STOPFILE`` (or
``... migrate``) configures Django on one alias whose ``HOST`` and ``PORT``
list both servers of the pair with ``target_session_attrs=read-write``, so a
new connection goes to whichever is the primary: after a failover, the next
request reconnects there, as it would through a managed service's endpoint.

Each "request" (Django's request_started/finished signals around it, as the
handler sends them) sets one new key and prints ``ok N`` once ``set()`` has
returned, that is once the commit is acknowledged, or ``err N Error`` when it
raised. When STOPFILE appears, the process reads back every acknowledged key
with ``get_many`` and prints ``missing [...]`` and ``done``.
"""

from __future__ import annotations

import os
import sys
import time

import django
from django.conf import settings


def configure(hosts: str, ports: str) -> None:
    settings.configure(
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": "failover",
                "USER": "root",
                "HOST": hosts,
                "PORT": ports,
                "CONN_MAX_AGE": 600,
                "CONN_HEALTH_CHECKS": True,
                "OPTIONS": {"target_session_attrs": "read-write", "connect_timeout": 2},
            }
        },
        CACHES={"default": {"BACKEND": "keyval_backend.cache.KeyValCache"}},
        INSTALLED_APPS=["keyval_backend"],
        SECRET_KEY="keyval-backend-failover-test",
        USE_TZ=True,
    )
    django.setup()


def main(argv: list[str]) -> int:
    hosts, ports, prefix = argv[:3]
    configure(hosts, ports)
    if prefix == "migrate":
        from django.core.management import call_command

        call_command("migrate", "keyval_backend", verbosity=0)
        return 0
    stop_file = argv[3]
    from django.core.cache import cache
    from django.core.signals import request_finished, request_started
    from django.db import Error

    acknowledged: list[int] = []
    n = 0
    while not os.path.exists(stop_file):
        n += 1
        request_started.send(sender=None)
        try:
            cache.set(f"{prefix}:{n}", n)
        except Error as exc:
            print(f"err {n} {type(exc).__name__}", flush=True)
            time.sleep(0.05)
        else:
            acknowledged.append(n)
            print(f"ok {n}", flush=True)
        finally:
            request_finished.send(sender=None)
    found: dict[str, int] = {}
    for start in range(0, len(acknowledged), 500):
        chunk = [f"{prefix}:{i}" for i in acknowledged[start : start + 500]]
        found.update(cache.get_many(chunk))
    missing = [i for i in acknowledged if found.get(f"{prefix}:{i}") != i]
    print(f"missing {missing}", flush=True)
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
