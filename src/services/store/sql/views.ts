/**
 * An execution's status is never stored: this view derives it from its jobs, the same on both
 * engines. Pending jobs beside started or ended ones mean the execution is still under way,
 * hence running (`executionStatus` in machines/status.ts says the same in TypeScript).
 * Migrations that create it keep this text; a change to it is a new migration.
 */
export const EXECUTION_SUMMARIES = `
  CREATE VIEW execution_summaries AS
  SELECT
    id, policy_id, trigger, created_at,
    pending, running, retrying, finished, error, stopped,
    CASE
      WHEN running + retrying > 0 THEN 'running'
      WHEN pending > 0 AND pending = total THEN 'pending'
      WHEN pending > 0 THEN 'running'
      WHEN error > 0 THEN 'error'
      WHEN stopped > 0 THEN 'stopped'
      ELSE 'finished'
    END AS status,
    CASE
      WHEN pending + running + retrying = 0 THEN coalesce(last_finished_at, created_at)
    END AS finished_at
  FROM (
    SELECT
      e.id, e.policy_id, e.trigger, e.created_at,
      count(j.id) AS total,
      count(j.id) FILTER (WHERE j.status = 'pending') AS pending,
      count(j.id) FILTER (WHERE j.status = 'running') AS running,
      count(j.id) FILTER (WHERE j.status = 'retrying') AS retrying,
      count(j.id) FILTER (WHERE j.status = 'finished') AS finished,
      count(j.id) FILTER (WHERE j.status = 'error') AS error,
      count(j.id) FILTER (WHERE j.status = 'stopped') AS stopped,
      max(j.finished_at) AS last_finished_at
    FROM executions e LEFT JOIN jobs j ON j.execution_id = e.id
    GROUP BY e.id, e.policy_id, e.trigger, e.created_at
  ) counted;
`;
