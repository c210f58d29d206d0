"""Analytics: exact per-district and per-agency follow-up metrics from the life-cycle events."""
