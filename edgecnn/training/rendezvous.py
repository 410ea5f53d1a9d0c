"""Meeting the other workers before TensorFlow forms the cluster, so that nobody waits in silence.

TensorFlow's own cluster set-up blocks in C++ with no word and no timeout a user can see. So every
worker first listens on its own TF_CONFIG port with a tiny hello service and probes the others' ports:
it reports who is still missing ("waiting for 1 of 2 workers at localhost:23452"), gives up after a
timeout with one line naming the missing workers, and learns a peer's refusal to start (a failed
pre-flight check such as "run directory exists") within a probe, instead of hanging. Once every peer
answers, the hello service closes and TensorFlow takes the port over (a probe that reaches a peer's
TensorFlow server counts as present: that peer has already moved on). TensorFlow-free.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.progress import Progress, Tracker
from edgecnn.training.cluster import ClusterSpec, WorkerAddress

PROBE_TIMEOUT_S = 1.0
HELLO = "edgecnn-rendezvous"


@dataclass(frozen=True)
class RendezvousConfig:
    cluster: ClusterSpec
    timeout_s: float = 120.0  # how long to wait for the last worker to appear
    poll_s: float = 0.5
    # This worker's failed pre-flight check: instead of joining, it tells the peers why it stops.
    refusal: str | None = None
    refusal_linger_s: float = 15.0  # how long a refusing worker stays to tell peers that start later

    def __post_init__(self) -> None:
        for name in ("timeout_s", "poll_s", "refusal_linger_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise EdgecnnError(
                    f"{name.removesuffix('_s').replace('_', ' ')} must be > 0 seconds, got {value!r}"
                )


@dataclass(frozen=True)
class RendezvousResult:
    workers: int
    waited_s: float


@dataclass(frozen=True)
class PeerAnswer:
    present: bool
    refusal: str | None = None  # the peer's one-line reason when it will not start


def probe(address: WorkerAddress, my_rank: int, timeout_s: float = PROBE_TIMEOUT_S) -> PeerAnswer:
    """Is a worker listening at `address`, and did it say it refuses to start?"""
    try:
        conn = socket.create_connection((address.host, address.port), timeout=timeout_s)
    except OSError:
        return PeerAnswer(present=False)
    with conn:
        try:
            conn.sendall(f"{HELLO} {my_rank}\n".encode())
            reply = conn.makefile("r", encoding="utf-8").readline(4096)
        except OSError:  # a TensorFlow server, not our hello service: that peer is already past this point
            return PeerAnswer(present=True)
    try:
        doc = json.loads(reply)
    except ValueError:
        return PeerAnswer(present=True)
    if isinstance(doc, dict) and doc.get("status") == "refused":
        return PeerAnswer(present=True, refusal=str(doc.get("reason", "no reason given")))
    return PeerAnswer(present=True)


def missing_workers(cluster: ClusterSpec) -> list[int]:
    """Ranks of the peers whose port does not accept a connection right now."""
    return [r for r in cluster.peers if not probe(cluster.addresses[r], cluster.rank).present]


class HelloService:
    """Answers each probe of this worker's port with one JSON line, in a background thread."""

    def __init__(self, cluster: ClusterSpec, refusal: str | None) -> None:
        self._reply = (
            json.dumps(
                {
                    "hello": HELLO,
                    "rank": cluster.rank,
                    "status": "refused" if refusal else "ready",
                    "reason": refusal,
                }
            ).encode()
            + b"\n"
        )
        self.heard_by: set[int] = set()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind(("", cluster.address.port))
        except OSError as exc:
            self._sock.close()
            raise EdgecnnError(
                f"cannot listen on {cluster.address} ({cluster.names[cluster.rank]}'s TF_CONFIG address): "
                f"{exc.strerror or exc}; another process holds that port"
            ) from None
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="edgecnn-hello", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError, ValueError):
                conn.settimeout(PROBE_TIMEOUT_S)
                words = conn.makefile("r", encoding="utf-8").readline(256).split()
                conn.sendall(self._reply)
                if len(words) == 2 and words[0] == HELLO:
                    self.heard_by.add(int(words[1]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._sock.close()


def _refuse(config: RendezvousConfig, tracker: Tracker) -> None:
    """Serve this worker's refusal to the peers for a while, then raise it here too."""
    cluster, reason = config.cluster, config.refusal or ""
    service = HelloService(cluster, reason)
    deadline = time.monotonic() + config.refusal_linger_s
    try:
        tracker.describe(f"cannot start ({reason}); telling the other workers")
        while time.monotonic() < deadline and not set(cluster.peers) <= service.heard_by:
            time.sleep(config.poll_s)
    finally:
        service.close()
    raise EdgecnnError(reason)


def rendezvous(config: RendezvousConfig, *, progress: Progress | None = None) -> RendezvousResult:
    """Wait until every peer answers on its TF_CONFIG port; one-line errors on timeout or refusal."""
    cluster = config.cluster
    start = time.monotonic()
    with Tracker(progress, "cluster", len(cluster.peers), "meeting the other workers") as tracker:
        if config.refusal is not None:
            _refuse(config, tracker)
        service = HelloService(cluster, None)
        try:
            missing = list(cluster.peers)
            while True:
                answers = {r: probe(cluster.addresses[r], cluster.rank) for r in missing}
                for r, answer in answers.items():
                    if answer.refusal is not None:
                        raise EdgecnnError(f"{cluster.describe([r])} cannot start: {answer.refusal}")
                missing = [r for r in missing if not answers[r].present]
                tracker.update(len(cluster.peers) - len(missing))
                if not missing:
                    break
                waited = time.monotonic() - start
                if waited > config.timeout_s:
                    raise EdgecnnError(
                        f"gave up after {waited:.0f} s waiting for {cluster.describe(missing)}: "
                        "start the same command there (with its own TF_CONFIG task index) "
                        "or raise --connect-timeout"
                    )
                tracker.describe(
                    f"waiting for {len(missing)} of {cluster.size} workers at "
                    + ", ".join(str(cluster.addresses[r]) for r in missing)
                )
                time.sleep(config.poll_s)
            # Peers still probing us must get a hello before we hand the port to TensorFlow.
            linger_until = time.monotonic() + 2 * config.poll_s + PROBE_TIMEOUT_S
            while time.monotonic() < linger_until and not set(cluster.peers) <= service.heard_by:
                time.sleep(0.05)
        finally:
            service.close()
    return RendezvousResult(workers=cluster.size, waited_s=time.monotonic() - start)
