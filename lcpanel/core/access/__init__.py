"""Access: who is asking (identities, users, logins), rate limits, quotas and operator-only files."""
