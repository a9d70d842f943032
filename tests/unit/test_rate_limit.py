"""The per-client token bucket that limits order placement."""

from ordersaga.services.order.rate_limit import MAX_CLIENTS, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_then_the_wait_it_names() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)

    burst = [limiter.take("1") for _ in range(4)]
    clock.now += 0.5  # one token back at 2 a second
    after_half_a_second = [limiter.take("1"), limiter.take("1")]

    assert burst == [0, 0, 0, 1]
    assert after_half_a_second == [0, 1]


def test_a_slow_rate_asks_for_a_longer_wait() -> None:
    limiter = RateLimiter(rate=0.1, burst=1, clock=Clock())

    assert [limiter.take("1"), limiter.take("1")] == [0, 10]


def test_clients_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())

    assert [limiter.take("1"), limiter.take("1"), limiter.take("2")] == [0, 1, 0]


def test_rate_zero_lets_everything_through() -> None:
    limiter = RateLimiter(rate=0, burst=1, clock=Clock())

    assert {limiter.take("1") for _ in range(100)} == {0}


def test_idle_clients_are_forgotten_when_there_are_many() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock)
    for n in range(MAX_CLIENTS):
        limiter.take(str(n))
    clock.now += 5  # every bucket has refilled

    limiter.take("newcomer")

    assert limiter.take("0") == 0  # forgotten, so full again
    assert len(limiter._buckets) <= 2
