"""The audit log: who signed in, who was refused, which token was used, read by administrators."""
