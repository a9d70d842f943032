"""The order service's HTTP routes, one router per resource."""
