"""Checkpoint files as data: stage records <-> Arrow IPC bytes, never pickle (no Beam import).

Input: a list of records of one type (``encode``), or the bytes of a file that
claims to hold some (``decode``). Output: Arrow IPC file bytes, or the records.

Why not pickle: checkpoints live under ``OUT/_work`` and ``OUT`` may be a shared
bucket; unpickling a file from there runs whatever code its writer chose. Here a
file can only ever yield instances of the record types in ``RECORD_TYPES`` (a
closed whitelist), built field by field from type-checked values.

Layout: one record type per file, named in the schema metadata
(``wit.record``); one column per dataclass field, derived from the type hints,
so a field added to a record (pipeline/records.py) is carried without a change
here. ``str`` -> string, ``int`` -> int64, ``float`` -> float64, ``bool`` ->
bool, ``bytes`` -> large_binary, a nested record -> struct, ``Optional[X]`` ->
nullable, a ``tuple`` field (``AltPair.extra``, ``ScoredImage.safety``) -> a list
of ``(name, value)`` structs with one typed slot per scalar kind
(str/int/float/bool; all empty = None).

Refused on read (``CheckpointError``, the caller logs and ignores the file):
bytes that are not an Arrow IPC file, an unknown or missing record tag, a
schema other than the one this code derives for the tag (also: a file written
before a record type changed), a value of the wrong type, a malformed buffer.
Refused on write (``CheckpointError`` too): a value Arrow cannot hold (a lone
surrogate in a string, an int beyond 64 bits); the caller saves the others.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any

import pyarrow as pa

from pipeline.records import AltPair, BlobRef, FetchedImage, Rejection, ResizedImage, ScoredImage

FORMAT_VERSION = b"1"
_TAG, _VERSION = b"wit.record", b"wit.checkpoint"

# The closed whitelist: the only classes a checkpoint file can produce, top level or nested.
RECORD_TYPES: dict[str, type] = {cls.__name__: cls for cls in
                                 (AltPair, BlobRef, FetchedImage, ResizedImage, ScoredImage, Rejection)}
_SCALARS = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_(), bytes: pa.large_binary()}
# One slot per kind of pair value; bool before int (a bool is an int to isinstance).
_SLOTS = (("b", bool), ("i", int), ("f", float), ("s", str))
_PAIR = pa.struct([pa.field("name", pa.string(), nullable=False)]
                  + [pa.field(slot, _SCALARS[kind]) for slot, kind in _SLOTS])


class CheckpointError(ValueError):
    """A file (or a record) that is not a checkpoint this code wrote."""


def _optional(hint) -> tuple[Any, bool]:
    """(the type inside Optional[...], whether it was optional)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Union and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return hint, False


