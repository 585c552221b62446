"""keel.core: the consistent core. So far, its durable log (`keel.core.log`)."""

__all__: list[str] = []
