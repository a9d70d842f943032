"""aiokafka's warm-up noise is held back while a replica starts; real errors pass."""

import logging

from ordersaga.runtime.startup_logs import StartupNoise


def record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_connection_errors_are_held_back_only_while_waiting_for_kafka() -> None:
    noise = StartupNoise(warm_up=30, clock=Clock())
    refused = record("aiokafka.client", logging.ERROR, 'Unable connect to "127.0.0.1:9092"')
    assert noise.filter(refused)
    noise.waiting_for_kafka = True
    assert not noise.filter(refused)


def test_coordinator_warm_up_is_held_back_during_the_warm_up_only() -> None:
    clock = Clock()
    noise = StartupNoise(warm_up=30, clock=clock)
    coordinator = record(
        "aiokafka.consumer.group_coordinator",
        logging.ERROR,
        "Group Coordinator Request failed: [Error 15] CoordinatorNotAvailableError",
    )
    assert not noise.filter(coordinator)
    clock.now = 31
    assert noise.filter(coordinator)


def test_other_errors_pass() -> None:
    noise = StartupNoise(warm_up=30, clock=Clock())
    noise.waiting_for_kafka = True
    assert noise.filter(record("aiokafka.producer", logging.ERROR, "Unexpected error in sender"))
    assert noise.filter(record("ordersaga.relay", logging.ERROR, "Unable connect to x"))
