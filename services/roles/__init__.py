"""The five worker roles: what each does with its messages.

`ROLES` is the one list of them: each role's name, the class that implements it, its count
in the default local pool and its `mapreduce up` flag. The entry point, the supervisor and
the command line derive what they need from it. A role's module is imported only when a
worker of that role is built, so that the command line and the supervisor, which read this
table, load no role.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

if TYPE_CHECKING:
    from mapreduce_kafka.services.runtime.process import Runtime

# What a worker process runs: `python -m WORKER_MODULE ROLE`. The supervisor starts it, a
# worker re-executes it to restart in place, the local cluster recognizes it by it.
WORKER_MODULE = "mapreduce_kafka.services.worker"


class RoleWorker(Protocol):
    def __init__(self, rt: Runtime) -> None: ...

    def run(self) -> None: ...


@dataclass(frozen=True)
class Role:
    name: str
    module: str  # the module that implements the role
    class_name: str  # its class there, built with the worker's Runtime
    default_count: int  # workers of this role `mapreduce up` starts unless told otherwise
    cli_flag: str  # the `mapreduce up` option that sets the count (`--mappers 4`)

    def worker_class(self) -> type[RoleWorker]:
        return cast("type[RoleWorker]",
                    getattr(importlib.import_module(self.module), self.class_name))


# Default counts sized for 2 cores: the mappers do the CPU work; one process of each other
# role keeps up.
ROLES = (
    Role("dispatcher", "mapreduce_kafka.services.roles.dispatcher", "Dispatcher", 1,
         "dispatchers"),
    Role("mapper", "mapreduce_kafka.services.roles.mapper", "Mapper", 2, "mappers"),
    Role("shuffler", "mapreduce_kafka.services.roles.shuffler", "Shuffler", 2, "shufflers"),
    Role("reducer", "mapreduce_kafka.services.roles.reducer", "Reducer", 2, "reducers"),
    Role("sink", "mapreduce_kafka.services.roles.sink", "Sink", 1, "sinks"),
)
ROLE_NAMES = tuple(role.name for role in ROLES)
_BY_NAME = {role.name: role for role in ROLES}


def role_named(name: str) -> Role:
    """The role called `name`; ValueError for a name that is not a role."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown role {name!r}") from None


def build(name: str, rt: Runtime) -> RoleWorker:
    """A worker of the named role, on `rt`."""
    return role_named(name).worker_class()(rt)
