"""The SQL schema of the archive, identical in SQLite and PostgreSQL.

Times are integers, ns since the epoch (UTC). ``(stream, epoch, seq)``
identifies a message: ``epoch`` is the publisher's session, ``seq`` the
per-stream sequence number within it.

``channels``
    ``id``, ``stream`` (``kind/source/channel``, unique), ``kind``, ``units``.
``samples``
    scalar samples of ``data`` streams: ``channel_id``, ``t``, ``value``,
    ``q`` (quality flags), ``epoch``, ``seq``, ``idx`` (row within the
    message; SQLite stores a NaN as NULL, read back as NaN). Primary key
    ``(channel_id, t, epoch, seq, idx)``: the per-channel time-range index
    (in SQLite the table is clustered on it); a resent message repeats its
    rows exactly, so the key also refuses it.
``sample_messages``
    one row per ``data`` message: ``channel_id``, ``epoch``, ``seq``, ``n``
    (its sample count); primary key ``(channel_id, epoch, seq)``: the unique
    message identity for deduplication (one row per message, not per sample,
    so batched polls pay for it once).
``rollups``
    samples downsampled by retention: ``channel_id``, ``t`` (bucket start),
    ``dt`` (bucket width), ``n``, ``vmin``, ``vmean``, ``vmax`` (NaNs left out;
    NULL when the bucket held only NaNs); key ``(channel_id, t)``.
``events``
    ``status``, ``alarm``, ``audit`` and ``run`` messages: ``id``,
    ``channel_id``, ``kind``, ``t``, ``t_recv``, ``epoch``, ``seq``, ``q``,
    ``units``, ``meta`` (JSON text); unique ``(channel_id, epoch, seq)``,
    indexed on ``(channel_id, t)`` and ``(kind, t)``.
``records``
    index of waveform records stored in HDF5: ``channel_id``, ``epoch``,
    ``seq``, ``t0``, ``file_id``, ``row`` (row of the stream's datasets in
    that file), ``length``, ``q``; key ``(channel_id, epoch, seq)``.
``files``
    record files: ``id``, ``path`` (relative to the logger's storage
    directory), ``origin`` (logger name), ``opened``, ``closed`` (NULL while
    open), ``run``.
``runs``
    ``run`` (id), ``stream``, ``t_start``, ``t_stop`` (NULL while running), ``meta`` (JSON).
``run_index``
    measurement runs (:mod:`daq.logger.run_sink`): ``run`` (key), ``procedure``,
    ``recipe``, ``sample``, ``operator``, ``status`` (running, completed, aborted,
    failed), ``t_start``, ``t_stop``, ``path`` (the run's HDF5 file, relative to the
    storage directory), ``points`` (JSON per stream), ``pauses``, ``summary`` (JSON:
    the result's numbers); indexed on ``t_start``.
``gaps``
    messages that will never arrive: ``id``, ``channel_id``, ``epoch``,
    ``seq_first``, ``seq_last`` (inclusive), ``reason`` (``superseded``: the
    publisher started a new session without resuming this one; ``grace``: not
    filled within the grace period; ``lost before spooling``: announced by a
    heartbeat, never in the sender's spool; ``spool overflow``, ``refused by the
    logger``, ``spool write failed``: given up by the sender), ``t_recorded``.
``progress``
    per ``(channel_id, epoch)``: ``pub``, ``contig`` (every seq up to it is
    stored or in ``gaps``), ``announced`` (newest seq a heartbeat named),
    ``closed`` (0/1). The logger's deduplication state lives here, so it
    survives a restart.
``publishers``
    who owns each publisher name on the reliable path: ``pub`` (key),
    ``identity`` (``key:<CURVE key>`` or ``instance:<id>``), ``epoch`` (its
    current session; -1 once it stopped cleanly and released the name), ``t_changed``. Kept so that a restarted logger still
    refuses a stranger's claim on a live daemon's name.
``meta``
    ``key``/``value`` pairs; ``schema_version``.
"""

from __future__ import annotations

