"""Tests package (so test modules in different folders may share names)."""
