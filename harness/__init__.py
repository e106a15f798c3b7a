"""servingbdd harness: drives a real model-serving cluster from Gherkin steps."""
