"""BackgroundCheckProviderWorkflow: the local background-check provider.

Imports nothing: the workflow sandbox imports this package."""
