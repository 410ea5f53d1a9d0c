"""Multi-worker training with real `edgecnn train --strategy multiworker` processes on loopback ports
(issue 13), plus fast unit tests of the TF_CONFIG check, the batch plan and the rendezvous."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgecnn.core.errors import EdgecnnError
from edgecnn.training.cluster import cluster_from_env, validate_tf_config
from edgecnn.training.multiworker import epoch_batches, eval_batches
from edgecnn.training.rendezvous import RendezvousConfig, rendezvous

ROOT = Path(__file__).resolve().parents[1]


def _tf_config(ports: list[int], index: int, chief: bool = False) -> dict:
    workers = [f"localhost:{p}" for p in ports]
    if chief:
        return {
            "cluster": {"chief": workers[:1], "worker": workers[1:]},
            "task": {"type": "worker", "index": index},
        }
    return {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


# --------------------------------------------------------------------------- TF_CONFIG


def test_valid_tf_config_gives_ranks_in_tensorflow_order() -> None:
    spec = validate_tf_config(json.dumps(_tf_config([2001, 2002, 2003], 1)))
    assert spec.size == 3 and spec.rank == 1 and not spec.is_chief
    assert [str(a) for a in spec.addresses] == ["localhost:2001", "localhost:2002", "localhost:2003"]
    assert spec.describe([2]) == "worker 2 at localhost:2003"
    with_chief = validate_tf_config(_tf_config([2001, 2002], 0, chief=True))
    assert with_chief.rank == 1 and with_chief.names == ("chief", "worker 0")
    chief = validate_tf_config(
        {"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "chief", "index": 0}}
    )
    assert chief.is_chief and str(chief.address) == "h:1"
    assert (
        validate_tf_config(
            {"cluster": {"worker": ["[::1]:5"]}, "task": {"type": "worker", "index": 0}}
        ).address.host
        == "::1"
    )


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("{not json", "not valid JSON"),
        ({"cluster": [], "task": {}}, "must be a JSON object with 'cluster' and 'task'"),
        ({"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}, "'ps' job"),
        (
            {"cluster": {"worker": ["a:1"], "evaluator": ["b:2"]}, "task": {"type": "worker", "index": 0}},
            "evaluator",
        ),
        ({"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}, "must be a non-empty list"),
        ({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}, "must be a non-empty list"),
        ({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}, "'host:port'"),
        ({"cluster": {"worker": ["a:0"]}, "task": {"type": "worker", "index": 0}}, "port in 1-65535"),
        ({"cluster": {"worker": ["a:x"]}, "task": {"type": "worker", "index": 0}}, "port in 1-65535"),
        ({"cluster": {"worker": [5]}, "task": {"type": "worker", "index": 0}}, "'host:port' string"),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "chief"}}, "does not name a job"),
        ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": True}}, "integer index"),
        (
            {"cluster": {"worker": ["a:1", "a:2"]}, "task": {"type": "worker", "index": 2}},
            "index 2 is outside",
        ),
        ({"cluster": {"worker": ["a:1", "a:2"]}, "task": {"type": "worker", "index": -1}}, "is outside"),
        ({"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}, "lists a:1 twice"),
        ({"cluster": {"chief": ["a:1", "a:2"]}, "task": {"type": "chief", "index": 0}}, "only one"),
    ],
)
def test_bad_tf_config_is_one_clear_line(doc, expected: str) -> None:
    with pytest.raises(EdgecnnError, match=None) as info:
        validate_tf_config(doc if isinstance(doc, str) else json.dumps(doc))
    message = str(info.value)
    assert expected in message and "\n" not in message, message


def test_missing_tf_config_says_what_to_set() -> None:
    with pytest.raises(EdgecnnError, match="needs TF_CONFIG"):
        cluster_from_env({})


# --------------------------------------------------------------------------- batch plan


def test_every_image_once_per_epoch_and_no_empty_replica() -> None:
    plan = epoch_batches(1000, global_batch=64, replicas=2, seed=3, epoch=1)
    assert len(plan) == 16  # ceil(1000 / 64), as fit's steps per epoch
    used = np.concatenate([part for step in plan for part in step])
    assert sorted(used.tolist()) == list(range(1000))
    assert min(len(part) for step in plan for part in step) >= 31
    # The same plan on every worker (seeded by seed and epoch), a new order each epoch.
    again = epoch_batches(1000, 64, 2, 3, 1)
    assert all(
        np.array_equal(a, b) for s, t in zip(plan, again, strict=True) for a, b in zip(s, t, strict=True)
    )
    assert not np.array_equal(plan[0][0], epoch_batches(1000, 64, 2, 3, 2)[0][0])
    assert sum(len(p) for s in eval_batches(10, 64, 2) for p in s) == 10


# --------------------------------------------------------------------------- rendezvous (no TensorFlow)


def test_rendezvous_names_the_missing_worker_and_gives_up() -> None:
    ports = _free_ports(2)
    cluster = validate_tf_config(_tf_config(ports, 0))
    events: list[str] = []
    t0 = time.monotonic()
    with pytest.raises(EdgecnnError) as info:
        rendezvous(
            RendezvousConfig(cluster, timeout_s=1.5, poll_s=0.2),
            progress=lambda e: events.append(e.description),
        )
    assert time.monotonic() - t0 < 10
    assert f"waiting for 1 of 2 workers at localhost:{ports[1]}" in events
    assert f"worker 1 at localhost:{ports[1]}" in str(info.value) and "--connect-timeout" in str(info.value)


def test_rendezvous_meets_and_passes_on_a_refusal() -> None:
    ports = _free_ports(3)
    results: dict[int, object] = {}

    def join(rank: int, refusal: str | None = None) -> None:
        config = RendezvousConfig(
            validate_tf_config(_tf_config(ports, rank)), timeout_s=20, poll_s=0.1, refusal=refusal
        )
        try:
            results[rank] = rendezvous(config)
        except EdgecnnError as exc:
            results[rank] = str(exc)

    threads = [threading.Thread(target=join, args=(r,)) for r in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert all(getattr(results[r], "workers", None) == 3 for r in range(3)), results

    ports = _free_ports(2)
    threads = [
        threading.Thread(target=join, args=(0, "run directory runs/x already exists")),
        threading.Thread(target=join, args=(1,)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results[0] == "run directory runs/x already exists"
    assert results[1] == f"worker 0 at localhost:{ports[0]} cannot start: run directory runs/x already exists"


# --------------------------------------------------------------------------- real worker processes
# Every worker runs the real CLI, as a user would in two terminals.


def _start(
    ports: list[int], rank: int, out: Path, mnist_dir: Path, scratch: Path, *args: str
) -> subprocess.Popen:
    scratch.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(scratch),  # where a worker's scratch files would go
        "TF_CONFIG": json.dumps(_tf_config(ports, rank)),
        # Two workers share this machine's cores: one thread pool each keeps them from thrashing.
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-m",
        "edgecnn.cli",
        "train",
        "--strategy",
        "multiworker",
        "--output",
        str(out),
        "--data-dir",
        str(mnist_dir),
        "--no-plots",
        "--json",
        *args,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)


def _cluster(
    tmp_path: Path, mnist_dir: Path, *args: str, ports: list[int] | None = None
) -> tuple[list[int], list[subprocess.Popen]]:
    ports = ports or _free_ports(2)
    procs = [_start(ports, r, tmp_path / "run", mnist_dir, tmp_path / f"scratch{r}", *args) for r in range(2)]
    return ports, procs


def _finish(proc: subprocess.Popen, timeout: float = 400) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def _docs(results: list[tuple[int, str, str]]) -> list[dict]:
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    return [json.loads(out) for _, out, _ in results]


def test_a_refusing_chief_stops_every_worker_before_the_cluster_forms(
    tmp_path: Path, mnist_dir: Path
) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("the user's")
    ports, procs = _cluster(tmp_path, mnist_dir, "--limit", "500", "--epochs", "1", "--connect-timeout", "60")
    results = [_finish(p, timeout=120) for p in procs]
    assert all(rc == 1 for rc, _, _ in results), [err[-1500:] for _, _, err in results]
    chief, other = (_errors(err) for _, _, err in results)
    assert len(chief) == 1 and "already exists" in chief[0], chief
    assert len(other) == 1 and f"worker 0 at localhost:{ports[0]} cannot start" in other[0], other
    assert "already exists" in other[0]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["notes.txt"]


def test_a_lone_worker_gives_up_naming_the_missing_one(tmp_path: Path, mnist_dir: Path) -> None:
    ports = _free_ports(2)
    args = ("--limit", "500", "--connect-timeout", "2")
    proc = _start(ports, 0, tmp_path / "run", mnist_dir, tmp_path / "scratch", *args)
    rc, _, err = _finish(proc, timeout=120)
    assert rc == 1
    assert len(_errors(err)) == 1 and "Traceback" not in err, err[-1500:]
    assert f"waiting for worker 1 at localhost:{ports[1]}" in err and "--connect-timeout" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_two_workers_train_one_epoch(tmp_path: Path, mnist_dir: Path) -> None:
    ports, procs = _cluster(tmp_path, mnist_dir, "--limit", "3000", "--epochs", "1", "--batch-size", "32")
    docs = _docs([_finish(p) for p in procs])
    for rank, doc in enumerate(docs):
        assert doc["strategy"] == {
            "name": "multiworker",
            "replicas": 2,
            "workers": 2,
            "per_worker_batch": doc["config"]["batch_size"],
            "global_batch": 2 * doc["config"]["batch_size"],
            "chief": f"worker 0 at localhost:{ports[0]}",
            "this_worker": f"worker {rank} at localhost:{ports[rank]}",
        }
        assert doc["config"]["workers"] == 2
    assert docs[0]["history"] == docs[1]["history"]  # lockstep: the same cluster-wide metrics
    assert set(docs[0]["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert docs[0]["test_accuracy"] == docs[1]["test_accuracy"] > 0.75  # the same weights on both
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir()) == ["model.keras", "train.json"]  # the chief's
    assert json.loads((run / "train.json").read_text())["test_accuracy"] == docs[0]["test_accuracy"]
    assert not any((tmp_path / "scratch1").iterdir())  # the other worker wrote nothing anywhere


@pytest.mark.slow
def test_two_workers_reach_95_percent_on_10k_images(tmp_path: Path, mnist_dir: Path) -> None:
    # Global batch 32 (16 per worker), as one process with --batch-size 32 trains.
    _, procs = _cluster(tmp_path, mnist_dir, "--limit", "10000", "--epochs", "1", "--batch-size", "16")
    doc = _docs([_finish(p) for p in procs])[0]
    assert doc["dataset"]["test_samples"] == 10_000 and doc["strategy"]["global_batch"] == 32
    assert doc["test_accuracy"] >= 0.95, doc["test_accuracy"]
    assert (tmp_path / "run" / "model.keras").is_file()


def _wait_for(path: Path, procs: list[subprocess.Popen], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.2)


@pytest.mark.slow
def test_killed_worker_ends_the_other_with_one_line(tmp_path: Path, mnist_dir: Path) -> None:
    timeout = 60
    ports, procs = _cluster(
        tmp_path, mnist_dir, "--limit", "3000", "--epochs", "4", "--connect-timeout", str(timeout)
    )
    _wait_for(tmp_path / "run" / "checkpoint-state.json", procs)
    time.sleep(1.0)  # mid-epoch 2
    procs[1].kill()
    t0 = time.monotonic()
    rc, _, err = _finish(procs[0], timeout=timeout + 30)
    assert time.monotonic() - t0 < timeout
    assert rc == 1, err[-2000:]
    lines = _errors(err)
    assert len(lines) == 1, err[-2000:]
    assert f"worker 1 at localhost:{ports[1]} stopped answering" in lines[0], lines
    assert "restart every worker with --resume" in lines[0]


@pytest.mark.slow
def test_killed_cluster_resumes_in_lockstep_from_the_same_checkpoint(tmp_path: Path, mnist_dir: Path) -> None:
    args = ("--limit", "3000", "--epochs", "3", "--batch-size", "32")
    _, procs = _cluster(tmp_path, mnist_dir, *args)
    state_path = tmp_path / "run" / "checkpoint-state.json"
    _wait_for(state_path, procs)
    for p in procs:
        p.kill()
        p.communicate()
    kept = json.loads(state_path.read_text())["epoch"]
    assert 1 <= kept < 3
    _, procs = _cluster(tmp_path, mnist_dir, *args, "--resume")
    docs = _docs([_finish(p) for p in procs])
    assert [d["resumed_from_epoch"] for d in docs] == [kept, kept]  # the non-chief learnt it from the chief
    assert docs[0]["epochs_completed"] == 3 and len(docs[0]["history"]["loss"]) == 3
    assert docs[0]["history"] == docs[1]["history"]
    assert docs[0]["test_accuracy"] == docs[1]["test_accuracy"] > 0.85
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["model.keras", "train.json"]


@pytest.mark.slow
def test_sigterm_ends_a_worker_stuck_waiting_on_a_frozen_peer(tmp_path: Path, mnist_dir: Path) -> None:
    _, procs = _cluster(tmp_path, mnist_dir, "--limit", "3000", "--epochs", "4", "--connect-timeout", "300")
    _wait_for(tmp_path / "run" / "checkpoint-state.json", procs)
    procs[1].send_signal(signal.SIGSTOP)  # the chief now blocks inside a collective op (C++)
    try:
        time.sleep(1.0)
        procs[0].send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc, _, err = _finish(procs[0], timeout=60)
        # The watchdog's grace for Python to answer is 10 s; TensorFlow may notice the frozen peer first,
        # and then Python's own handler ends the run (130) instead of the watchdog (128 + SIGTERM).
        assert time.monotonic() - t0 < 25
        assert rc in (130, 128 + signal.SIGTERM), err[-1500:]
        lines = _errors(err)
        assert len(lines) == 1 and ("SIGTERM" in lines[0] or "interrupted" in lines[0]), err[-2000:]
        assert "--resume" in lines[0]
    finally:
        procs[1].kill()
        procs[1].communicate()


@pytest.mark.slow
def test_sigterm_ends_a_worker_waiting_for_its_peers_with_130(tmp_path: Path, mnist_dir: Path) -> None:
    """Issue 21: before it met its peers a worker had no handler and died from the signal (-15)."""
    ports = _free_ports(2)
    proc = _start(ports, 0, tmp_path / "run", mnist_dir, tmp_path / "scratch0", "--connect-timeout", "300")
    deadline = time.monotonic() + 180
    while True:  # worker 0 listens for its peers once it waits for them
        assert proc.poll() is None and time.monotonic() < deadline, "worker 0 never started waiting"
        with contextlib.suppress(OSError), socket.create_connection(("localhost", ports[0]), timeout=1):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    t0 = time.monotonic()
    rc, _, err = _finish(proc, timeout=60)
    assert time.monotonic() - t0 < 10
    assert rc == 130, err[-1500:]
    assert len(_errors(err)) == 1, err[-2000:]
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