SCHEMA_VERSION = 3  # 2: publishers, 3: run_index (tables are only ever added: 1 opens as 3)

_COMMON_TAIL = [
    "CREATE INDEX IF NOT EXISTS events_time ON events (channel_id, t)",
    "CREATE INDEX IF NOT EXISTS events_kind_time ON events (kind, t)",
    "CREATE INDEX IF NOT EXISTS records_time ON records (channel_id, t0)",
    "CREATE INDEX IF NOT EXISTS records_file ON records (file_id, channel_id, row)",
    "CREATE INDEX IF NOT EXISTS gaps_stream ON gaps (channel_id, epoch)",
    "CREATE INDEX IF NOT EXISTS progress_pub ON progress (pub, closed)",
    "CREATE INDEX IF NOT EXISTS run_index_time ON run_index (t_start)",
]

SQLITE_DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS channels (id INTEGER PRIMARY KEY, stream TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL, units TEXT NOT NULL DEFAULT '')",
    "CREATE TABLE IF NOT EXISTS samples (channel_id INTEGER NOT NULL, t INTEGER NOT NULL,"
    " value REAL, q INTEGER NOT NULL, epoch INTEGER NOT NULL, seq INTEGER NOT NULL,"
    " idx INTEGER NOT NULL, PRIMARY KEY (channel_id, t, epoch, seq, idx)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS sample_messages (channel_id INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL, seq INTEGER NOT NULL, n INTEGER NOT NULL,"
    " PRIMARY KEY (channel_id, epoch, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS rollups (channel_id INTEGER NOT NULL, t INTEGER NOT NULL,"
    " dt INTEGER NOT NULL, n INTEGER NOT NULL, vmin REAL, vmean REAL, vmax REAL,"
    " PRIMARY KEY (channel_id, t)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, channel_id INTEGER NOT NULL,"
    " kind TEXT NOT NULL, t INTEGER NOT NULL, t_recv INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, q INTEGER NOT NULL, units TEXT NOT NULL, meta TEXT NOT NULL,"
    " UNIQUE (channel_id, epoch, seq))",
    "CREATE TABLE IF NOT EXISTS records (channel_id INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " seq INTEGER NOT NULL, t0 INTEGER NOT NULL, file_id INTEGER NOT NULL, row INTEGER NOT NULL,"
    " length INTEGER NOT NULL, q INTEGER NOT NULL, PRIMARY KEY (channel_id, epoch, seq))",
    "CREATE TABLE IF NOT EXISTS files (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
    " origin TEXT NOT NULL, opened INTEGER NOT NULL, closed INTEGER, run TEXT)",
    "CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, stream TEXT NOT NULL,"
    " t_start INTEGER NOT NULL, t_stop INTEGER, meta TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gaps (id INTEGER PRIMARY KEY, channel_id INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL, seq_first INTEGER NOT NULL, seq_last INTEGER NOT NULL,"
    " reason TEXT NOT NULL, t_recorded INTEGER NOT NULL, UNIQUE (channel_id, epoch, seq_first))",
    "CREATE TABLE IF NOT EXISTS progress (channel_id INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " pub TEXT NOT NULL, contig INTEGER NOT NULL, announced INTEGER NOT NULL,"
    " closed INTEGER NOT NULL, PRIMARY KEY (channel_id, epoch))",
    "CREATE TABLE IF NOT EXISTS publishers (pub TEXT PRIMARY KEY, identity TEXT NOT NULL,"
    " epoch INTEGER NOT NULL, t_changed INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS run_index (run TEXT PRIMARY KEY, procedure TEXT NOT NULL,"
    " recipe TEXT NOT NULL, sample TEXT NOT NULL, operator TEXT NOT NULL, status TEXT NOT NULL,"
    " t_start INTEGER NOT NULL, t_stop INTEGER, path TEXT NOT NULL, points TEXT NOT NULL,"
    " pauses INTEGER NOT NULL, summary TEXT NOT NULL)",
    *_COMMON_TAIL,
]

