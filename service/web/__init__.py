"""HTTP plumbing shared by every route: JSON errors, the error and metrics middleware."""
