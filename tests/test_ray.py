"""batch --ray on real Ray clusters: a local one (ray.init), and two nodes started with `ray start` on this machine.

Every cluster is shut down by its fixture; every wait is bounded. Outputs are compared byte for byte with a run
without Ray (same seed, same torch threads: 1 here, as conftest sets).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from dreamreel.cli import main

import ray  # make test installs it (the test extra)
import psutil  # noqa: E402 - bundled with Ray (ray/thirdparty_files, on sys.path once ray is imported)

NAMES = ["chelsea.png", "coffee.png", "realshort.mp4"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def no_token_auth():
    """Clusters bound to 127.0.0.1 for a test: no auth token (Ray 2.60 would otherwise write one to ~/.ray)."""
    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    yield
    if before is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = before


def inputs(data_dir):
    return [str(data_dir / n) for n in NAMES]


def manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


def mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


@pytest.fixture(scope="module")
def reference(fast_flags, tmp_path_factory, data_dir):
    """The same batch without Ray."""
    import torch

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref")
    assert main(["batch", *inputs(data_dir), "--out-dir", str(out), *fast_flags]) == 0
    return out


def assert_same_outputs(out, ref):
    for name in NAMES:
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())  # nothing twice, no leftovers
    m, r = manifest(out), manifest(ref)
    assert (m["done"], m["failed"], m["pending"]) == (3, 0, 0)
    assert m["options"] == r["options"]
    for it, rt in zip(m["items"], r["items"]):
        assert set(it) == set(rt) | {"node"}
        assert {k: it[k] for k in ("input", "kind", "status", "reason")} == {k: rt[k] for k in ("input", "kind", "status", "reason")}
        assert Path(it["output"]).name == Path(rt["output"]).name and it["seconds"] > 0
        side = json.loads((out / Path(it["output"]).with_suffix(".json").name).read_text())
        assert side["input"] == it["input"] and side["output"] == it["output"] and side["node"] == it["node"]


# ---------------------------------------------------------------- a local cluster


@pytest.fixture()
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


def test_local_cluster_gives_the_same_outputs_and_manifest_and_resume_does_nothing(fast_flags, local_cluster, reference,
                                                                                    data_dir, tmp_path):
    out = tmp_path / "b"
    t0 = time.perf_counter()
    assert main(["batch", *inputs(data_dir), "--out-dir", str(out), *fast_flags, "--ray"]) == 0
    assert time.perf_counter() - t0 < 120
    assert_same_outputs(out, reference)
    assert all(i["node"].endswith(":" + ray.get_runtime_context().get_node_id()[:8]) for i in manifest(out)["items"])
    before = mtimes(out)
    assert main(["batch", *inputs(data_dir), "--out-dir", str(out), *fast_flags, "--ray", "--resume"]) == 0
    assert mtimes(out) == before  # nothing redone, nothing rewritten


def test_a_failing_item_is_reported_and_the_rest_publish(fast_flags, local_cluster, data_dir, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "b"
    assert main(["batch", str(bad), str(data_dir / "coffee.png"), "--out-dir", str(out), *fast_flags, "--ray"]) == 1
    by = {Path(i["input"]).name: i for i in manifest(out)["items"]}
    assert by["bad.png"]["status"] == "failed" and "cannot read" in by["bad.png"]["reason"]
    assert by["coffee.png"]["status"] == "done" and (out / "coffee.png").is_file() and not (out / "bad.png").exists()


def test_a_task_that_raises_on_a_ray_worker_comes_back_as_the_executors_failure(local_cluster):
    """What batch and video --segments test their results against: a task whose work raised on Ray."""
    from dreamreel.distributed import connect
    from dreamreel.executors import Failure, OnRay

    got = {}
    # builtins travel to the workers by name: setup len(()) -> 0, then work setattr(0, meta, None) raises TypeError
    OnRay(connect(), cpus=1).run([({"segment": 0}, None)], len, (), setattr, lambda i, res: got.setdefault(i, res))
    assert list(got) == [0] and isinstance(got[0], Failure), got
    assert got[0].reason.startswith("TypeError: attribute name must be string")


@pytest.mark.parametrize("extra, words", [
    (["--ray", "--jobs", "2"], "--jobs and --ray do not mix"),
    (["--ray", "--gpus-per-item", "x"], "bad value 'x' for --gpus-per-item"),
    (["--ray", "--cpus-per-item", "1.5"], "bad value '1.5' for --cpus-per-item"),
    (["--ray=127.0.0.1:1"], "cannot connect to the Ray cluster at '127.0.0.1:1'"),  # nothing listens on port 1
])
def test_bad_ray_arguments_are_one_line_and_exit_2(fast_flags, extra, words, data_dir, tmp_path, capsys, monkeypatch):
    out = tmp_path / "b"
    assert main(["batch", str(data_dir / "coffee.png"), "--out-dir", str(out), *fast_flags, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
    assert not out.exists()


def test_ray_worker_flags_without_ray_are_one_line_and_exit_2(fast_flags, data_dir, tmp_path, capsys):
    out = tmp_path / "b"
    argv = ["batch", str(data_dir / "coffee.png"), "--out-dir", str(out), *fast_flags, "--cpus-per-item", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--cpus-per-item needs --ray" in err[0]
    assert not out.exists()


def test_ray_not_installed_is_one_line_naming_the_extra(fast_flags, data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without the package gives: ImportError
    assert main(["batch", str(data_dir / "coffee.png"), "--out-dir", str(tmp_path / "b"), *fast_flags, "--ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'dreamreel[ray]'" in err[0]


# ---------------------------------------------------------------- two nodes with `ray start`


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-c", "from ray.scripts.scripts import main; main()", *args],
                          env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a second node, one CPU each, on this machine (other ports, a private temp dir)."""
    tmp = tempfile.mkdtemp(prefix="rt")  # short: Ray's socket paths live under it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    try:
        head = ray_cli("start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--temp-dir={tmp}",
                       "--include-dashboard=false", *common, env=env)
        assert head.returncode == 0, head.stderr[-2000:]
        node = ray_cli("start", f"--address={address}", "--node-ip-address=127.0.0.1", f"--temp-dir={tmp}",
                       f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
                       f"--runtime-env-agent-port={free_port()}", *common, env=env)
        assert node.returncode == 0, node.stderr[-2000:]
        deadline = time.time() + 60
        while True:
            ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            alive = [n for n in ray.nodes() if n["Alive"]]
            ray.shutdown()
            if len(alive) == 2:
                break
            assert time.time() < deadline, "the second node did not join"
            time.sleep(1)
        yield address, env
    finally:
        stop_processes_of(tmp)  # not `ray stop`: that would stop every Ray cluster on the machine
        shutil.rmtree(tmp, ignore_errors=True)


