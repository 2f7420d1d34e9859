# SPDX-License-Identifier: Apache-2.0
"""Fixtures: one real Apache Kafka broker per test session, run by tests/kafka/kafka.sh.

Its state directory is $KAFKA_STATE_DIR when set (an instance already running there is
reused and left running), otherwise a fresh temporary one that is stopped and removed
at the end. A broker that cannot start fails the run; nothing is skipped."""
import os
import time
import uuid
from pathlib import Path

import pytest

import harness


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory, pytestconfig):
    given = os.environ.get("KAFKA_STATE_DIR")
    state = given or str(tmp_path_factory.mktemp("kafka") / "broker")
    env = {"KAFKA_STATE_DIR": state}
    was_running = given is not None and harness.kafka("status", env=env, check=False).returncode == 0
    t0 = time.monotonic()
    r = harness.kafka("start", env=env, check=False)
    took = time.monotonic() - t0
    if r.returncode != 0:
        pytest.fail(f"the Kafka broker did not start (tests/kafka/kafka.sh start exited "
                    f"{r.returncode}):\n{r.stdout}\n{r.stderr}", pytrace=False)
    bootstrap = r.stdout.strip().splitlines()[-1]
    version = harness.kafka("version", env=env).stdout.strip()
    pytestconfig.pluginmanager.get_plugin("terminalreporter").write_line(
        f"Kafka {version} broker at {bootstrap}: "
        f"{'already running' if was_running else f'started in {took:.1f} s'} ({state})")
    broker = {"bootstrap": bootstrap, "env": env, "state": Path(state)}
    try:
        yield broker
    finally:
        if not was_running:
            harness.kafka("stop", env=env, check=False)


@pytest.fixture
def bootstrap(kafka_broker):
    return kafka_broker["bootstrap"]


@pytest.fixture
def topic():
    return f"rt-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def ringtail_bin():
    path = harness.ringtail_bin()
    assert os.access(path, os.X_OK), f"{path} is not built (RINGTAIL_BIN)"
    return path


@pytest.fixture(autouse=True)
def reap_ringtail():
    """No ringtail outlives its test, even one that failed before stopping it."""
    yield
    harness.Ringtail.reap_all()
