"""FHIR R4 over the same use cases as the REST routes: another driving adapter.

Nothing here holds a rule of its own: ownership, validation and the audit trail are the
core's, reached through the container's use cases. This package only maps FHIR resources to
and from the domain's records, and errors to OperationOutcome resources.
"""
