"""Selection strategies, one per module, each registered with ``@register_selector`` (auto-discovered)."""
