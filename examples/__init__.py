"""Example agent modules for CHATKIT_AGENT (docs/agents.md); the test suite runs them against a stand-in model."""
