"""What a load run leaves for people and machines: an HTML report, Prometheus figures, resource use."""
