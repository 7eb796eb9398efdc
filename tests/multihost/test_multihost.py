"""Workers on separate network hosts (namespaces, tests/multihost/lab.py) and what the network
does to them: a worker host cut off past the session timeout, the broker's host unreachable
from one worker host only, slow and flaky links through toxiproxy. Every job's output must
still equal the sequential run's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mapreduce_kafka.services.client import source
from mapreduce_kafka.services.localcluster import supervisor
from mapreduce_kafka.services.status.worker_status import worker_rows
from mapreduce_kafka.services.testing import toxiproxy
from mapreduce_kafka.services.testing.corpus import make_corpus
from mapreduce_kafka.services.testing.waiting import wait_for
from mapreduce_kafka.shared.settings import Settings
from mapreduce_kafka.shared.store import Store
from tests.integration import jobs
from tests.multihost import lab as netlab

pytestmark = [pytest.mark.integration, pytest.mark.multihost]

REASON = netlab.unavailable_reason()
if REASON:
    pytest.skip(f"multi-host lab unavailable: {REASON}", allow_module_level=True)

ONE_OF_EACH = {role: 1 for role in supervisor.DEFAULT_COUNTS}
PROXY_PORT = 29092  # toxiproxy on the broker's host, in front of the PROXIED listener
PROXIED_LISTENER_PORT = 9094


class Env:
    def __init__(self, lab: netlab.Lab, cluster: Settings, proxy: toxiproxy.Toxiproxy | None,
                 workdir: Path) -> None:
        self.lab, self.cluster, self.proxy, self.workdir = lab, cluster, proxy, workdir
        self.store = Store(cluster.redis_url)

    def rows(self) -> list[dict]:
        return worker_rows(self.store.workers(), self.store.now())

    def submit(self, megabytes: float, name: str) -> source.Job:
        inputs = make_corpus(self.workdir / f"in-{name}", megabytes)
        # Through Kafka: a worker host must not need the submitter's files.
        return jobs.submit(self.cluster, jobs.WORDCOUNT, inputs, self.workdir / f"out-{name}",
                           input_mode="kafka")

    @contextmanager
    def under_way(self, megabytes: float, name: str) -> Iterator[source.Job]:
        """A job with both hosts working, its source paused halfway: a fault inside the
        block hits it mid-job however fast it would otherwise have finished."""
        wait_for(lambda: {"w1", "w2"} <= hosts_heard(self), timeout=90,
                 what="both hosts' workers")
        with jobs.paused_mid_stream(self.cluster, jobs.WORDCOUNT,
                                    make_corpus(self.workdir / f"in-{name}", megabytes),
                                    self.workdir / f"out-{name}", input_mode="kafka") as job:
            yield job

    def progress(self, job: source.Job) -> dict:
        return {**self.store.pipeline(job.pipeline_id),
                **self.store.ended_counts(job.pipeline_id)}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("lab")
    lab = netlab.Lab(root)
    proxy = None
    try:
        lab.open(("w1", "w2"))
        broker = lab.hosts["broker"].address
        try:
            toxiproxy.ensure_binary()
            have_proxy = True
        except (FileNotFoundError, RuntimeError):
            have_proxy = False
        cluster = lab.start_cluster(
            proxied_port=PROXIED_LISTENER_PORT if have_proxy else None,
            proxied_address=f"{broker}:{PROXY_PORT}" if have_proxy else None)
        w1_bootstrap = None
        if have_proxy:
            proxy = toxiproxy.Toxiproxy(lab.hosts["broker"].launcher(), broker, 8474,
                                        root / "toxiproxy.log")
            proxy.proxy("kafka", f"{broker}:{PROXY_PORT}", f"{broker}:{PROXIED_LISTENER_PORT}")
            w1_bootstrap = f"{broker}:{PROXY_PORT}"  # w1 sits behind the proxy's link
        lab.start_workers(lab.worker_settings(cluster, "w1", w1_bootstrap), "w1", ONE_OF_EACH)
        lab.start_workers(lab.worker_settings(cluster, "w2"), "w2", ONE_OF_EACH)
        yield Env(lab, cluster, proxy, root)
    finally:
        if proxy is not None:
            proxy.close()
        lab.close()


def hosts_heard(env: Env) -> set[str]:
    return {r["host"] for r in env.rows() if not r["silent"]}


def test_a_job_runs_across_hosts_and_status_shows_every_host(env: Env) -> None:
    wait_for(lambda: {"w1", "w2"} <= hosts_heard(env), timeout=60, what="both hosts' workers")
    job = env.submit(2, "plain")
    jobs.wait(env.cluster, job)
    jobs.assert_matches_sequential(job)
    rows = env.rows()
    for host in ("w1", "w2"):
        roles = {r["role"] for r in rows if r["host"] == host and not r["silent"]}
        assert roles == set(supervisor.DEFAULT_COUNTS), (host, rows)


def _hold_fault(env: Env, fault_s: float, silent_host: str | None) -> None:
    """Keep a fault on for fault_s seconds (its length is the experiment, not a wait for
    something), checking on the way what the operator would see."""
    started = time.monotonic()
    if silent_host is not None:
        wait_for(lambda: all(r["silent"] for r in env.rows() if r["host"] == silent_host),
                 timeout=fault_s + 10, what=f"{silent_host}'s workers marked silent")
    remaining = fault_s - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


def test_worker_host_cut_off_past_the_session_timeout_then_back(env: Env) -> None:
    with env.under_way(15, "cut") as job:
        env.lab.cut("w1")
        try:
            # w1 cannot reach Redis either: status marks it silent; past the session
            # timeout the groups evict w1's members and w2 takes their partitions over.
            _hold_fault(env, env.cluster.session_timeout_ms / 1000 + 4, silent_host="w1")
        finally:
            env.lab.restore("w1")
    jobs.wait(env.cluster, job, timeout=240)
    jobs.assert_matches_sequential(job)
    wait_for(lambda: "w1" in hosts_heard(env), timeout=90, what="w1's workers back")


def test_broker_host_unreachable_from_one_worker_host_only(env: Env) -> None:
    with env.under_way(15, "blackhole") as job:
        env.lab.blackhole("w2", "broker")  # w2 still reaches the others; not Kafka, not Redis
        try:
            _hold_fault(env, env.cluster.session_timeout_ms / 1000 + 4, silent_host="w2")
        finally:
            env.lab.unblackhole("w2", "broker")
    jobs.wait(env.cluster, job, timeout=240)
    jobs.assert_matches_sequential(job)
    wait_for(lambda: "w2" in hosts_heard(env), timeout=90, what="w2's workers back")


def test_slow_jittery_and_resetting_link_through_toxiproxy(env: Env) -> None:
    if env.proxy is None:
        pytest.skip("toxiproxy could not be built here (needs Go and its module proxy)")
    wait_for(lambda: {"w1", "w2"} <= hosts_heard(env), timeout=90, what="both hosts' workers")
    proxy = env.proxy
    for stream in ("downstream", "upstream"):
        proxy.add_toxic("kafka", f"latency-{stream}", "latency", stream, latency=60, jitter=40)
    proxy.add_toxic("kafka", "bandwidth", "bandwidth", "downstream", rate=4096)  # KB/s
    try:
        with env.under_way(10, "toxic") as job:
            # every connection through the proxy reset, for a moment, mid-job
            proxy.add_toxic("kafka", "reset", "reset_peer", "downstream", timeout=0)
            time.sleep(1.5)  # the length of the reset storm
            proxy.remove_toxic("kafka", "reset")
        jobs.wait(env.cluster, job, timeout=300)
        jobs.assert_matches_sequential(job)
    finally:
        for toxic in proxy.toxics("kafka"):
            proxy.remove_toxic("kafka", toxic["name"])
