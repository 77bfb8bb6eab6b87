"""``lbaas compute-agent``: the amphora host's side of the ``compute_agent_driver``.

One runs on every amphora host. It builds and removes amphorae on its host (what the
``netns`` compute driver does on the controller's host in the embedded default: the
namespace, the amphora agent, the ports on the host's bridges), makes the networks it
needs reach the other hosts (lbaas.network.segments), and reports itself. It keeps
nothing the controllers do not also have: what runs is found on the host (a restarted
agent adopts its amphorae), and what should run is the controllers' to say.
"""
