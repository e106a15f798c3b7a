"""Drivers: clients that talk to the running services and record what they answered."""
