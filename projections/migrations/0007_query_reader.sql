-- The query API's least privilege: the role `query_reader` may read the
-- views and nothing else. `scripts/stack` creates it as a login role with a
-- password; a deployment whose migrating user may not create roles creates
-- it (or grants it to the query API's login role) itself, and this
-- migration then only grants.
DO $$
BEGIN
  CREATE ROLE query_reader NOLOGIN;
EXCEPTION
  -- Already there (or created by a concurrent migration of another
  -- database), or this user may not create roles.
  WHEN duplicate_object OR unique_violation OR insufficient_privilege THEN NULL;
END
$$;

DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'query_reader') THEN
    GRANT USAGE ON SCHEMA public TO query_reader;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO query_reader;
    -- Tables later migrations create are readable too.
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO query_reader;
  END IF;
END
$$;
