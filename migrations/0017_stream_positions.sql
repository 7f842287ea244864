-- Where a reader of the NATS events stream has got to, committed with the work it did for the
-- messages up to there (the outgoing-webhook dispatcher: its fan-out of a batch and its new
-- position in one transaction), so a new leader resumes exactly there.
CREATE TABLE stream_positions
(
    name       TEXT PRIMARY KEY,
    position   BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
