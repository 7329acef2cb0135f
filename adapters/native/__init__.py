"""Building blocks the agency formats share: field vocabularies, value conversions, the case
document, handling markings, safe document reading and caseworker-readable problems."""
