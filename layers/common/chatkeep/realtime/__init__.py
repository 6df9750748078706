"""Live updates (docs/live-updates.md): GraphQL subscriptions over an API Gateway WebSocket API, speaking
graphql-transport-ws, fed by the stream processor (stored changes) and the turn worker (an agent reply's chunks)."""
