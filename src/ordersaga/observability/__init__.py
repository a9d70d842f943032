"""What a running system shows of itself: metrics, traces and logs."""
