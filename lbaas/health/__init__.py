"""The health manager: heartbeats in, operating status and statistics out, failover of
amphorae that fall silent."""
