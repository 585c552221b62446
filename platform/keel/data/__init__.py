"""The data cluster: partition map, coordinator, repair, anti-entropy, HLC, store contract glue; sans-I/O objects plus their Trio runtime."""
