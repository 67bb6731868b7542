"""The `llm_simulator` fixture: the project's OpenAI-compatible simulator on a free loopback port.

Tests point a client at `llm_simulator.url` and steer it with `llm_simulator.configure(...)`
(latency, rate limit, faults); it is stopped after each test so settings never leak.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from simulator import SimulatorServer


@pytest.fixture(name="llm_simulator")
def llm_simulator_fixture() -> Iterator[SimulatorServer]:
    server = SimulatorServer(port=0).start()
    try:
        yield server
    finally:
        server.stop()


# Either import makes the fixture `llm_simulator` available to a test module. Importing
# `llm_simulator_fixture` keeps ruff from reporting F811 where a test takes `llm_simulator`.
llm_simulator = llm_simulator_fixture
