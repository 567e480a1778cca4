"""``wit export``: a curated output, or one of our model configs, in another tool's format.

``wit export datacomp OUT --output subset.npy``
    Input: ``OUT/shards/*.parquet`` (the ``uid`` column: a URL list's uid, e.g. DataComp's pool
    parquet, carried through ``wit curate --url-list``). Output: DataComp's subset file, the
    file its ``resharder.py --subset-file`` reads: a numpy ``.npy`` of dtype
    ``np.dtype("u8,u8")``, one element per uid, the uid's 32 hex digits split into the high
    and the low 64 bits (``int(uid[:16], 16), int(uid[16:], 16)``), sorted (the resharder
    looks uids up by binary search), each uid once. This is the layout of DataComp's
    ``baselines/`` code (``np.array(list(zip(upper, lower)), "u8,u8")``, then ``np.sort``),
    as we know it; DataComp itself is not installed here to check against.
    Samples without a uid (the list had none, or a value that is not 32 hex digits) are an
    error (``ExportError``, nothing written) unless ``skip_missing``: then they are left out
    and counted. A uid column holding anything else than 32 hex digits or null is an error:
    those are not our shards.

``wit export open-clip-config DEST [--model configs/models/wit-tiny.json]``
    Input: one of our open_clip model JSONs. Output: ``DEST/open_clip_config.json``
    (``{"model_cfg": ...}``), which stock open_clip finds as ``--model local-dir:DEST``
    (``python -m open_clip_train.main --model local-dir:DEST ...``, ``open_clip.create_model``,
    ``get_tokenizer``); or, when DEST ends in ``.json``, the plain model JSON (the format of
    open_clip's ``model_configs/*.json``: placed there, ``--model <its stem>`` finds it;
    ``python -m trainer.interop --model-config DEST`` registers it for one run).

Paths may be local or any filesystem pyarrow opens (``gs://``). Files are written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import uuid
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from pipeline import shard_format

UID_DTYPE = np.dtype("u8,u8")  # DataComp's subset dtype: fields f0 (high 64 bits), f1 (low 64 bits)
_UID_PATTERN = r"^[0-9a-fA-F]{32}$"
OPEN_CLIP_CONFIG = "open_clip_config.json"  # the file open_clip reads for --model local-dir:DIR


class ExportError(ValueError):
    """The output cannot be exported as asked (nothing was written)."""


@dataclass(frozen=True)
class DatacompExport:
    path: str
    kept: int  # samples in the shards
    written: int  # distinct uids in the file
    missing: int  # samples without a uid (left out with skip_missing)
    duplicates: int  # samples whose uid another kept sample has too


# ---- uids <-> DataComp's u8,u8 ------------------------------------------------------------------

def _check_uids(arr: pa.Array) -> None:
    """ValueError unless every value is 32 hex digits: the hex is read as one run below, so a
    31- and a 33-digit uid side by side would silently make two wrong ones."""
    ok = pc.match_substring_regex(arr, _UID_PATTERN).fill_null(False)  # in C, not a Python loop
    if not pc.all(ok).as_py():
        bad = arr.filter(pc.invert(ok))[0].as_py()
        raise ValueError(f"not a 32-hex-digit uid: {bad!r}")


def uid_array(uids: Sequence[str] | pa.Array) -> np.ndarray:
    """32-hex-digit uids -> ``u8,u8`` (high, low), in the given order (ValueError on a bad one)."""
    arr = uids if isinstance(uids, (pa.Array, pa.ChunkedArray)) else pa.array(list(uids), pa.string())
    if len(arr) == 0:
        return np.empty(0, dtype=UID_DTYPE)
    _check_uids(arr)
    # The hex of all uids as one run of bytes, read as big-endian 64-bit halves: hex digit
    # order is big-endian, so the high half comes first, as int(uid[:16], 16).
    halves = np.frombuffer(bytes.fromhex("".join(arr.to_pylist())), dtype=">u8").reshape(-1, 2)
    out = np.empty(len(halves), dtype=UID_DTYPE)
    out["f0"], out["f1"] = halves[:, 0], halves[:, 1]
    return out


def hex_uids(array: np.ndarray) -> list[str]:
    """``u8,u8`` elements -> their 32-hex-digit uids (lower case)."""
    return [f"{int(hi):016x}{int(lo):016x}" for hi, lo in array.tolist()]


def subset_array(uids: Sequence[str] | pa.Array) -> np.ndarray:
    """The subset file's array: each uid once, sorted as 128-bit numbers (f0, then f1)."""
    return np.unique(uid_array(uids))  # sorts structured elements field by field


