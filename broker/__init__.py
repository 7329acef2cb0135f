"""msht-broker: a multi-agency information-sharing broker for modern slavery and human
trafficking investigations.

Agencies publish signed Avro events through adapters; a policy router decides who receives
each event, in which minimised view, exactly once, and records every decision in a
hash-chained audit trail.
"""

__version__ = "0.1.0"
