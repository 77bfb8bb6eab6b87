"""The amphora agent: the REST service (mutual TLS) that runs inside each amphora.

It is the only code that touches haproxy and the amphora's network stack. It uses the
standard library only, so one amphora (agent + haproxy) stays small in memory.
"""
