"""Pure routing domain: agencies, rules, the case state machine, SLA and geo arithmetic."""