# ---- reading the shards, writing the file -------------------------------------------------------

def _fs(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(path)


def _shard_tables(output_dir: str) -> list[pa.Table]:
    fs, root = _fs(output_dir)
    shards = f"{root.rstrip('/')}/{shard_format.SHARDS_DIR}"
    if fs.get_file_info(shards).type != pafs.FileType.Directory:
        raise ExportError(f"{output_dir} is not a wit curate output (no {shard_format.SHARDS_DIR}/ folder)")
    paths = sorted(i.path for i in fs.get_file_info(pafs.FileSelector(shards)) if i.path.endswith(".parquet"))
    tables = []
    for path in paths:
        if "uid" not in pq.read_schema(path, filesystem=fs).names:
            raise ExportError(f"{path} has no uid column: curated by a wit-curator without uid support; "
                              "curate the URL list again")
        tables.append(pq.read_table(path, columns=["key", "uid"], filesystem=fs))
    return tables


def _write(dest: str, payload: bytes) -> None:
    fs, path = _fs(dest)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:12]}"
    with fs.open_output_stream(tmp) as fh:
        fh.write(payload)
    fs.move(tmp, path)


def _refuse_missing(keys: pa.ChunkedArray, uids: pa.Array) -> None:
    """ExportError when a kept sample has no uid: a subset silently short of samples would
    train a different dataset than the one curated."""
    if uids.null_count:
        example = keys.filter(pc.is_null(uids))[0].as_py()
        raise ExportError(f"{uids.null_count} of {len(uids)} kept samples have no uid (e.g. key {example}): their "
                          "list rows had no uid, or one that is not 32 hex digits (curate logged a warning per "
                          "file); --skip-missing writes the others")


def export_datacomp(output_dir: str, dest: str, skip_missing: bool = False) -> DatacompExport:
    """The kept samples' uids as DataComp's subset file at ``dest`` (see the module docstring)."""
    tables = _shard_tables(output_dir)
    table = pa.concat_tables(tables) if tables else pa.table({"key": pa.array([], pa.string()),
                                                               "uid": pa.array([], pa.string())})
    uids = pc.if_else(pc.equal(table.column("uid"), ""), None, table.column("uid")).combine_chunks()
    missing = uids.null_count
    if not skip_missing:
        _refuse_missing(table.column("key"), uids)
    present = uids.drop_null()
    try:
        array = subset_array(present)
    except ValueError as exc:
        raise ExportError(f"{output_dir}: a uid in the shards is not DataComp's format: {exc}") from None
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    _write(dest, buf.getvalue())
    return DatacompExport(dest, table.num_rows, len(array), missing, len(present) - len(array))


def read_subset(path: str) -> np.ndarray:
    """A subset file back (checks the dtype and the order, as a reader relying on them would)."""
    fs, local = _fs(path)
    with fs.open_input_file(local) as fh:
        array = np.load(io.BytesIO(fh.read()), allow_pickle=False)
    if array.dtype != UID_DTYPE:
        raise ExportError(f"{path}: dtype {array.dtype}, expected {UID_DTYPE}")
    hi, lo = array["f0"], array["f1"]  # numpy has no < for structured elements: compare as 128-bit
    if not bool(np.all((hi[:-1] < hi[1:]) | ((hi[:-1] == hi[1:]) & (lo[:-1] < lo[1:])))):
        raise ExportError(f"{path}: uids are not sorted and distinct")
    return array


