"""What runs inside an amphora: the haproxy configuration it serves (and, later, the agent)."""
