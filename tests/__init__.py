"""tipoff's tests: a package, so every shared helper is imported by its path
(`from tests.support.e2e import LiveJob`) and test modules are named by their folder."""
