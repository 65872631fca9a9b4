"""The data model: Network, Scenario and Design with its declared table schema."""
