-- The postgres-es event store, extended with a global order that readers can trust.
--
-- postgres-es names its columns in every INSERT, so the added columns below are filled by their
-- defaults. An identity value is taken at insert but becomes visible at commit, so readers use the
-- cursor (transaction_id, global_position) bounded by the oldest running transaction
-- (see projections::reader), never global_position alone and never time.
CREATE TABLE events
(
    aggregate_type  TEXT                         NOT NULL,
    aggregate_id    TEXT                         NOT NULL,
    sequence        BIGINT CHECK (sequence >= 0) NOT NULL,
    event_type      TEXT                         NOT NULL,
    event_version   TEXT                         NOT NULL,
    payload         JSON                         NOT NULL,
    metadata        JSON                         NOT NULL,
    global_position BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    transaction_id  XID8                         NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at     TIMESTAMPTZ                  NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE INDEX events_log_cursor_idx ON events (transaction_id, global_position);

CREATE TABLE snapshots
(
    aggregate_type   TEXT                                 NOT NULL,
    aggregate_id     TEXT                                 NOT NULL,
    last_sequence    BIGINT CHECK (last_sequence >= 0)    NOT NULL,
    current_snapshot BIGINT CHECK (current_snapshot >= 0) NOT NULL,
    payload          JSON                                 NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

-- Events are facts: once appended they are never changed or removed.
CREATE FUNCTION events_are_immutable() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are immutable: % refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER events_refuse_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_refuse_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- One row per projector: how far into the log its read model is, written in the same
-- transaction as the read-model rows.
CREATE TABLE projection_checkpoints
(
    projection          TEXT PRIMARY KEY,
    last_transaction_id XID8        NOT NULL DEFAULT '0',
    last_position       BIGINT      NOT NULL DEFAULT 0,
    events_applied      BIGINT      NOT NULL DEFAULT 0,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
