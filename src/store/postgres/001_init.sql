-- appauth schema version 1: the key-value records (the same key layout as
-- the sled store), the change log other instances follow, last-login times
-- merged per application, and side records.
CREATE TABLE appauth_kv (
    key   text COLLATE "C" PRIMARY KEY,
    value bytea NOT NULL
);
CREATE TABLE appauth_changes (
    seq          bigint PRIMARY KEY,
    key          text COLLATE "C" NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX appauth_changes_committed_at ON appauth_changes (committed_at);
CREATE TABLE appauth_logins (
    app_id        text COLLATE "C" PRIMARY KEY,
    last_login_ms bigint NOT NULL
);
CREATE TABLE appauth_side (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
