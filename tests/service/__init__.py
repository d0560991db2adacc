"""Tests of the service mode."""
