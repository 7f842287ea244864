-- Tenants, agents, roles, divisions, API keys, sessions and the activity log.
-- Every tenant-owned table carries tenant_id, and references between tenant-owned rows use
-- composite keys (tenant_id, id) so a row can never point at another tenant's data.

CREATE TABLE tenants
(
    id         UUID PRIMARY KEY,
    name       TEXT        NOT NULL,
    slug       TEXT        NOT NULL,
    timezone   TEXT        NOT NULL DEFAULT 'Asia/Jakarta',
    status     TEXT        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    -- The billing plan; its foreign key arrives with the billing tables.
    plan_id      UUID,
    suspended_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE roles
(
    id          UUID PRIMARY KEY,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT        NOT NULL,
    description TEXT,
    is_system   BOOLEAN     NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT roles_tenant_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX roles_tenant_name_key ON roles (tenant_id, lower(name));

-- Codes of custom roles. System roles' codes are fixed in code (domain::AgentRole).
CREATE TABLE role_permissions
(
    role_id    UUID NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    permission TEXT NOT NULL,
    PRIMARY KEY (role_id, permission)
);

CREATE TABLE agents
(
    id                  UUID PRIMARY KEY,
    tenant_id           UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                TEXT        NOT NULL,
    email               TEXT        NOT NULL,
    password_hash       TEXT        NOT NULL,
    role                TEXT        NOT NULL CHECK (role IN ('admin', 'supervisor', 'agent')),
    custom_role_id      UUID,
    can_broadcast       BOOLEAN     NOT NULL DEFAULT false,
    is_online           BOOLEAN     NOT NULL DEFAULT false,
    is_active           BOOLEAN     NOT NULL DEFAULT true,
    avatar_url          TEXT,
    last_seen_at        TIMESTAMPTZ,
    password_changed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at          TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT agents_tenant_id_key UNIQUE (tenant_id, id),
    CONSTRAINT agents_custom_role_fkey FOREIGN KEY (tenant_id, custom_role_id) REFERENCES roles (tenant_id, id)
);
-- Login takes no tenant, so live emails are unique across the platform.
CREATE UNIQUE INDEX agents_email_key ON agents (lower(email)) WHERE deleted_at IS NULL;
CREATE INDEX agents_tenant_name_idx ON agents (tenant_id, name);

CREATE TABLE divisions
(
    id          UUID PRIMARY KEY,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        TEXT        NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT divisions_tenant_id_key UNIQUE (tenant_id, id)
);
CREATE UNIQUE INDEX divisions_tenant_name_key ON divisions (tenant_id, lower(name));

CREATE TABLE agent_divisions
(
    tenant_id   UUID        NOT NULL,
    agent_id    UUID        NOT NULL,
    division_id UUID        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (agent_id, division_id),
    CONSTRAINT agent_divisions_agent_fkey FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT agent_divisions_division_fkey FOREIGN KEY (tenant_id, division_id) REFERENCES divisions (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX agent_divisions_division_idx ON agent_divisions (division_id);

CREATE TABLE api_keys
(
    id           UUID PRIMARY KEY,
    tenant_id    UUID        NOT NULL,
    agent_id     UUID        NOT NULL,
    name         TEXT        NOT NULL,
    prefix       TEXT        NOT NULL,
    key_hash     BYTEA       NOT NULL,
    last_used_at TIMESTAMPTZ,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_agent_idx ON api_keys (tenant_id, agent_id, created_at DESC);

-- A login session: the JWT's sid. Logout revokes one; a password change revokes all.
CREATE TABLE sessions
(
    id         UUID PRIMARY KEY,
    tenant_id  UUID        NOT NULL,
    agent_id   UUID        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ,
    FOREIGN KEY (tenant_id, agent_id) REFERENCES agents (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sessions_agent_idx ON sessions (agent_id);

-- Failed logins, counted per (email, ip) and per ip over a sliding 15-minute window.
CREATE TABLE login_failures
(
    email     TEXT        NOT NULL,
    ip        TEXT        NOT NULL,
    failed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_ip_idx ON login_failures (email, ip, failed_at);
CREATE INDEX login_failures_ip_idx ON login_failures (ip, failed_at);

CREATE TABLE activity_logs
(
    id          UUID PRIMARY KEY,
    tenant_id   UUID        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    agent_id    UUID,
    agent_name  TEXT,
    action      TEXT        NOT NULL,
    entity_type TEXT        NOT NULL,
    entity_id   TEXT,
    details     JSONB       NOT NULL DEFAULT '{}',
    ip_address  TEXT,
    user_agent  TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX activity_logs_tenant_time_idx ON activity_logs (tenant_id, created_at DESC, id DESC);
CREATE INDEX activity_logs_tenant_entity_idx ON activity_logs (tenant_id, entity_type, entity_id);
