"""The Spark conformance suite (a package, so that its conftest and helpers never shadow the parent's
`conftest` module, which the parent's test modules import by name)."""
