"""PractitionerVerificationWorkflow: document re-verification.

Imports nothing: the workflow sandbox imports this package."""
