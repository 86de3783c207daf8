"""A faithful local CustomerGauge API (placeholder: being built)."""
