"""Webhooks: a signed POST to a workspace's URLs when one of its runs reaches a final state.

`registry` adds and removes a workspace's webhooks; `deliveries` turns a run's final state
into one delivery per webhook (written in the transaction that finished the run, enqueued
after it commits) and makes each attempt; `signing` computes the signature header.
"""
