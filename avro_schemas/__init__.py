"""tipoff's Avro contracts, one named record per .avsc file (shipped as package data)."""
