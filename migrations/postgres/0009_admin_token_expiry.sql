-- Admin tokens expire (NULL = never, for tokens created before this migration or with --no-expiry).
ALTER TABLE admin_tokens ADD COLUMN expires_at BIGINT;
