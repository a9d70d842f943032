"""Every version of a saga that a release runs, and the one new sagas start on.

A saga finishes on the definition it started on, so a changed definition is a new
version, registered beside the earlier ones: sagas in flight go on with theirs, new
ones start on :attr:`SagaRegistry.current`. An earlier version is dropped only once
no unfinished saga needs it; a process whose database still holds unfinished sagas of
a version it does not have refuses to start (:class:`MissingSagaVersions`).
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ordersaga.contracts.messages import WireMessage
from ordersaga.saga.definition import SagaDefinition


class UnknownSagaVersion(LookupError):
    """A saga of a version this release does not have.

    Not poison: a message for such a saga is for a replica of a release that has the
    version (during a rolling deploy), so it is retried, never dead-lettered.
    """

    def __init__(self, name: str, version: int, have: Iterable[int]) -> None:
        known = ", ".join(str(v) for v in sorted(have))
        super().__init__(
            f"saga {name!r} version {version} is not registered here (versions {known}); "
            "a replica of a release that has it must handle it"
        )
        self.name = name
        self.version = version


class MissingSagaVersions(RuntimeError):
    """Unfinished sagas need versions this release does not have: it must not start."""

    def __init__(self, name: str, missing: Mapping[int, int], have: Iterable[int]) -> None:
        needs = "; ".join(
            f"{count} unfinished {name} saga{'s' if count != 1 else ''} of version {version}"
            for version, count in sorted(missing.items())
        )
        known = ", ".join(str(v) for v in sorted(have))
        super().__init__(
            f"refusing to start: the database holds {needs}, and this release registers "
            f"only version(s) {known} of {name}. Keep the earlier version registered "
            "(or run a release that has it) until `ordersaga sagas list` shows none of "
            "them unfinished."
        )
        self.name = name
        self.missing = dict(missing)


@dataclass(frozen=True)
class SagaRegistry:
    """The versions of one saga, by number, and the version new sagas start on."""

    versions: Mapping[int, SagaDefinition]
    current: int

    def __post_init__(self) -> None:
        names = {d.name for d in self.versions.values()}
        if len(names) != 1:
            raise ValueError(f"a registry holds versions of one saga, not of {sorted(names)}")
        for number, definition in self.versions.items():
            if number != definition.version:
                raise ValueError(f"{definition.label} registered as version {number}")
        if self.current not in self.versions:
            raise ValueError(f"the current version {self.current} is not registered")

    @classmethod
    def of(cls, *definitions: SagaDefinition, current: int | None = None) -> "SagaRegistry":
        """The registry of ``definitions``; new sagas start on ``current`` (default: the
        highest version)."""
        versions: dict[int, SagaDefinition] = {}
        for definition in definitions:
            if definition.version in versions:
                raise ValueError(f"{definition.label} is registered twice")
            versions[definition.version] = definition
        if not versions:
            raise ValueError("a registry needs at least one definition")
        return cls(versions, max(versions) if current is None else current)

    @property
    def name(self) -> str:
        return self.newest.name

    @property
    def newest(self) -> SagaDefinition:
        """The definition new sagas start on."""
        return self.versions[self.current]

    def get(self, version: int) -> SagaDefinition:
        """Version ``version``; :class:`UnknownSagaVersion` if it is not registered."""
        try:
            return self.versions[version]
        except KeyError:
            raise UnknownSagaVersion(self.name, version, self.versions) from None

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic any registered version waits on, each once."""
        ordered = (t for number in sorted(self.versions) for t in self.versions[number].topics)
        return tuple(dict.fromkeys(ordered))

    @property
    def commands(self) -> tuple[str, ...]:
        """Every topic any registered version sends a command or compensation on, each once."""
        ordered = (t for number in sorted(self.versions) for t in self.versions[number].commands)
        return tuple(dict.fromkeys(ordered))

    @property
    def reply_models(self) -> dict[str, type[WireMessage]]:
        """The models of replies on topics outside the contract, of every version."""
        models: dict[str, type[WireMessage]] = {}
        for number in sorted(self.versions):
            models.update(self.versions[number].reply_models)
        return models

    def missing(self, unfinished: Mapping[int, int]) -> dict[int, int]:
        """Of ``unfinished`` (saga counts by version), those of unregistered versions."""
        return {v: n for v, n in unfinished.items() if n and v not in self.versions}

    def check(self, unfinished: Mapping[int, int]) -> None:
        """Raise :class:`MissingSagaVersions` if an unfinished saga needs a version not here."""
        missing = self.missing(unfinished)
        if missing:
            raise MissingSagaVersions(self.name, missing, self.versions)