def stop_processes_of(tmp: str) -> None:
    """Terminate the processes whose command line names ``tmp`` (the nodes' daemons) and their children."""
    procs = {}
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.pid != os.getpid() and tmp in " ".join(p.info["cmdline"] or []):
                procs[p.pid] = p
                procs.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.Error:
            continue
    for p in procs.values():
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(list(procs.values()), timeout=10)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass


def busy_workers():
    """Ray worker processes of this session running an item (the actor method shows in the process title)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("ray::_Worker.run"):
            found.append(p)
    return found


def test_two_nodes_a_worker_killed_mid_item_is_retried_and_each_output_published_once(fast_flags, two_nodes, reference,
                                                                                         data_dir, tmp_path):
    address, _ = two_nodes
    killed = []

    def killer():
        deadline = time.time() + 90
        while time.time() < deadline and not killed:
            for p in busy_workers():
                try:
                    p.kill()  # SIGKILL: the worker dies mid-item, as a lost machine would
                    killed.append(p.pid)
                except psutil.NoSuchProcess:
                    continue
                break
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    out = tmp_path / "b"
    assert main(["batch", *inputs(data_dir), "--out-dir", str(out), *fast_flags, f"--ray={address}"]) == 0
    thread.join(timeout=5)
    assert len(killed) == 1  # one worker died mid-item, and Ray ran its item again
    assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
    assert_same_outputs(out, reference)
    nodes = {i["node"] for i in manifest(out)["items"]}
    assert all(n.count(":") == 1 for n in nodes)


def test_driver_ctrl_c_leaves_a_manifest_that_resumes(fast_flags, two_nodes, reference, data_dir, tmp_path):
    address, env = two_nodes
    clip2 = tmp_path / "in" / "second.mp4"
    clip2.parent.mkdir()
    shutil.copy(data_dir / "realshort.mp4", clip2)
    out = tmp_path / "b"
    args = ["batch", *inputs(data_dir), str(clip2), "--out-dir", str(out), *fast_flags, f"--ray={address}"]
    proc = subprocess.Popen([sys.executable, "-c", "import sys, torch; torch.set_num_threads(1); "
                             "from dreamreel.cli import main; sys.exit(main(sys.argv[1:]))", *args],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while True:  # Ctrl-C once the first item is published
            try:
                if manifest(out)["done"] >= 1:
                    break
            except (OSError, ValueError):
                pass
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "continue with --resume" in err
    m = manifest(out)
    assert m["done"] + m["pending"] == 4 and m["failed"] == 0 and 1 <= m["done"] < 4
    for it in m["items"]:  # the manifest tells the truth about disk
        assert Path(it["output"]).is_file() == (it["status"] == "done")
    finished = {it["output"]: Path(it["output"]).stat().st_mtime_ns for it in m["items"] if it["status"] == "done"}
    assert not [p for p in out.iterdir() if ".part" in p.name]

    assert main(args + ["--resume"]) == 0
    m = manifest(out)
    assert m["done"] == 4
    for path, t in finished.items():
        assert Path(path).stat().st_mtime_ns == t  # not redone
    for name in NAMES:
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    assert (out / "second.mp4").read_bytes() == (reference / "realshort.mp4").read_bytes()
