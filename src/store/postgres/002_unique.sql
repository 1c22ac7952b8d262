-- appauth schema version 2: uniqueness enforced by the database itself, so
-- it holds whatever writes to appauth_kv (any instance, any version, a
-- hand-made fix-up), not only through the directory's change-log check.
-- Records are JSON in bytea; the database encoding is fixed at creation,
-- so decoding a given value always gives the same document (IMMUTABLE).
-- A value that is not JSON decodes to NULL and is left unconstrained:
-- refusing it here would make a damaged row impossible to overwrite. It
-- cannot slip a duplicate into a catalog either: a follower reads it as
-- absent (fail closed), and a starting instance refuses to start on it,
-- naming the record.
CREATE FUNCTION appauth_record(v bytea) RETURNS jsonb
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
BEGIN
    RETURN convert_from(v, 'UTF8')::jsonb;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- One application per name (names are case-sensitive, as in the API).
CREATE UNIQUE INDEX appauth_unique_app_name ON appauth_kv
    ((appauth_record(value) ->> 'name'))
    WHERE key LIKE 'app/%';

-- One rule per (application, role, scope).
CREATE UNIQUE INDEX appauth_unique_rule ON appauth_kv
    ((appauth_record(value) ->> 'subjectId'),
     (appauth_record(value) ->> 'roleId'),
     (appauth_record(value) ->> 'scopeId'))
    WHERE key LIKE 'rule/%';

-- Sibling scopes have different names; one tenant (the scope without a parent).
CREATE UNIQUE INDEX appauth_unique_scope_name ON appauth_kv
    ((coalesce(appauth_record(value) ->> 'parentId', '')),
     (appauth_record(value) ->> 'name'))
    WHERE key LIKE 'scope/%';
CREATE UNIQUE INDEX appauth_unique_tenant ON appauth_kv
    (((appauth_record(value) ->> 'parentId') IS NULL))
    WHERE key LIKE 'scope/%' AND appauth_record(value) ? 'name'
      AND (appauth_record(value) ->> 'parentId') IS NULL;
