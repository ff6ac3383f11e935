"""The Temporal integration core: client, base workflow and activities, decorators,
named policies, registry/discovery, workers and the `flask` commands."""