# ---- open_clip model config ---------------------------------------------------------------------

def _model_json(model: str) -> dict:
    """The config of one of our model JSONs: a path, or a name under configs/models/."""
    from trainer.model import read_model_config  # torch comes with it: only this command pays

    given = model if model.endswith(".json") else os.path.join("configs", "models", f"{model}.json")
    try:
        return read_model_config(given)[1]
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def export_open_clip_config(model: str, dest: str) -> tuple[str, str]:
    """Write ``model``'s config where open_clip finds it; returns (file written, ``--model`` value)."""
    try:
        cfg = _model_json(model)
    except FileNotFoundError as exc:
        raise ExportError(str(exc)) from None
    if dest.endswith(".json"):
        payload, path, model_arg = cfg, dest, os.path.basename(dest)[: -len(".json")]
    else:
        fs, local = _fs(dest)
        fs.create_dir(local, recursive=True)
        payload, path = {"model_cfg": cfg}, f"{dest.rstrip('/')}/{OPEN_CLIP_CONFIG}"
        model_arg = f"local-dir:{dest if '://' in dest else os.path.abspath(dest)}"
    _write(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return path, model_arg


# ---- the CLI --------------------------------------------------------------------------------------

EXPORT_DESCRIPTION = """Write a curated output, or one of our model configs, in another tool's format.

  DataComp subset:  wit curate --url-list 'pool/*.parquet' --caption-col text --config datacomp_basic.yaml --output OUT
                    wit export datacomp OUT --output subset.npy      (then DataComp's resharder.py --subset-file)
  open_clip:        wit export open-clip-config wit-tiny-oc --model configs/models/wit-tiny.json
                    python -m open_clip_train.main --model local-dir:$PWD/wit-tiny-oc --dataset-type webdataset --train-data ..."""


def add_export_parser(sub, formatter: type) -> None:
    """``wit export`` and its two subcommands (``formatter``: the CLI's, defaults shown)."""
    p = sub.add_parser("export", help="a curated output (or a model config) in another tool's format",
                       description=EXPORT_DESCRIPTION,
                       formatter_class=formatter)
    which = p.add_subparsers(dest="export_cmd", required=True)
    dc = which.add_parser("datacomp", help="the kept samples' uids as DataComp's subset file (.npy, u8,u8, sorted)",
                          formatter_class=formatter)
    dc.add_argument("output_dir", metavar="OUT", help="a wit curate output directory of a list with a uid column")
    dc.add_argument("--output", required=True, help="the subset file to write, e.g. subset.npy (local or gs://)")
    dc.add_argument("--skip-missing", action="store_true",
                    help="leave out kept samples without a uid (counted) instead of failing")
    oc = which.add_parser("open-clip-config", help="one of our model JSONs where open_clip(_train) finds it",
                          formatter_class=formatter)
    oc.add_argument("dest", metavar="DEST", help="a directory (for --model local-dir:DEST), or a .json path "
                    "(the plain model JSON, for open_clip's model_configs/)")
    oc.add_argument("--model", default="configs/models/wit-tiny.json",
                    help="our model JSON, or its name under configs/models/")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    try:
        if args.export_cmd == "datacomp":
            done = export_datacomp(args.output_dir, args.output, skip_missing=args.skip_missing)
            print(f"{done.path}: {done.written} uids of {done.kept} kept samples"
                  f" ({done.missing} without a uid left out, {done.duplicates} repeated uids written once)")
            return 0
        path, model_arg = export_open_clip_config(args.model, args.dest)
        print(f"{path} written; train with: python -m open_clip_train.main --model {model_arg} --dataset-type webdataset "
              "--train-data 'OUT/shards/{00000..NNNNN}.tar' ...")
        return 0
    except ExportError as exc:
        print(f"wit: error: {exc}", file=sys.stderr)
        return 2
