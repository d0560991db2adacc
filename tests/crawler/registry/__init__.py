"""Integration tests of the registry client against a real Distribution registry."""
