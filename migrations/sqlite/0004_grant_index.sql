-- The shared SQL dialect upserts grants on (recipient_id, lower(share)).
CREATE UNIQUE INDEX grants_key ON grants (recipient_id, lower(share));
