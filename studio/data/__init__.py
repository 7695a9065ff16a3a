"""Data: reading files, detecting their format, normalising to TRL's forms, validating."""
