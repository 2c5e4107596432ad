"""Sign-on tests against real CAS and OIDC servers started on loopback by the fixtures."""
