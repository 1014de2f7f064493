"""Everything that touches the world: real adapters, fakes, decorators and the kit."""

__all__: list[str] = []
