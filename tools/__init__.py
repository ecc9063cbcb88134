"""Development tools run from a checkout (bench, faults, devstack); not shipped."""
