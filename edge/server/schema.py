"""The host's tables, the version of their shape, and bringing an older store up to it, once, under the write
lock: two processes opening one old store at once (the workers of a host, a `edge token` beside it) migrate it
once between them.

Versions: 1 kept no `devices` table and dense matrices (refused), 2 no frames, 3 no frame tally, 4 no models,
5 no rollout waves, 6 no devices' vitals nor alerts. A store of another version than these is refused in one line.

The tables are written for SQLite; PostgreSQL gets them in its types (`for_postgres`), with a `rowid` where the
stores read rows in the order they came, and keeps its version in a table of its own. It is new at version 6:
its one older version is 6.
"""

import re
import time

import orjson

from edge.errors import EdgeError
from edge.server import vitals
from edge.server.database import lock, redacted, transaction

VERSION = 7  # PRAGMA user_version
UPGRADES = (2, 3, 4, 5, 6)  # versions opened as they are and given what this one adds
POSTGRES_UPGRADES = (6,)  # PostgreSQL's: the backend came at 6
TABLES = """
CREATE TABLE IF NOT EXISTS tokens (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, run TEXT NOT NULL, received REAL NOT NULL,
    window_start REAL NOT NULL, window_end REAL NOT NULL, evaluated INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reports_by_device ON reports (device, window_end);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, last_seen REAL NOT NULL, reports INTEGER NOT NULL, conflicts INTEGER NOT NULL,
    latest_end REAL NOT NULL, latest TEXT NOT NULL,
    field_run TEXT, field_end REAL, field_reports INTEGER, field_labels TEXT, field_cells TEXT, vitals TEXT);
CREATE TABLE IF NOT EXISTS frames (
    id TEXT PRIMARY KEY, device TEXT NOT NULL, received REAL NOT NULL, label TEXT, labelled REAL,
    discarded BOOLEAN NOT NULL DEFAULT FALSE, meta TEXT NOT NULL, jpeg BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS frames_by_device ON frames (device);
CREATE INDEX IF NOT EXISTS frames_to_drop ON frames (device, discarded DESC) WHERE label IS NULL;
CREATE TABLE IF NOT EXISTS frame_tally (
    device TEXT PRIMARY KEY, bytes INTEGER NOT NULL, dropped INTEGER NOT NULL, refused INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS model_files (
    sha256 TEXT PRIMARY KEY, bytes INTEGER NOT NULL, received REAL NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL, version INTEGER NOT NULL, release_sha256 TEXT NOT NULL, signed TEXT NOT NULL,
    key_id TEXT, pushed_by TEXT NOT NULL, pushed REAL NOT NULL, withdrawn REAL, model_sha256 TEXT,
    PRIMARY KEY (name, version), UNIQUE (name, release_sha256));
CREATE INDEX IF NOT EXISTS models_by_file ON models (model_sha256);
CREATE TABLE IF NOT EXISTS rollouts (
    id INTEGER PRIMARY KEY, model TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL,
    targets TEXT NOT NULL, canaries TEXT NOT NULL, previous TEXT NOT NULL, watch REAL NOT NULL, guard TEXT NOT NULL,
    started REAL NOT NULL, stage_started REAL NOT NULL, ended REAL, reason TEXT, started_by TEXT NOT NULL,
    waves TEXT NOT NULL DEFAULT '[]', stage INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS assignments (
    device TEXT PRIMARY KEY, model TEXT NOT NULL, version INTEGER, rollout INTEGER NOT NULL, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rollout_events (rollout INTEGER NOT NULL, at REAL NOT NULL, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (
    device TEXT NOT NULL, kind TEXT NOT NULL, since REAL NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (device, kind))
"""
# The JPEG is the last column: reading the others never walks its pages. `frame_tally` keeps what each
# device's frames hold in bytes, so a quota costs a row, not a walk over the frames.
TALLY = (
    "INSERT INTO frame_tally (device, bytes, dropped, refused) SELECT device, SUM(length(jpeg)), 0, 0 "
    "FROM frames WHERE TRUE GROUP BY device ON CONFLICT (device) DO NOTHING"
)  # for a store that kept none
# table -> {column: type} of columns added to a table an older version made
ADDED = {
    "rollouts": {"waves": "TEXT NOT NULL DEFAULT '[]'", "stage": "INTEGER NOT NULL DEFAULT 0"},  # since 6
    "devices": {"vitals": "TEXT"},  # since 7
}


