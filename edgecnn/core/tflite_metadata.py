"""edgecnn's metadata inside a .tflite file: the same `edgecnn.*` keys core/metadata.py writes into ONNX
`metadata_props`, as one JSON object in a named entry of the flatbuffer's `metadata` table (the field
TFLite reserves for this; the interpreter ignores names it does not know).

Reading is a small pure-Python walk of the flatbuffer (no TensorFlow, no LiteRT, no `flatbuffers`), so
the runtime side and tests can read a .tflite anywhere. Writing re-packs the model with the schema's
object API from `ai_edge_litert` (or TensorFlow's copy of the same schema on the export side).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from edgecnn.core.errors import EdgecnnError
from edgecnn.core.input_files import check_input_file, show_path
from edgecnn.core.metadata import PREFIX, ModelMetadata

METADATA_NAME = "edgecnn"  # the entry's name in Model.metadata
FILE_IDENTIFIER = b"TFL3"
# Field slots of the tflite schema's tables (schema.fbs): Model, Metadata, Buffer.
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6
_METADATA_NAME, _METADATA_BUFFER = 0, 1
_BUFFER_DATA, _BUFFER_OFFSET, _BUFFER_SIZE = 0, 1, 2


class _Reader:
    """Bounds-checked access to a flatbuffer's tables, vectors and strings."""

    def __init__(self, buf: bytes, source: str) -> None:
        self.buf, self.source = buf, source

    def _unpack(self, fmt: str, pos: int) -> int:
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.buf):
            raise EdgecnnError(f"{self.source} is not a valid TFLite model (offset out of range)")
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def field(self, table: int, slot: int) -> int | None:
        """Absolute position of a table's field, None when absent."""
        vtable = table - self._unpack("<i", table)
        entry = 4 + 2 * slot
        if entry >= self._unpack("<H", vtable):
            return None
        offset = self._unpack("<H", vtable + entry)
        return table + offset if offset else None

    def indirect(self, pos: int) -> int:
        return pos + self._unpack("<I", pos)

    def vector(self, pos: int) -> tuple[int, int]:
        """(first element position, length) of the vector a field points to."""
        start = self.indirect(pos)
        return start + 4, self._unpack("<I", start)

    def tables(self, table: int, slot: int) -> list[int]:
        pos = self.field(table, slot)
        if pos is None:
            return []
        first, n = self.vector(pos)
        return [self.indirect(first + 4 * i) for i in range(n)]

    def bytes_at(self, start: int, n: int) -> bytes:
        if start < 0 or start + n > len(self.buf):
            raise EdgecnnError(f"{self.source} is not a valid TFLite model (data out of range)")
        return self.buf[start : start + n]

    def string(self, table: int, slot: int) -> str | None:
        pos = self.field(table, slot)
        if pos is None:
            return None
        first, n = self.vector(pos)
        return self.bytes_at(first, n).decode("utf-8", errors="replace")

    def uint(self, table: int, slot: int, fmt: str = "<I") -> int:
        pos = self.field(table, slot)
        return 0 if pos is None else self._unpack(fmt, pos)

    def buffer_data(self, table: int) -> bytes:
        offset = self.uint(table, _BUFFER_OFFSET, "<Q")
        if offset > 1:  # large models keep buffer data after the flatbuffer, addressed from the file start
            return self.bytes_at(offset, self.uint(table, _BUFFER_SIZE, "<Q"))
        pos = self.field(table, _BUFFER_DATA)
        if pos is None:
            return b""
        first, n = self.vector(pos)
        return self.bytes_at(first, n)


def _model_bytes(source: str | Path | bytes) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source), "the model"
    check_input_file(source, "model file")
    try:
        return Path(source).read_bytes(), show_path(source)
    except OSError as exc:
        raise EdgecnnError(f"cannot read {show_path(source)}: {exc.strerror or exc}") from None


def read_entries(source: str | Path | bytes) -> dict[str, bytes]:
    """Every named entry of the model's metadata table (name -> its buffer's bytes)."""
    buf, name = _model_bytes(source)
    if len(buf) < 8 or buf[4:8] != FILE_IDENTIFIER:
        raise EdgecnnError(f"{name} is not a TFLite model (no {FILE_IDENTIFIER.decode()} identifier)")
    r = _Reader(buf, name)
    root = r.indirect(0)
    buffers = r.tables(root, _MODEL_BUFFERS)
    entries: dict[str, bytes] = {}
    for table in r.tables(root, _MODEL_METADATA):
        index = r.uint(table, _METADATA_BUFFER)
        key = r.string(table, _METADATA_NAME)
        if key is not None and index < len(buffers):
            entries[key] = r.buffer_data(buffers[index])
    return entries


def read_tflite_props(source: str | Path | bytes) -> dict[str, str]:
    """edgecnn's `edgecnn.*` properties of a .tflite ({} when it was not exported by edgecnn)."""
    raw = read_entries(source).get(METADATA_NAME)
    if raw is None:
        return {}
    try:
        props = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        props = None
    ok = isinstance(props, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in props.items())
    if not ok:
        where = "the .tflite model" if isinstance(source, (bytes, bytearray)) else show_path(source)
        raise EdgecnnError(f"{where}: its edgecnn metadata is malformed; re-export the model")
    return {k: v for k, v in props.items() if k.startswith(PREFIX)}


def read_tflite_metadata(source: str | Path | bytes) -> ModelMetadata | None:
    """The ModelMetadata of a .tflite; None when it was not exported by edgecnn."""
    return ModelMetadata.from_props(read_tflite_props(source))


def _schema() -> Any:
    """The tflite schema's generated Python module: LiteRT's, else TensorFlow's copy (export side)."""
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        try:
            from tensorflow.lite.python import schema_py_generated  # type: ignore[no-redef]
        except ImportError:
            raise EdgecnnError(
                "writing .tflite metadata needs ai-edge-litert or TensorFlow: pip install 'edgecnn[litert]'"
            ) from None
    return schema_py_generated


def write_tflite_metadata(model: bytes, meta: ModelMetadata | dict[str, str]) -> bytes:
    """The model with edgecnn's metadata entry set (an earlier edgecnn entry is replaced in place)."""
    props = meta.to_props() if isinstance(meta, ModelMetadata) else dict(meta)
    payload = json.dumps(props, sort_keys=True).encode("utf-8")
    schema = _schema()
    obj = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    obj.buffers = list(obj.buffers or [])
    obj.metadata = list(obj.metadata or [])
    ours = [m for m in obj.metadata if _name(m.name) == METADATA_NAME]
    buffer = schema.BufferT()
    buffer.data = list(payload)
    if ours:
        obj.buffers[ours[0].buffer] = buffer
    else:
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(obj.buffers)
        obj.buffers.append(buffer)
        obj.metadata.append(entry)
    import flatbuffers

    builder = flatbuffers.Builder(len(model) + len(payload) + 1024)
    builder.Finish(obj.Pack(builder), file_identifier=FILE_IDENTIFIER)
    return bytes(builder.Output())


def _name(value: Any) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value
