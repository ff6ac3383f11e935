"""TrainingCertificationWorkflow: modules, certificate, re-certification.

Imports nothing: the workflow sandbox imports this package."""
