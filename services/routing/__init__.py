"""Routing: turns submitted reports into cases assigned to agencies by run-time rules,
runs the agency workflow (a state machine with evidence) and the SLA timers."""