@functools.lru_cache(maxsize=None)
def _hints(cls: type) -> tuple:
    """((field name, type, optional), ...) of a whitelisted record class, in field order."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, *_optional(hints[f.name])) for f in dataclasses.fields(cls))


def _arrow_type(hint) -> pa.DataType:
    if hint in _SCALARS:
        return _SCALARS[hint]
    if hint is tuple:
        return pa.list_(pa.field("item", _PAIR, nullable=False))
    if hint in RECORD_TYPES.values():
        return pa.struct([pa.field(name, _arrow_type(sub), nullable=opt) for name, sub, opt in _hints(hint)])
    raise TypeError(f"no checkpoint column type for {hint!r}")


@functools.lru_cache(maxsize=None)
def schema_for(cls: type) -> pa.Schema:
    """The exact schema a file of ``cls`` records has (metadata included)."""
    columns = [pa.field(name, _arrow_type(sub), nullable=opt) for name, sub, opt in _hints(cls)]
    return pa.schema(columns, metadata={_TAG: cls.__name__.encode(), _VERSION: FORMAT_VERSION})


# -- write ------------------------------------------------------------------

def _pair_row(item) -> dict:
    if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
        raise CheckpointError(f"not a (name, value) pair: {item!r:.80}")
    name, value = item
    row = {"name": name, **{slot: None for slot, _kind in _SLOTS}}
    if value is not None:
        slot = next((slot for slot, kind in _SLOTS if isinstance(value, kind)), None)
        if slot is None:
            raise CheckpointError(f"pair value of type {type(value).__name__} for {name!r}")
        row[slot] = value
    return row


def _to_row(record) -> dict:
    row = {}
    for name, hint, _opt in _hints(type(record)):
        value = getattr(record, name)
        if hint is tuple:
            value = [_pair_row(item) for item in value]
        elif hint in RECORD_TYPES.values() and value is not None:
            value = _to_row(value)
        row[name] = value
    return row


def encode(records: list) -> bytes:
    """An Arrow IPC file holding ``records`` (all of one whitelisted type)."""
    if not records:
        raise CheckpointError("no records")
    cls = type(records[0])
    if RECORD_TYPES.get(cls.__name__) is not cls or any(type(r) is not cls for r in records):
        raise CheckpointError(f"records must be of one whitelisted type, got {cls.__name__}")
    schema = schema_for(cls)
    rows = [_to_row(r) for r in records]
    for i, row in enumerate(rows):  # the reader's checks, so that nothing written is refused on read
        _build(cls, row, f"record {i}")
    try:
        table = pa.Table.from_pylist(rows, schema=schema)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, schema) as writer:
            writer.write_table(table)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:  # UnicodeError is a ValueError
        raise CheckpointError(f"{type(exc).__name__}: {exc}"[:300]) from None
    return sink.getvalue().to_pybytes()


# -- read -------------------------------------------------------------------

def _check(value, hint, optional: bool, where: str):
    """``value`` (from Arrow) as a field of type ``hint``, or CheckpointError."""
    if value is None:
        if optional:
            return None
        raise CheckpointError(f"{where}: missing value")
    if hint is tuple:
        return tuple(_pair_value(item, where) for item in value)
    if hint in RECORD_TYPES.values():
        return _build(hint, value, where)
    # type() not isinstance(): a bool is not an int, an int is not a float here
    if type(value) is not hint:
        raise CheckpointError(f"{where}: {type(value).__name__} where {hint.__name__} belongs")
    return value


def _pair_value(item, where: str) -> tuple:
    filled = [(slot, item[slot]) for slot, _kind in _SLOTS if item.get(slot) is not None]
    if len(filled) > 1 or not isinstance(item.get("name"), str):
        raise CheckpointError(f"{where}: malformed (name, value) pair")
    return item["name"], (filled[0][1] if filled else None)


def _build(cls: type, row, where: str):
    if not isinstance(row, dict):
        raise CheckpointError(f"{where}: not a {cls.__name__}")
    values = {name: _check(row.get(name), hint, opt, f"{where}.{name}") for name, hint, opt in _hints(cls)}
    return cls(**values)


def record_type(schema: pa.Schema) -> type:
    """The whitelisted class a file's schema names, if the schema is exactly that class's."""
    tag = (schema.metadata or {}).get(_TAG, b"").decode("ascii", errors="replace")
    cls = RECORD_TYPES.get(tag)
    if cls is None:
        raise CheckpointError(f"record tag {tag[:40]!r} is not a checkpoint record type")
    if not schema.equals(schema_for(cls), check_metadata=True):
        raise CheckpointError(f"schema of {tag} records differs from this version's")
    return cls


def decode(data: bytes) -> list:
    """The records of a checkpoint file; CheckpointError for anything else."""
    try:
        reader = pa.ipc.open_file(pa.py_buffer(data))
        cls = record_type(reader.schema)
        table = reader.read_all()
        table.validate(full=True)  # offsets and UTF-8 checked before a value is read
        rows = table.to_pylist()
    except (pa.ArrowException, OSError, ValueError, TypeError, UnicodeError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"not a checkpoint file: {type(exc).__name__}: {exc}"[:300]) from None
    return [_build(cls, row, f"row {i}") for i, row in enumerate(rows)]

