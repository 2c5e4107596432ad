"""Diagnosis and improvement (诊改): subjects, standards, monitoring points, targets, measurements,
warnings, cycles, portraits and reports."""
