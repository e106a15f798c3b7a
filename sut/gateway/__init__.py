"""The cluster's gateway: V2 front door, worker registry, routing, catalog, admin API and metrics."""
