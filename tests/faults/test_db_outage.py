"""PostgreSQL going away and coming back, through a TCP proxy that is cut and restored: every
request meanwhile is a 503 with Retry-After (never a 500), and afterwards nothing stored is
lost and every study leases again. Skipped, saying why, where no PostgreSQL answers
(AELLE_REQUIRE_POSTGRES=1 turns the skip into a failure)."""

import contextlib
import socket
import threading

from fastapi.testclient import TestClient

from service.api.app import create_app
from tests.service.support import (
    API,
    USER,
    WORKER,
    lease,
    report,
    result,
    service_settings,
    study,
)


class Proxy:
    """Forwards TCP connections from a local port to ``target``; ``cut()`` drops every
    connection and refuses new ones (they are accepted and closed at once, as a server going
    down does), ``restore()`` forwards again."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self._live: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._live += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while chunk := src.recv(65536):
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self):
        self.open = False
        with self._lock:
            live, self._live = self._live, []
        for s in live:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def restore(self):
        self.open = True

    def close(self):
        self.cut()
        self.listener.close()


def test_requests_during_an_outage_are_503_and_nothing_is_lost(pg_url):
    proxy = Proxy(("127.0.0.1", 5432))
    url = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    try:
        with TestClient(create_app(service_settings(url))) as client:
            for name in ("a", "b"):
                r = client.post(f"{API}/studies", json=study(name=name, budget=3),
                                headers=USER)
                assert r.status_code == 201, r.text
            got = lease(client)
            assert report(client, got).status_code == 200
            proxy.cut()
            during = [
                report(client, got, epoch=1),
                client.post(f"{API}/trials/{got['trial_id']}/heartbeat",
                            json={"lease": got["token"]}, headers=WORKER),
                result(client, got, value=0.5),
                client.post(f"{API}/leases", json={}, headers=WORKER),
                client.post(f"{API}/studies", json=study(name="c"), headers=USER),
                client.get(f"{API}/studies", headers=USER),
                client.get(f"{API}/studies/a/trials", headers=USER),
                client.get(f"{API}/health"),
            ]
            for r in during:
                assert r.status_code == 503, (r.request.method, r.request.url, r.text)
                assert r.headers["retry-after"].isdigit()
            proxy.restore()
            assert report(client, got, epoch=1).status_code == 200
            assert result(client, got, value=0.5).json()["state"] == "complete"
            detail = client.get(f"{API}/studies/a/trials/{got['number']}", headers=USER).json()
            assert [x["epoch"] for x in detail["reports"]] == [0, 1]
            assert client.get(f"{API}/studies", headers=USER).json()["count"] == 2
            studies = {lease(client)["study"] for _ in range(4)}
            assert studies == {"a", "b"}  # both lease again
            assert client.get(f"{API}/health").status_code == 200
    finally:
        proxy.close()
