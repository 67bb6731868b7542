"""Human review: queue, leases, revisions."""
