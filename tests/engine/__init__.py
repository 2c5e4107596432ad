"""Tests of hall.engine: deploy-time validation, the script sandbox, the loop guard and instance errors."""