POSTGRES_DDL = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS channels (id BIGSERIAL PRIMARY KEY, stream TEXT NOT NULL UNIQUE,"
    " kind TEXT NOT NULL, units TEXT NOT NULL DEFAULT '')",
    "CREATE TABLE IF NOT EXISTS samples (channel_id BIGINT NOT NULL, t BIGINT NOT NULL,"
    " value DOUBLE PRECISION NOT NULL, q BIGINT NOT NULL, epoch BIGINT NOT NULL,"
    " seq BIGINT NOT NULL, idx BIGINT NOT NULL, PRIMARY KEY (channel_id, t, epoch, seq, idx))",
    "CREATE TABLE IF NOT EXISTS sample_messages (channel_id BIGINT NOT NULL,"
    " epoch BIGINT NOT NULL, seq BIGINT NOT NULL, n BIGINT NOT NULL,"
    " PRIMARY KEY (channel_id, epoch, seq))",
    "CREATE TABLE IF NOT EXISTS rollups (channel_id BIGINT NOT NULL, t BIGINT NOT NULL,"
    " dt BIGINT NOT NULL, n BIGINT NOT NULL, vmin DOUBLE PRECISION,"
    " vmean DOUBLE PRECISION, vmax DOUBLE PRECISION, PRIMARY KEY (channel_id, t))",
    "CREATE TABLE IF NOT EXISTS events (id BIGSERIAL PRIMARY KEY, channel_id BIGINT NOT NULL,"
    " kind TEXT NOT NULL, t BIGINT NOT NULL, t_recv BIGINT NOT NULL, epoch BIGINT NOT NULL,"
    " seq BIGINT NOT NULL, q BIGINT NOT NULL, units TEXT NOT NULL, meta TEXT NOT NULL,"
    " UNIQUE (channel_id, epoch, seq))",
    "CREATE TABLE IF NOT EXISTS records (channel_id BIGINT NOT NULL, epoch BIGINT NOT NULL,"
    " seq BIGINT NOT NULL, t0 BIGINT NOT NULL, file_id BIGINT NOT NULL, row BIGINT NOT NULL,"
    " length BIGINT NOT NULL, q BIGINT NOT NULL, PRIMARY KEY (channel_id, epoch, seq))",
    "CREATE TABLE IF NOT EXISTS files (id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL UNIQUE,"
    " origin TEXT NOT NULL, opened BIGINT NOT NULL, closed BIGINT, run TEXT)",
    "CREATE TABLE IF NOT EXISTS runs (run TEXT PRIMARY KEY, stream TEXT NOT NULL,"
    " t_start BIGINT NOT NULL, t_stop BIGINT, meta TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS gaps (id BIGSERIAL PRIMARY KEY, channel_id BIGINT NOT NULL,"
    " epoch BIGINT NOT NULL, seq_first BIGINT NOT NULL, seq_last BIGINT NOT NULL,"
    " reason TEXT NOT NULL, t_recorded BIGINT NOT NULL, UNIQUE (channel_id, epoch, seq_first))",
    "CREATE TABLE IF NOT EXISTS progress (channel_id BIGINT NOT NULL, epoch BIGINT NOT NULL,"
    " pub TEXT NOT NULL, contig BIGINT NOT NULL, announced BIGINT NOT NULL,"
    " closed BIGINT NOT NULL, PRIMARY KEY (channel_id, epoch))",
    "CREATE TABLE IF NOT EXISTS publishers (pub TEXT PRIMARY KEY, identity TEXT NOT NULL,"
    " epoch BIGINT NOT NULL, t_changed BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS run_index (run TEXT PRIMARY KEY, procedure TEXT NOT NULL,"
    " recipe TEXT NOT NULL, sample TEXT NOT NULL, operator TEXT NOT NULL, status TEXT NOT NULL,"
    " t_start BIGINT NOT NULL, t_stop BIGINT, path TEXT NOT NULL, points TEXT NOT NULL,"
    " pauses BIGINT NOT NULL, summary TEXT NOT NULL)",
    *_COMMON_TAIL,
]
