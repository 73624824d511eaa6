"""The messaging use cases (MSG-1..4): each opens its unit of work, asks the policy and writes the history."""
