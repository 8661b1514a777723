"""Port injection: Services, hostPorts and NetworkPolicies that open a random port."""
