"""The policy router: verify, decode, decide, build views, countersign, deliver, audit."""
