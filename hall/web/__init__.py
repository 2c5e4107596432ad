"""The server-rendered pages of the hall (mobile first, Chinese by default)."""
