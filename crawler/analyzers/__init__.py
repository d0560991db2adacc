"""Analyzers: turn the files an image's layers hold into packages and OS facts."""
