"""The only code that knows Redis: connection, keys, Lua scripts, records."""
