"""PractitionerOnboardingWorkflow: the guide's six onboarding steps.

Imports nothing: the workflow sandbox imports this package."""
