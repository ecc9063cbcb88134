return append_events(15)
