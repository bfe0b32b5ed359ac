"""gati: the server runtime (app, routing, contexts, modules, capabilities, audit, CLI)."""
