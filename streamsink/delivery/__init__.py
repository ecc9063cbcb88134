"""Delivery in execution order: scheduling, worker, job, batch, retry policy, reaper."""
