"""Reading ordersaga's metrics endpoints: fetch, parse, and pick samples.

A scrape is a flat list of samples (name, labels, value) as Prometheus' text format
gives them, parsed with prometheus-client's own parser. :func:`total` sums the samples
of a name whose labels match, which is all the figures of ``ordersaga top`` and the
tests need.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Scrape:
    """One endpoint's samples, or why it could not be read."""

    url: str
    samples: tuple[Sample, ...] = ()
    error: str | None = None
    at: float = 0.0
    """When it was read (monotonic seconds)."""
    by_name: dict[str, list[Sample]] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for sample in self.samples:
            self.by_name.setdefault(sample.name, []).append(sample)

    def select(self, name: str, **labels: str) -> list[Sample]:
        """The samples called ``name`` whose labels include ``labels``."""
        return [
            s
            for s in self.by_name.get(name, ())
            if all(s.labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels``."""
        return sum(s.value for s in self.select(name, **labels))


def parse(url: str, text: str, at: float = 0.0) -> Scrape:
    """The samples of ``text`` (Prometheus' text format) read from ``url``; a ``ValueError``
    naming the endpoint if it is not that format."""
    try:
        samples = tuple(
            Sample(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text)
            for s in family.samples
        )
    except ValueError as error:
        raise ValueError(f"{url} did not answer Prometheus' text format: {error}") from None
    return Scrape(url, samples, at=at)


async def scrape(http: httpx.AsyncClient, url: str, at: float) -> Scrape:
    """Read ``url``; a scrape with its ``error`` set when it does not answer, or not 200."""
    try:
        response = await http.get(url)
    except httpx.HTTPError as error:
        return Scrape(url, error=f"{type(error).__name__}: {error}".rstrip(": "), at=at)
    if response.status_code != 200:
        return Scrape(url, error=f"answered {response.status_code}", at=at)
    try:
        return parse(url, response.text, at)
    except ValueError as error:
        return Scrape(url, error=str(error), at=at)


def merged(scrapes: Iterable[Scrape]) -> Scrape:
    """The samples of every readable scrape, as one (labels tell their origins apart)."""
    readable = [s for s in scrapes if s.error is None]
    at = max((s.at for s in readable), default=0.0)
    return Scrape(
        ", ".join(s.url for s in readable),
        tuple(x for s in readable for x in s.samples),
        at=at,
    )
