"""The trainer: drift monitoring and automatic retraining (issue 7)."""
