"""Request handlers: one module per request type, registered by type name."""
