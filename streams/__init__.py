"""Credence's Kafka side: the Faust app, its topics, tables, agents and the CLI."""
