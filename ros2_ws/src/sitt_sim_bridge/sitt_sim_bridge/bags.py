"""rosbag2 bags of rclpy messages, written and read with ``rosbags`` (pure Python).

``rosbag2_py`` and ``ros2 bag`` cannot be installed here, so recording and reading go
through ``rosbags``. The bags are ordinary rosbag2 directories (``metadata.yaml`` plus one
MCAP or sqlite3 file) that ``ros2 bag info`` / ``ros2 bag play`` read on a ROS 2 install.
rclpy's ``serialize_message`` gives the same CDR bytes (with the encapsulation header)
that rosbag2 stores, so messages go in and out without conversion.

    with BagWriter(Path("run/bag")) as bag:          # MCAP by default
        bag.add_topic("/camera/image_raw", "sensor_msgs/msg/Image")
        bag.write("/camera/image_raw", image, stamp_ns)

    with BagReader(Path("run/bag")) as bag:
        for item in bag.messages():                  # log-time order
            item.topic, item.type_name, item.log_ns, item.msg

Every problem a user can cause (wrong path, unknown type, broken metadata) raises
``BagError`` with a one-line reason.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer, WriterError
from rosbags.typesys import Stores, get_typestore

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
# rosbag2 metadata version 9 is what Kilted writes (rclpy here is Kilted); Jazzy: 8.
BAG_VERSION = 9
# Message definitions (MCAP schemas, type hashes) of the ROS 2 distribution rclpy is from.
TYPESTORE = Stores.ROS2_KILTED
FLUSH_BYTES = 1 << 20  # rosbags closes an MCAP chunk at 1 MiB; flush() closes it early

_typestore = None


class BagError(RuntimeError):
    """A bag that cannot be written or read; the message says why, in one line."""


def typestore() -> Any:
    """The shared rosbags type store (built once: it parses every message definition)."""
    global _typestore
    if _typestore is None:
        _typestore = get_typestore(TYPESTORE)
    return _typestore


def normalise_type(type_name: str) -> str:
    """``sensor_msgs/Image`` or ``sensor_msgs/msg/Image`` -> ``sensor_msgs/msg/Image``."""
    parts = type_name.strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagError(f"message type {type_name!r} is not of the form pkg/msg/Type")
    return "/".join(parts)


def type_name_of(msg: Any) -> str:
    """``pkg/msg/Type`` of an rclpy message object (its module is ``pkg.msg._type``)."""
    cls = type(msg)
    pkg, kind = cls.__module__.split(".")[:2]
    return f"{pkg}/{kind}/{cls.__name__}"


def message_class(type_name: str) -> type:
    """The rclpy class of ``pkg/msg/Type``; BagError when it is not installed."""
    pkg, kind, name = normalise_type(type_name).split("/")
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError):
        raise BagError(f"message type {type_name} is not installed for rclpy "
                       f"(pip install ros-{pkg.replace('_', '-')})") from None


def stamp_ns(msg: Any) -> int | None:
    """``header.stamp`` in nanoseconds, or None when the message has no header."""
    header = getattr(msg, "header", None)
    if header is None:
        return None
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


# --------------------------------------------------------------------------- writing
class BagWriter:
    """Writes rclpy messages to a new rosbag2 directory.

    Data reaches the file as it comes (MCAP: in chunks of about 1 MiB; sqlite3: at close;
    both at ``flush()``). ``metadata.yaml`` is written at ``close()``, which the context
    manager also calls when the block raises, so whatever was recorded stays readable.
    Thread-safe (a recorder's callbacks may run on several executor threads)."""

    def __init__(self, path: str | Path, storage: str = "mcap",
                 version: int = BAG_VERSION) -> None:
        self.path = Path(path)
        if storage not in STORAGES:
            raise BagError(f"storage {storage!r} not supported (use one of "
                           f"{', '.join(STORAGES)})")
        if self.path.exists():
            raise BagError(f"{self.path} exists already; a bag is never overwritten")
        self.storage = storage
        self._lock = threading.Lock()
        self._connections: dict[str, Connection] = {}
        self._classes: dict[str, type] = {}
        self.counts: dict[str, int] = {}
        try:
            self._writer = Writer(self.path, version=version, storage_plugin=STORAGES[storage])
            self._writer.open()
        except (WriterError, OSError) as err:
            raise BagError(f"cannot create bag {self.path}: {err}") from None
        self._open = True

    @property
    def topics(self) -> dict[str, str]:
        """{topic: type name} of the topics added so far."""
        return {t: c.msgtype for t, c in self._connections.items()}

    def add_topic(self, name: str, type_name: str) -> None:
        """Register a topic with the message definition of its type (the MCAP schema and
        the type hash come from the ROS 2 type store). Adding the same topic and type
        again does nothing; another type on the same topic is an error."""
        type_name = normalise_type(type_name)
        with self._lock:
            self._check_open()
            known = self._connections.get(name)
            if known is not None:
                if known.msgtype != type_name:
                    raise BagError(f"topic {name} is already recorded as {known.msgtype}, "
                                   f"not {type_name}")
                return
            if type_name not in typestore().fielddefs:
                raise BagError(f"message type {type_name} is unknown to the ROS 2 "
                               f"{TYPESTORE.name} type store; cannot record topic {name}")
            cls = message_class(type_name)
            try:
                conn = self._writer.add_connection(name, type_name, typestore=typestore())
            except WriterError as err:
                raise BagError(f"cannot add topic {name}: {err}") from None
            self._connections[name] = conn
            self._classes[name] = cls
            self.counts[name] = 0

    def write(self, topic: str, msg: Any, stamp_ns: int) -> None:
        """Append ``msg`` to ``topic`` at log time ``stamp_ns`` (ns). A topic that was not
        added is added with the message's own type."""
        if topic not in self._connections:
            self.add_topic(topic, type_name_of(msg))
        if type(msg) is not self._classes[topic]:
            raise BagError(f"topic {topic} records {self._connections[topic].msgtype}, "
                           f"got {type_name_of(msg)}")
        self.write_raw(topic, serialize_message(msg), stamp_ns)

    def write_raw(self, topic: str, data: bytes, stamp_ns: int) -> None:
        """Append already-serialised CDR bytes (what a generic subscription receives)."""
        with self._lock:
            self._check_open()
            conn = self._connections.get(topic)
            if conn is None:
                raise BagError(f"topic {topic} was not added (call add_topic first)")
            self._writer.write(conn, int(stamp_ns), data)
            self.counts[topic] += 1

    def flush(self) -> None:
        """Push buffered messages to the file now (rosbags' MCAP writer keeps up to 1 MiB in
        memory, its sqlite3 writer one transaction until close)."""
        with self._lock:
            self._check_open()
            storage = self._writer.storage
            chunk = getattr(storage, "chunk", None)  # MCAP: close the pending chunk
            if chunk is not None and chunk.bio.tell():
                storage.close_chunk()
            bio = getattr(storage, "bio", None)
            if bio is not None:
                bio.flush()
            conn = getattr(storage, "conn", None)  # sqlite3: commit the transaction
            if conn is not None:
                conn.commit()

    def close(self) -> None:
        """Finish the storage file and write ``metadata.yaml``; closing twice is fine."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            try:
                self._writer.close()
            except (WriterError, OSError) as err:
                raise BagError(f"cannot finish bag {self.path}: {err}") from None

    def _check_open(self) -> None:
        if not self._open:
            raise BagError(f"bag {self.path} is closed")

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()  # also after an error: keep what was recorded


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class BagMessage:
    topic: str
    type_name: str
    log_ns: int  # the time the recorder logged it (rosbag2 "timestamp")
    msg: Any  # rclpy message object


class BagReader:
    """Opens a rosbag2 directory (MCAP or sqlite3, as its ``metadata.yaml`` says) and
    yields rclpy messages in log-time order (rosbag2 keeps each file in time order and
    split files follow each other). Topics whose type rclpy does not have are listed in
    ``skipped`` with the reason instead of failing the whole bag."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"{self.path}: no such file or directory")
        if not self.path.is_dir():
            raise BagError(f"{self.path} is not a rosbag2 directory (expected a directory "
                           f"with metadata.yaml)")
        if not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{self.path} is not a rosbag2 directory: no metadata.yaml")
        self._reader = Reader(self.path)
        try:
            self._reader.open()
        except (ReaderError, OSError, ValueError, KeyError, TypeError) as err:
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise BagError(f"{self.path}: cannot read the bag: {text}") from None
        self.storage = _storage_identifier(self.path)  # "mcap" / "sqlite3", for reports
        self.topics: dict[str, str] = {}  # topic -> type name, readable topics only
        self.counts: dict[str, int] = {}
        self.skipped: dict[str, str] = {}  # topic -> why it cannot be read
        self._classes: dict[str, type] = {}
        for conn in self._reader.connections:
            self.counts[conn.topic] = self.counts.get(conn.topic, 0) + conn.msgcount
            known = self.topics.get(conn.topic)
            if known is not None and known != conn.msgtype:
                self.skipped[conn.topic] = (f"recorded with two types ({known}, "
                                            f"{conn.msgtype})")
                continue
            try:
                self._classes[conn.msgtype] = message_class(conn.msgtype)
                self.topics[conn.topic] = conn.msgtype
            except BagError as err:
                self.skipped[conn.topic] = str(err)
        for topic in self.skipped:
            self.topics.pop(topic, None)

    @property
    def start_ns(self) -> int:
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        return int(self._reader.end_time)

    @property
    def message_count(self) -> int:
        return int(self._reader.message_count)

    def require(self, topics: Collection[str]) -> None:
        """BagError naming the first missing or unreadable topic."""
        for topic in topics:
            if topic in self.skipped:
                raise BagError(f"{self.path}: topic {topic} cannot be read: "
                               f"{self.skipped[topic]}")
            if topic not in self.topics:
                have = ", ".join(sorted(self.topics) + sorted(self.skipped)) or "none"
                raise BagError(f"{self.path}: no topic {topic} in the bag (it has: {have})")

    def raw(self, topics: Collection[str] | None = None) -> Iterator[tuple[str, str, int,
                                                                          bytes]]:
        """``(topic, type name, log_ns, CDR bytes)`` of the readable topics (or ``topics``)."""
        wanted = set(self.topics) if topics is None else set(topics) & set(self.topics)
        conns = [c for c in self._reader.connections if c.topic in wanted]
        if not conns:
            return
        try:
            for conn, log_ns, data in self._reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, log_ns, data
        except (ReaderError, OSError, ValueError) as err:
            raise BagError(f"{self.path}: cannot read the messages: {err}") from None

    def messages(self, topics: Collection[str] | None = None) -> Iterator[BagMessage]:
        """Deserialised messages in log-time order."""
        for topic, type_name, log_ns, data in self.raw(topics):
            try:
                msg = deserialize_message(data, self._classes[type_name])
            except Exception as err:  # rclpy raises several types for corrupt CDR
                raise BagError(f"{self.path}: a {type_name} message on {topic} at "
                               f"{log_ns} cannot be deserialised ({err})") from None
            yield BagMessage(topic, type_name, log_ns, msg)

    def close(self) -> None:
        if self._reader.is_open:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _storage_identifier(path: Path) -> str:
    for name in ("mcap", "sqlite3"):
        suffix = ".mcap" if name == "mcap" else ".db3"
        if any(p.suffix == suffix for p in path.iterdir()):
            return name
    return "unknown"


def read_bag(path: str | Path, topics: Collection[str] | None = None
             ) -> Iterator[tuple[str, str, int, Any]]:
    """``(topic, type name, log_ns, rclpy message)`` of every readable message of a bag."""
    with BagReader(path) as bag:
        for m in bag.messages(topics):
            yield m.topic, m.type_name, m.log_ns, m.msg
