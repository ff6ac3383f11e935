"""SubscriptionRenewalWorkflow: a practitioner subscription's periods.

Imports nothing: the workflow sandbox imports this package."""
