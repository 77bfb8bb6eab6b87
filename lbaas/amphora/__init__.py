"""Everything that runs inside an amphora, and the configuration it is given."""
