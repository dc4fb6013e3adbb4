"""The Pulumi program's components, one per AWS concern."""
