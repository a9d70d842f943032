"""``ordersaga bench``: the system's throughput, latency and CPU per saga, measured from
outside, and the null-chain ceiling of its messaging path."""
