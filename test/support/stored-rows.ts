/**
 * A registry and a policy as schema version 3 (SQLite) or 1 (PostgreSQL) stored them, before
 * policies chose referrers: SQL both engines take.
 */
export const POLICY_BEFORE_REFERRERS = `
  INSERT INTO registries (id, name, url, insecure, created_at, updated_at)
  VALUES ('r1', 'hub', 'docker.io', FALSE, '2025-01-01T10:00:00.000Z', '2025-01-01T10:00:00.000Z');
  INSERT INTO policies (id, name, enabled, source_registry_id, destination_registry_id, repositories, tags, rewrite, override,
                        platforms, replicate_deletions, bandwidth_kibps, trigger, priority, created_at, updated_at)
  VALUES ('p1', 'old', TRUE, 'r1', 'r1', '{"include":["**"],"exclude":[]}', '{"include":["*"],"exclude":[],"syntax":"glob"}',
          '{"namespace":null,"flatten":0}', TRUE, '[]', FALSE, NULL, '{"type":"manual"}', 0, '2025-01-01T10:00:00.000Z', '2025-01-01T10:00:00.000Z');
`;

/** A registry with credentials as schema version 4 stored it, before credential helpers: SQL both engines take. */
export const REGISTRY_BEFORE_HELPERS = `
  INSERT INTO registries (id, name, url, insecure, username, password, created_at, updated_at)
  VALUES ('r2', 'private', 'registry.example.com', FALSE, 'robot', 'stored-pass', '2025-01-01T10:00:00.000Z', '2025-01-01T10:00:00.000Z');
`;
