"""Fault drivers: real events on real processes, containers and links, each undone at teardown."""
