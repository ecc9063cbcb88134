"""Fault suite (``scripts/faults``): kill processes and break receivers under
load on a whole local stack (``devstack.Stack``), then count what got lost.

Every scenario posts events numbered ``seq`` through the real API, remembers
which ones were answered 202 (``acked``), and checks what the receivers got:
``lost`` = acked events never delivered, ``duplicated`` = deliveries beyond
the first. Traffic stays on 127.0.0.1 and unix sockets; every wait is bounded.
"""
