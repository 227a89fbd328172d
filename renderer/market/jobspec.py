"""A render job: one planned step, described so that a stranger can run it and check it.

A requester turns a :class:`~renderer.planner.Step` whose inputs are known into a
:class:`JobSpec` (:func:`job_for_step`) and gossips it as a ``job`` record. A volunteer reads it
back with :meth:`JobSpec.from_record`, which trusts nothing: the effect must be a built-in one
whose record CID matches, every parameter must be one the effect declares and already be in
canonical form, the output format must be the one the planner would choose, and the cache id
recomputed from (effect, config, input ids) must equal the one the job names. A job that
passes describes exactly one step, so its receipt can be cached and reused by anyone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dag import CID, cid_to_str
from provenance import parse_timestamp, utc_timestamp

from ..effects import UnknownEffect, effect_by_name, effect_cid
from ..errors import RenderError
from ..params import ParamError, coerce_param
from ..planner import DELIVERY_FORMAT, Step, cache_id_of, output_format
from .policy import JobFacts

__all__ = ["JobCaps", "JobError", "JobInput", "JobSpec", "job_for_step"]


class JobError(RenderError, ValueError):
    """A job record does not describe a step this node can run or check."""


@dataclass(frozen=True)
class JobCaps:
    cpu_seconds: int = 3600
    memory_bytes: int = 3 << 30
    timeout_s: int = 3600

    def to_record(self) -> dict[str, int]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "memory_bytes": self.memory_bytes,
            "timeout_s": self.timeout_s,
        }


@dataclass(frozen=True)
class JobInput:
    cid: CID  # the content to fetch
    id: CID  # its identity in cache ids (the content CID, or the cache id of the step making it)
    kind: str  # media | beats
    bytes: int
    duration_ms: int | None = None  # an upstream step's logical duration (a source's length)

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cid": self.cid, "id": self.id, "kind": self.kind}
        out["bytes"] = self.bytes
        if self.duration_ms is not None:
            out["duration_ms"] = self.duration_ms
        return out

    @property
    def duration(self) -> float | None:
        return None if self.duration_ms is None else self.duration_ms / 1000


@dataclass(frozen=True)
class JobSpec:
    job_id: str
    step: str
    cache_id: CID
    operation: str
    effect: CID
    params: Mapping[str, Any]
    format: str
    inputs: tuple[JobInput, ...]
    replicas: int
    deadline: float  # unix seconds
    caps: JobCaps
    requester: str = ""  # the signer's did (empty until signed)

    def payload(self) -> dict[str, Any]:
        """The fields of the ``job`` record (the envelope and signature come from p2p)."""
        return {
            "job": self.job_id,
            "step": self.step[:128],
            "cache_id": self.cache_id,
            "operation": self.operation,
            "effect": self.effect,
            "params": dict(self.params),
            "format": self.format,
            "inputs": [i.to_record() for i in self.inputs],
            "replicas": self.replicas,
            "deadline": utc_timestamp_at(self.deadline),
            "caps": self.caps.to_record(),
        }

    def facts(self) -> JobFacts:
        seconds = max((i.duration or 0.0 for i in self.inputs), default=0.0)
        return JobFacts(self.operation, sum(i.bytes for i in self.inputs), seconds)

    def to_step(self) -> Step:
        effect = effect_by_name(self.operation)
        return Step(
            id=self.step,
            node=self.step,
            effect=effect,
            params=dict(self.params),
            inputs=tuple(i.cid for i in self.inputs),
            cache_id=self.cache_id,
            final=self.format == DELIVERY_FORMAT,
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> JobSpec:
        """Check a (schema-valid, signed) ``job`` record; JobError says what is wrong."""
        name = record["operation"]
        try:
            effect = effect_by_name(name)
        except UnknownEffect:
            raise JobError(f"job asks for unknown effect {name!r}") from None
        if effect.runs != "graph":
            raise JobError(f"effect {name!r} runs locally, not as a job")
        if record["effect"] != effect_cid(name):
            raise JobError(f"job's effect record is not this node's {name!r} release")
        params = dict(record["params"])
        unknown = sorted(set(params) - set(effect.params))
        if unknown:
            raise JobError(f"effect {name!r} has no parameter {unknown[0]!r}")
        for key, spec in effect.params.items():
            if key not in params:
                raise JobError(f"parameter {key!r} is missing (jobs carry effective params)")
            try:
                canonical = coerce_param(spec, params[key])
            except ParamError as exc:
                raise JobError(f"parameter {key!r}: {exc}") from None
            if canonical != params[key] or type(canonical) is not type(params[key]):
                raise JobError(f"parameter {key!r} is not in canonical form")
        inputs = tuple(
            JobInput(i["cid"], i["id"], i["kind"], i["bytes"], i.get("duration_ms"))
            for i in record["inputs"]
        )
        arity = len(effect.inputs)
        if (effect.variadic and len(inputs) < arity) or (
            not effect.variadic and len(inputs) != arity
        ):
            raise JobError(f"effect {name!r} takes {arity} inputs, the job gives {len(inputs)}")
        kinds = [kind for _, kind in effect.inputs]
        while len(kinds) < len(inputs):
            kinds.append(kinds[-1])  # a variadic effect repeats its last input
        for position, (item, kind) in enumerate(zip(inputs, kinds, strict=True)):
            if item.kind != kind:
                raise JobError(f"input {position} is {item.kind}, {name!r} reads {kind} there")
            if item.id.codec.name != "dag-cbor" and item.id != item.cid:
                raise JobError(f"input {position}: a source's id must be its content CID")
        final = record["format"] == DELIVERY_FORMAT
        if output_format(effect, final) != record["format"]:
            raise JobError(f"effect {name!r} cannot write {record['format']!r}")
        expected = cache_id_of(effect, params, record["format"], [i.id for i in inputs])
        if expected != record["cache_id"]:
            raise JobError(
                f"cache id {cid_to_str(record['cache_id'])} does not match the step it describes"
            )
        caps = record["caps"]
        return cls(
            job_id=record["job"],
            step=record["step"],
            cache_id=record["cache_id"],
            operation=name,
            effect=record["effect"],
            params=params,
            format=record["format"],
            inputs=inputs,
            replicas=record["replicas"],
            deadline=parse_timestamp(record["deadline"]).timestamp(),
            caps=JobCaps(caps["cpu_seconds"], caps["memory_bytes"], caps["timeout_s"]),
            requester=record.get("signer", ""),
        )


def utc_timestamp_at(unix: float) -> str:
    from datetime import UTC, datetime

    return utc_timestamp(datetime.fromtimestamp(math.ceil(unix), UTC))


def job_for_step(
    step: Step,
    inputs: Sequence[JobInput],
    *,
    job_id: str,
    replicas: int,
    deadline: float,
    caps: JobCaps | None = None,
) -> JobSpec:
    """The job for ``step`` once its inputs exist (``inputs`` in the step's input order)."""
    if step.effect.runs != "graph":
        raise JobError(f"step {step.id!r} ({step.effect.name}) is not a filter-graph step")
    if len(inputs) != len(step.inputs):
        raise JobError(f"step {step.id!r} has {len(step.inputs)} inputs, got {len(inputs)}")
    return JobSpec(
        job_id=job_id,
        step=step.id,
        cache_id=step.cache_id,
        operation=step.effect.name,
        effect=effect_cid(step.effect.name),
        params=dict(step.params),
        format=step.format,
        inputs=tuple(inputs),
        replicas=replicas,
        deadline=deadline,
        caps=caps or JobCaps(),
    )
