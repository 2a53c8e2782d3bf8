"""Pure Python logic of tipoff; only udfs/flink/ may import pyflink."""
