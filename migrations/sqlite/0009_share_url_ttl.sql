-- Per-share lifetime of pre-signed URLs (seconds; NULL = the server's preSignedUrlTimeoutSeconds).
ALTER TABLE shares ADD COLUMN url_ttl_seconds INTEGER;
