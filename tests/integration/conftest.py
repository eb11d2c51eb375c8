"""Fixtures: a fresh `hearth run` per test with three accounts.

The server's log is printed at teardown; pytest shows it only when the test
failed. Teardown stops the server with SIGTERM and fails the test if the exit
was not clean (code 0, no crash in the log, no worker left behind).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hearthtest  # noqa: E402

USERS = {"alice": "plum-orbit-kettle-42", "bob": "violet-harbour-cinder-7",
         "carol": "amber-quartz-river-3"}


@pytest.fixture
def make_server(request):
    servers = []
    clients = []

    def factory(overrides=None, users=USERS, start=True, log_level="debug"):
        s = hearthtest.HearthServer(overrides=overrides, log_level=log_level,
                                    name=request.node.name[:40].replace("/", "_"))
        servers.append(s)
        for user, password in (users or {}).items():
            s.add_user(user, password)
        if start:
            s.start()
        s.clients = clients
        return s

    yield factory

    for c in clients:
        c.close()
    errors = []
    for s in servers:
        try:
            if s.proc is not None and s.returncode is None:
                s.stop()
        except AssertionError as e:
            errors.append(str(e))
        finally:
            print("==== hearth log (%s) ====" % s.dir)
            print(s.log_tail(300))
            s.cleanup()
    if errors:
        pytest.fail("server did not shut down cleanly:\n" + "\n".join(errors), pytrace=False)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def login(server):
    """login(user, resource=None, **kw) -> bound XmppClient, closed at teardown."""

    def do(user, resource=None, password=None, **kw):
        c = hearthtest.XmppClient.login(server, user, password or USERS[user], resource, **kw)
        server.clients.append(c)
        return c

    return do


@pytest.fixture
def connect(server):
    """connect(direct_tls=False, **kw) -> XmppClient with TCP/TLS open, no stream yet."""

    def do(direct_tls=False, **kw):
        if direct_tls:
            c = hearthtest.XmppClient.connect_direct_tls(server.direct_tls_port, **kw)
        else:
            c = hearthtest.XmppClient.connect(server.starttls_port, **kw)
        server.clients.append(c)
        return c

    return do
