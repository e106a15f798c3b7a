"""The trainer: drift monitoring and automatic retraining."""
