"""1,000 concurrent connections in one room all receive one broadcast."""

import resource
import time

from conftest import HOST, ParleyClient

N = 1000


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def test_1000_connections_join_one_room_and_all_receive_a_broadcast(parley):
    assert raise_nofile(N + 200) >= N + 200, "cannot raise RLIMIT_NOFILE"
    s = parley()  # inherits the raised limit
    deadline = time.monotonic() + 180
    clients = []
    try:
        for i in range(N):
            c = ParleyClient(HOST, s.port, timeout=20)
            clients.append(c)
            c.send_cmd("join", room="crowd")
            if i % 100 == 99:
                assert time.monotonic() < deadline, "connecting took too long (%d)" % i
        members = []
        for c in clients:
            members.append(c.wait_reply(1)["data"]["members"])
        assert sorted(members) == list(range(1, N + 1)), "each guest is a distinct user"
        pub = clients[0]
        cid = pub.send_cmd("publish", room="crowd", data="to all", echo=False)
        assert pub.wait_reply(cid)["ok"] is True
        for i, c in enumerate(clients[1:], 1):
            m = c.next_json()
            assert m["type"] == "message" and m["data"] == "to all", (i, m)
            assert time.monotonic() < deadline, "delivery took too long (%d)" % i
        pub.assert_nothing_pending(0.1)
        assert s.http_get("/healthz")[0] == 200
    finally:
        for c in clients:
            c.close_socket()
