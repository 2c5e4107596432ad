"""Browser tests of the server-rendered pages, at a phone viewport."""
