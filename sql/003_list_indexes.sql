-- Keyset paging newest-first by id (UUIDv7, time-ordered) within an organisation: each page is
-- one index range scan, as cheap on page 1000 as on page 1.
ALTER TABLE decisions ADD INDEX IF NOT EXISTS ix_decisions_org_id (org_id, id);
ALTER TABLE audit_events ADD INDEX IF NOT EXISTS ix_audit_org_id (org_id, id);
