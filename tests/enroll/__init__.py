"""Tests of enrollment: provisioning files, ``enroll`` and ``devices`` against a real Prosody."""