def migrate(db, named: str) -> None:
    """Bring the store on `db` (a file `named` so) to VERSION, or refuse it (EdgeError) if it is of another
    version than UPGRADES, or not empty and of none."""
    if _version(db) == VERSION:
        return
    with transaction(db):  # read again under the lock: another process may have migrated it meanwhile
        version = _version(db)
        if version == VERSION:
            return
        used = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'reports'").fetchone()
        if version not in UPGRADES and (used or version):
            raise EdgeError(
                f"--db {named} was written by another version of edge (store version {version}, this "
                f"edge keeps {VERSION}): give a new file, or serve it with the edge that wrote it"
            )
        for statement in TABLES.split(";"):
            db.execute(statement)
        for table, columns in ADDED.items():
            have = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            for column, kind in columns.items():
                if column not in have:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        db.execute(TALLY)
        _fill_vitals(db)
        db.execute(f"PRAGMA user_version = {VERSION}")


def _fill_vitals(db) -> None:
    """Each device's vitals from its latest report, for a store an older version kept without them; a device
    offline already is marked so without a word (edge.server.alerts): what was so before is no news, and a host
    upgraded beside a hundred retired devices would otherwise send a hundred alerts at its first look."""
    now = time.time()
    rows = db.execute("SELECT device, last_seen, latest FROM devices WHERE vitals IS NULL").fetchall()
    for device, last_seen, latest in rows:
        kept = vitals.from_report(orjson.loads(latest))
        db.execute("UPDATE devices SET vitals = ? WHERE device = ?", (orjson.dumps(kept).decode(), device))
        if vitals.state(kept, last_seen, now) == "offline":
            db.execute(
                "INSERT INTO alerts (device, kind, since, detail) VALUES (?, 'offline', ?, ?) ON CONFLICT DO NOTHING",
                (device, now, orjson.dumps({"interval": vitals.interval(kept)}).decode()),
            )


def _version(db) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


# PostgreSQL's words for SQLite's: times to the microsecond need a double (REAL is a float4 there), counts of
# bytes past 2 GiB a bigint; a SQLite rowid alias is an identity column.
POSTGRES_TYPES = {
    "INTEGER PRIMARY KEY": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "INTEGER": "BIGINT",
    "REAL": "DOUBLE PRECISION",
    "BLOB": "BYTEA",
}
ROW_ORDERED = ("reports", "frames", "model_files", "rollout_events")  # read or dropped in the order they came


def for_postgres(tables: str) -> str:
    """The tables in PostgreSQL's types, a `rowid` identity column in those read in arrival order, indexed as
    SQLite's is (a row found by it, the oldest few read by it, is no walk over the table)."""
    words = re.compile("|".join(rf"\b{word}\b" for word in POSTGRES_TYPES))
    statements = []
    for statement in words.sub(lambda found: POSTGRES_TYPES[found[0]], tables).split(";"):
        named = re.search(r"CREATE TABLE IF NOT EXISTS (\w+) \(", statement)
        if named and named[1] in ROW_ORDERED:
            statement = statement.rstrip().removesuffix(")") + ", rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE)"
        statements.append(statement)
    return ";".join(statements)


def migrate_postgres(db, url: str) -> None:
    """Make the tables of an empty PostgreSQL database, bring one of version 6 to this VERSION, or check that it
    holds this VERSION; two hosts starting at once take turns (an advisory lock), and a migration cut short leaves
    nothing (PostgreSQL's DDL is transactional)."""
    made = db.execute("SELECT to_regclass('edge_schema') IS NOT NULL").fetchone()[0]
    if made and db.execute("SELECT version FROM edge_schema").fetchone() == (VERSION,):
        return  # current: no lock taken (every write of a host's models and rollouts opens the store)
    with transaction(db):
        lock(db, "schema")
        db.execute("CREATE TABLE IF NOT EXISTS edge_schema (version INTEGER NOT NULL)")
        held = db.execute("SELECT version FROM edge_schema").fetchone()
        if held and held[0] not in (VERSION, *POSTGRES_UPGRADES):
            raise EdgeError(
                f"--db {redacted(url)} was written by another version of edge (store version {held[0]}, this edge "
                f"keeps {VERSION}): serve it with the edge that wrote it"
            )
        if held is None:
            for statement in for_postgres(TABLES).split(";"):
                db.execute(statement)
            # Not compressed: a Range request reads its slice, not the whole file (model files hardly compress)
            db.execute("ALTER TABLE model_files ALTER COLUMN data SET STORAGE EXTERNAL")
            db.execute("INSERT INTO edge_schema (version) VALUES (?)", (VERSION,))
        elif held[0] != VERSION:
            db.execute("ALTER TABLE devices ADD COLUMN IF NOT EXISTS vitals TEXT")
            for statement in for_postgres(TABLES).split(";"):  # the tables it lacks (alerts): each IF NOT EXISTS
                db.execute(statement)
            _fill_vitals(db)
            db.execute("UPDATE edge_schema SET version = ?", (VERSION,))
