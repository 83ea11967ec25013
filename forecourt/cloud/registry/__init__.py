"""Registry: vehicles (factory feed import), ECUs, dealers, their operators and certificates."""
