"""Developer and operator tooling: template reading, DynamoDB Local, local stack, admin CLI."""
