-- Login attempts are reserved before the password is checked, under a per-address advisory lock,
-- so concurrent guesses cannot all pass the check before any is counted: a row is an attempt in
-- flight or a failure, and a successful login deletes its reservation by `attempt_id`.
ALTER TABLE login_failures ADD COLUMN attempt_id UUID;
CREATE INDEX login_failures_attempt_idx ON login_failures (attempt_id);
CREATE INDEX login_failures_failed_at_idx ON login_failures (failed_at);

-- Sign-ups per client address (an IPv4 address or an IPv6 /64), for the registration limit.
CREATE TABLE registration_attempts
(
    ip           TEXT        NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX registration_attempts_ip_idx ON registration_attempts (ip, attempted_at);

-- Expired sessions are pruned by the gateway's upkeep.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);
